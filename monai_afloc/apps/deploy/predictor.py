# Copyright (c) monai_afloc contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
The model side of the MONAI Deploy application, free of MONAI Deploy/Holoscan imports (testable in the core env).

:class:`AFLocPredictor` wraps :class:`~monai_afloc.inferers.TextPromptLocalizer` (the integration never re-implements
the localizer) around one of two model forms, chosen by what ``-m MODEL`` points at:

- **eager**: an AFLoc release ``.ckpt`` or a monai_afloc checkpoint folder (``afloc_config.json``), loaded with
  :func:`~monai_afloc.checkpoint.load_afloc_checkpoint`; any prompt can be encoded at run time;
- **TorchScript**: a folder written by :func:`export_deploy_model`: ``afloc_image_encoder.ts`` (from
  :func:`~monai_afloc.export.export_image_encoder_torchscript`) plus ``prompt_embeddings.pt`` (the prompt vectors,
  encoded once at export time, so the deployed model holds no tokenizer or text model) and ``deploy_model.json``.
  Only the exported prompts can be asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from monai_afloc.inference_settings import InferenceSettings, default_inference_settings
from monai_afloc.inferers.localizer import TextPromptLocalizer
from monai_afloc.inferers.prompts import clean_prompt, clean_prompts
from monai_afloc.utils.enums import AFLocKeys

__all__ = [
    "DEPLOY_MODEL_FILES",
    "TorchScriptImageEncoder",
    "PrecomputedPromptEncoder",
    "AFLocPredictor",
    "export_deploy_model",
    "load_deploy_model",
    "deploy_model_settings",
]

#: the files of a TorchScript deploy model folder (see :func:`export_deploy_model`)
DEPLOY_MODEL_FILES: dict[str, str] = {
    "image_encoder": "afloc_image_encoder.ts",
    "prompt_embeddings": "prompt_embeddings.pt",
    "manifest": "deploy_model.json",
}


class TorchScriptImageEncoder(nn.Module):
    """
    Give a TorchScript image encoder (``image -> (image_words, image_sentences, image_report)``, as written by
    :func:`~monai_afloc.export.export_image_encoder_torchscript`) the ``encode_image`` interface of an AFLoc network,
    so :class:`~monai_afloc.inferers.TextPromptLocalizer` can drive it.

    Args:
        module: the loaded TorchScript module (``torch.jit.load``).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a TorchScript module, got {type(module).__name__}.")
        self.module = module
        self._anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # a device even when traced w/o params

    def encode_image(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.module(image)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise ValueError(
                "the TorchScript image encoder must return (image_words, image_sentences, image_report), got "
                f"{type(out).__name__}{'' if not isinstance(out, (tuple, list)) else f' of length {len(out)}'}."
            )
        return {AFLocKeys.IMAGE_WORDS: out[0], AFLocKeys.IMAGE_SENTENCES: out[1], AFLocKeys.IMAGE_REPORT: out[2]}

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.encode_image(image)


class PrecomputedPromptEncoder:
    """
    A drop-in for :class:`~monai_afloc.inferers.localizer.PromptEncoder` that looks prompt vectors up in a table
    encoded beforehand (keys are cleaned with :func:`~monai_afloc.inferers.prompts.clean_prompt`, as the localizer
    does).

    Args:
        table: prompt -> ``[D]`` vector.

    Raises:
        ValueError: on an empty table, vectors of different widths, or (when called) a prompt not in the table.
    """

    def __init__(self, table: Mapping[str, torch.Tensor]) -> None:
        if not isinstance(table, Mapping) or not table:
            raise ValueError("table must be a non-empty mapping prompt -> vector.")
        self.table = {clean_prompt(k): torch.as_tensor(v, dtype=torch.float32).flatten() for k, v in table.items()}
        widths = {v.numel() for v in self.table.values()}
        if len(widths) != 1:
            raise ValueError(f"prompt vectors must all have the same width, got widths {sorted(widths)}.")

    @property
    def prompts(self) -> list[str]:
        return list(self.table)

    def __call__(self, prompts: str | Sequence[str]) -> torch.Tensor:
        cleaned = clean_prompts(prompts)
        missing = [c for c in cleaned if c not in self.table]
        if missing:
            raise ValueError(
                f"prompts {missing} were not exported with this TorchScript model (it has {self.prompts}); "
                "export them with export_deploy_model(..., prompts=[...]) or use the eager checkpoint."
            )
        return torch.stack([self.table[c] for c in cleaned])

    def clear_cache(self) -> None:  # the PromptEncoder interface
        pass


class _NoTokenizer:
    """Stands in for a tokenizer where prompts come from a :class:`PrecomputedPromptEncoder`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this model holds no tokenizer: prompts are looked up among the exported ones.")


def export_deploy_model(
    net: nn.Module,
    directory: str | os.PathLike,
    prompts: Sequence[str],
    input_size: int = 224,
    check: bool = True,
    inference: InferenceSettings | None = None,
) -> str:
    """
    Write the TorchScript form of ``net`` for the deploy app: the traced image encoder and the prompt vectors.

    Args:
        net: an ``AFLoc`` network (with an ``AFLocImageEncoder`` and a text encoder with its tokenizer).
        directory: output folder (created).
        prompts: the prompts the deployed app may ask for (e.g. every prompt of the app config).
        input_size: the frame size the encoder is traced at (224, the localizer's frame).
        check: compare eager and traced outputs (see :func:`~monai_afloc.export.export_image_encoder_torchscript`).
        inference: the settings the deploy app builds its localizer with (stored in the manifest); default
            :func:`~monai_afloc.inference_settings.default_inference_settings` at ``input_size`` (pass the
            checkpoint's, ``load_inference_settings(path, net)``, to keep its threshold).

    Returns:
        the folder.

    Example::

        >>> export_deploy_model(load_afloc_checkpoint("ckpt"), "model_ts", ["pleural effusion", "pneumothorax"])
    """
    from monai_afloc.export import export_image_encoder_torchscript
    from monai_afloc.inferers.localizer import PromptEncoder

    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise ValueError(f"prompts must be a non-empty list of str, got {prompts!r}.")
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    net = net.eval()
    export_image_encoder_torchscript(
        net, os.path.join(directory, DEPLOY_MODEL_FILES["image_encoder"]), input_size=input_size, check=check
    )
    vectors = PromptEncoder(net)(list(prompts)).cpu()
    table = {p: v.clone() for p, v in zip(prompts, vectors)}
    torch.save(table, os.path.join(directory, DEPLOY_MODEL_FILES["prompt_embeddings"]))
    if inference is None:
        inference = default_inference_settings(net, input_size)
    if not isinstance(inference, InferenceSettings):
        raise TypeError(f"inference must be None or an InferenceSettings, got {type(inference).__name__}.")
    manifest = {"format": "monai_afloc deploy TorchScript", "version": 1, "prompts": list(prompts),
                "input_size": input_size, "files": dict(DEPLOY_MODEL_FILES), "inference": inference.to_dict()}
    with open(os.path.join(directory, DEPLOY_MODEL_FILES["manifest"]), "w") as f:
        json.dump(manifest, f, indent=2)
    return directory


def _is_torchscript_folder(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, DEPLOY_MODEL_FILES["image_encoder"]))


def load_deploy_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, Any, str]:
    """
    Load what ``-m MODEL`` names: returns ``(network, prompt_encoder_or_None, kind)`` with ``kind`` in
    ``{"torchscript", "eager"}``; ``prompt_encoder`` is a :class:`PrecomputedPromptEncoder` for TorchScript.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the path is neither a TorchScript deploy folder nor a loadable checkpoint (the message names it).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model not found: '{path}'.")
    device = torch.device(device)
    if _is_torchscript_folder(path):
        emb_path = os.path.join(path, DEPLOY_MODEL_FILES["prompt_embeddings"])
        if not os.path.isfile(emb_path):
            raise ValueError(f"TorchScript deploy model '{path}' has no {DEPLOY_MODEL_FILES['prompt_embeddings']}.")
        module = torch.jit.load(os.path.join(path, DEPLOY_MODEL_FILES["image_encoder"]), map_location=device).eval()
        table = torch.load(emb_path, map_location="cpu", weights_only=True)
        return TorchScriptImageEncoder(module).to(device), PrecomputedPromptEncoder(table), "torchscript"
    from monai_afloc.checkpoint import load_afloc_checkpoint

    try:
        net = load_afloc_checkpoint(path, map_location="cpu")
    except Exception as err:
        raise ValueError(
            f"'{path}' is neither a TorchScript deploy folder (with {DEPLOY_MODEL_FILES['image_encoder']}) nor a "
            f"loadable AFLoc checkpoint: {type(err).__name__}: {err}"
        ) from err
    return net.to(device).eval(), None, "eager"


def deploy_model_settings(path: str | os.PathLike, network: nn.Module) -> InferenceSettings:
    """
    The inference settings of what ``-m MODEL`` names: a TorchScript deploy folder's manifest (``inference``; a
    folder written before that entry gets the defaults at its traced ``input_size``), or the checkpoint's
    (:func:`~monai_afloc.checkpoint.load_inference_settings`) — the settings ``TextPromptLocalizer.from_checkpoint``
    uses, so the deploy app's heatmaps equal every other entry point's.
    """
    path = os.fspath(path)
    if _is_torchscript_folder(path):
        manifest_path = os.path.join(path, DEPLOY_MODEL_FILES["manifest"])
        manifest = {}
        if os.path.isfile(manifest_path):
            with open(manifest_path) as f:
                manifest = json.load(f)
        if manifest.get("inference") is not None:
            return InferenceSettings.from_dict(manifest["inference"], what=f"the 'inference' entry of {manifest_path!r}")
        return default_inference_settings(network, manifest.get("input_size"))
    from monai_afloc.checkpoint import load_inference_settings

    return load_inference_settings(path, network)


class AFLocPredictor:
    """
    Heatmaps, masks, boxes and scores for a fixed list of findings on one radiograph at a time.

    Args:
        model: a path for :func:`load_deploy_model`, or an AFLoc-like network (``encode_image`` + tokenizer).
        findings: ``[(label, prompt), ...]``: one output channel (and DICOM SEG segment) per entry.
        threshold: mask/box threshold on the [-1, 1] heatmaps.
        sigma: Gaussian σ in grid cells.
        image_size: the localizer's square frame.
        device: torch device.

    ``threshold``, ``sigma`` and ``image_size`` default (``None``) to the model's saved settings
    (:func:`deploy_model_settings`; for a network object, :func:`~monai_afloc.inference_settings.default_inference_settings`).

    ``predictor(path)`` returns ``{"labels", "prompts", "heatmaps" [K, H, W] float32 numpy, "masks" [K, H, W] bool,
    "boxes" [[{"box": [x, y, w, h], "score", "area"}, ...] per finding], "scores" [K] (cosine of image and prompt
    report vectors), "image" [H, W] float32 (the displayed grayscale, 0..255), "threshold"}``.
    """

    def __init__(
        self,
        model: str | os.PathLike | nn.Module,
        findings: Sequence[tuple[str, str]],
        threshold: float | None = None,
        sigma: float | None = None,
        image_size: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if isinstance(findings, str) or not isinstance(findings, Sequence) or not findings:
            raise ValueError(f"findings must be a non-empty list of (label, prompt) pairs, got {findings!r}.")
        for item in findings:
            pair = isinstance(item, (tuple, list)) and len(item) == 2
            if not (pair and all(isinstance(s, str) and s.strip() for s in item)):
                raise ValueError(f"each finding must be a (label, prompt) pair of non-empty str, got {item!r}.")
        self.labels = [str(a) for a, _ in findings]
        self.prompts = [str(b) for _, b in findings]
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"finding labels must be unique, got {self.labels}.")
        overrides = {"threshold": threshold, "sigma": sigma, "image_size": image_size}
        prompt_encoder = None
        if isinstance(model, nn.Module):
            net, self.kind = model.to(torch.device(device)).eval(), "eager"
            self.model_path = None
            settings = default_inference_settings(net, image_size, threshold=threshold, sigma=sigma)
        else:
            net, prompt_encoder, self.kind = load_deploy_model(model, device)
            self.model_path = os.fspath(model)
            settings = deploy_model_settings(model, net).replace(net, **overrides)
        self.threshold = settings.threshold
        tokenizer = _NoTokenizer() if prompt_encoder is not None else None
        self.localizer = TextPromptLocalizer(net, tokenizer=tokenizer, **settings.to_dict())
        if prompt_encoder is not None:
            self.localizer.prompt_encoder = prompt_encoder
        self.localizer.prompt_encoder(self.prompts)  # encodes (or finds) every prompt once, before any image

    def __call__(self, path: str | os.PathLike) -> dict[str, Any]:
        image = self.localizer.preprocess.loader(os.fspath(path))  # decoded once: the heatmaps and the display
        with torch.no_grad():
            out = self.localizer([image], self.prompts, return_masks=True, return_boxes=True, threshold=self.threshold)
        heatmaps = out["heatmaps"][0]
        if tuple(image.shape[-2:]) != tuple(heatmaps.shape[-2:]):  # a very large image was decoded reduced
            from monai_afloc.apps.runner import image_like

            image = image_like(image, heatmaps.shape[-2:])
        image = image[0].numpy()
        return {
            "labels": list(self.labels),
            "prompts": list(self.prompts),
            "heatmaps": heatmaps.float().cpu().numpy(),
            "masks": out["masks"][0].cpu().numpy().astype(bool),
            "boxes": out["boxes"][0],
            "scores": [float(s) for s in out["scores"][0].cpu()],
            "image": image,
            "threshold": out["threshold"],
        }
