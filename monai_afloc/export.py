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
Deployment exports of AFLoc: TorchScript (for MONAI Deploy and MONAI Bundle ``ckpt_export``) and ONNX.

Two exportable modules:

- :class:`AFLocImageEncoderTuple`: ``image [B, C, S, S]`` -> ``(image_words, image_sentences, image_report)``
  (a tuple in :data:`IMAGE_ENCODER_OUTPUT_NAMES` order, since TorchScript/ONNX consumers index outputs).
- :class:`AFLocHeatmapHead`: ``(image [B, 3, S, S], prompt_embeddings [K, D])`` -> heatmaps ``[B, K, s, s]`` in
  [-1, 1]; the prompts are encoded once beforehand (e.g. with :class:`~monai_afloc.networks.nets.AFLocTextEncoder`),
  so the deployed graph holds no tokenizer or text model.

Both are traced (``torch.jit.trace``): the batch size ``B`` and the number of prompts ``K`` stay dynamic, the image
size is fixed by the encoder's ``input_size`` resize (299 in the reference) and the output size is a constant.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
import torch.nn as nn
from monai.data.torchscript_utils import save_net_with_metadata
from monai.utils import look_up_option, optional_import

import monai_afloc
from monai_afloc.inferers.similarity import rescale_to_unit_range, similarity_map, upsample_maps
from monai_afloc.networks.nets.afloc import AFLoc
from monai_afloc.networks.nets.image_encoder import AFLocImageEncoder
from monai_afloc.utils.enums import AFLocKeys
from monai_afloc.utils.validation import check_int, check_number

onnx, _has_onnx = optional_import("onnx")

__all__ = [
    "IMAGE_ENCODER_OUTPUT_NAMES",
    "AFLocImageEncoderTuple",
    "AFLocHeatmapHead",
    "export_image_encoder_torchscript",
    "export_heatmap_head_torchscript",
    "export_onnx",
]

#: order of the image encoder's exported outputs
IMAGE_ENCODER_OUTPUT_NAMES: tuple[str, str, str] = (
    AFLocKeys.IMAGE_WORDS.value,
    AFLocKeys.IMAGE_SENTENCES.value,
    AFLocKeys.IMAGE_REPORT.value,
)


def _image_encoder_of(net: Any) -> AFLocImageEncoder:
    if isinstance(net, AFLoc):
        net = net.image_encoder
    if not isinstance(net, AFLocImageEncoder):
        raise TypeError(f"expected an AFLoc or an AFLocImageEncoder, got {type(net).__name__}.")
    return net


def _drop_text_encoder_keys(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    """Load-state-dict pre-hook of the image-only modules: a whole AFLoc state dict (the bundle's ``models/model.pt``,
    what ``monai.bundle ckpt_export`` loads) is accepted, its ``text_encoder.*`` entries set aside; a missing or
    misshapen image-encoder entry still fails the (strict) load."""
    for key in [k for k in state_dict if k.startswith(prefix + "text_encoder.")]:
        del state_dict[key]


def _check_size(name: str, value: Any, minimum: int = 1) -> int:
    return check_int(name, value, minimum=minimum)


class AFLocImageEncoderTuple(nn.Module):
    """
    An :class:`~monai_afloc.networks.nets.AFLocImageEncoder` whose outputs are a tuple, for tracing and ONNX.

    Args:
        image_encoder: an ``AFLocImageEncoder`` or an ``AFLoc`` (its image encoder is used; weights are shared).

    ``forward(image [B, C, H, W])`` returns ``(image_words [B, D, h2, w2], image_sentences [B, D, h3, w3],
    image_report [B, D])`` (:data:`IMAGE_ENCODER_OUTPUT_NAMES`).

    Example::

        >>> m = AFLocImageEncoderTuple(AFLocImageEncoder("resnet18", embed_dim=16, input_size=None)).eval()
        >>> [t.shape for t in m(torch.rand(1, 3, 224, 224))]
        [torch.Size([1, 16, 28, 28]), torch.Size([1, 16, 14, 14]), torch.Size([1, 16])]

    Its state dict is the image encoder's under ``image_encoder.``, as in an AFLoc; loading a whole AFLoc state dict
    (the bundle's ``models/model.pt``) sets the ``text_encoder.*`` entries aside.

    Raises:
        TypeError: when ``image_encoder`` is neither an ``AFLocImageEncoder`` nor an ``AFLoc``.
    """

    def __init__(self, image_encoder: nn.Module) -> None:
        super().__init__()
        self.image_encoder = _image_encoder_of(image_encoder)
        self.register_load_state_dict_pre_hook(_drop_text_encoder_keys)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.image_encoder(image)
        return out[AFLocKeys.IMAGE_WORDS], out[AFLocKeys.IMAGE_SENTENCES], out[AFLocKeys.IMAGE_REPORT]


class AFLocHeatmapHead(nn.Module):
    """
    AFLoc localization as one module taking precomputed prompt embeddings: the localizer's maths (docs/design.md §5) on
    the frame the encoder sees.

    ``heatmaps = rescale_to_unit_range(upsample_maps(similarity_map(regions, prompt_embeddings, sigma), output_size))``
    where ``regions`` are the sentence-level region embeddings (``image_sentences``, 19×19 in the reference): dot
    product with each prompt vector, Gaussian smoothing (scipy ``gaussian_filter`` semantics), bilinear upsampling
    (``align_corners=False``) to ``output_size`` and min-max rescaling of each map to [-1, 1] (a constant map gives
    zeros). Mapping back to the original image (undoing pad and resize) is left to the caller.

    Args:
        image_encoder: an ``AFLocImageEncoder`` or an ``AFLoc`` (its image encoder is used; weights are shared).
        sigma: Gaussian σ in grid cells (1.5 in the reference; 0 disables smoothing).
        output_size: side of the square heatmaps (224, the reference input frame).
        region_key: which region embeddings to use: ``"image_sentences"`` (reference) or ``"image_words"``.

    Example::

        >>> net = load_afloc_checkpoint("afloc.ckpt")
        >>> head = AFLocHeatmapHead(net).eval()
        >>> prompts = net.encode_text(**net.tokenize(["pleural effusion", "pneumothorax"]))["text_report"]
        >>> head(torch.rand(1, 3, 224, 224), prompts).shape
        torch.Size([1, 2, 224, 224])

    Raises:
        TypeError: when ``image_encoder`` is neither an ``AFLocImageEncoder`` nor an ``AFLoc``.
        ValueError: on a negative ``sigma``, a non-positive ``output_size`` or an unknown ``region_key``; in
            ``forward``, on inputs of the wrong rank or width.
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        sigma: float = 1.5,
        output_size: int = 224,
        region_key: str = AFLocKeys.IMAGE_SENTENCES.value,
    ) -> None:
        super().__init__()
        self.image_encoder = _image_encoder_of(image_encoder)
        self.sigma = check_number("sigma", sigma, minimum=0)
        self.output_size = _check_size("output_size", output_size)
        self.region_key = look_up_option(
            str(region_key), (AFLocKeys.IMAGE_SENTENCES.value, AFLocKeys.IMAGE_WORDS.value)
        )
        self.register_load_state_dict_pre_hook(_drop_text_encoder_keys)  # a whole AFLoc state dict loads too

    def forward(self, image: torch.Tensor, prompt_embeddings: torch.Tensor) -> torch.Tensor:
        """
        Args:
            image: ``[B, C, H, W]`` preprocessed frames (the reference: 224×224, normalised to about [-1, 1]).
            prompt_embeddings: ``[K, D]`` prompt vectors (``text_report`` of the prompts in the reference).

        Returns:
            ``[B, K, output_size, output_size]`` heatmaps in [-1, 1].
        """
        if not isinstance(prompt_embeddings, torch.Tensor) or prompt_embeddings.ndim != 2:
            raise ValueError(
                "prompt_embeddings must be a [K, D] tensor, got "
                + (
                    f"shape {tuple(prompt_embeddings.shape)}."
                    if isinstance(prompt_embeddings, torch.Tensor)
                    else f"{type(prompt_embeddings).__name__}."
                )
            )
        if prompt_embeddings.shape[1] != self.image_encoder.embed_dim:
            raise ValueError(
                f"prompt_embeddings width {prompt_embeddings.shape[1]} differs from the image encoder's "
                f"embed_dim {self.image_encoder.embed_dim}."
            )
        regions = self.image_encoder(image)[self.region_key]
        maps = similarity_map(regions, prompt_embeddings.to(regions.dtype), sigma=self.sigma)
        return rescale_to_unit_range(upsample_maps(maps, self.output_size))


def _trace(module: nn.Module, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # input checks evaluated once at trace time are expected; they do not enter the graph
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace(module, example, check_trace=False)


def _check_close(name: str, eager: Any, exported: Any, atol: float, rtol: float) -> None:
    eager = eager if isinstance(eager, (tuple, list)) else (eager,)
    exported = exported if isinstance(exported, (tuple, list)) else (exported,)
    for i, (a, b) in enumerate(zip(eager, exported)):
        b = torch.as_tensor(b, device=a.device)
        if a.shape != b.shape or not torch.allclose(a, b, atol=atol, rtol=rtol):
            raise RuntimeError(
                f"{name}: exported output {i} differs from eager (shape {tuple(b.shape)} vs {tuple(a.shape)}, "
                f"max abs diff {(a - b).abs().max().item() if a.shape == b.shape else 'n/a'})."
            )


def _example_image(encoder: AFLocImageEncoder, batch: int, size: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(batch, encoder.in_channels, size, size, generator=g) * 2 - 1).to(device)


def _device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _meta(kind: str, encoder: AFLocImageEncoder, size: int, extra: dict[str, Any] | None) -> dict[str, Any]:
    meta = {
        "name": f"monai_afloc {kind}",
        "monai_afloc_version": monai_afloc.__version__,
        "backbone": encoder.backbone_name,
        "embed_dim": encoder.embed_dim,
        "encoder_input_size": encoder.input_size,
        "example_image_size": size,
    }
    meta.update(extra or {})
    return meta


def export_image_encoder_torchscript(
    net: nn.Module,
    path: str | os.PathLike,
    input_size: int = 224,
    check: bool = True,
    meta_values: dict[str, Any] | None = None,
) -> torch.jit.ScriptModule:
    """
    Trace the image encoder to TorchScript and save it with MONAI's metadata (``monai.data.save_net_with_metadata``;
    load with ``torch.jit.load`` or ``monai.data.load_net_with_metadata``).

    The saved module maps ``image [B, C, S, S]`` to the tuple ``(image_words, image_sentences, image_report)``
    (:data:`IMAGE_ENCODER_OUTPUT_NAMES`, also stored in the metadata as ``"outputs"``); ``B`` is dynamic.

    Args:
        net: an ``AFLoc`` or an ``AFLocImageEncoder`` (traced on its current device, in eval mode).
        path: output file; ``.ts`` is appended when it has no extension.
        input_size: side ``S`` of the example frame used for tracing (224 in the reference; with the encoder's
            ``input_size=None`` the traced model is only valid for this size).
        check: re-run eager and traced on another batch (B=2) and raise if they differ.
        meta_values: extra metadata entries.

    Returns:
        the traced module.

    Raises:
        TypeError: on a ``net`` that is not an AFLoc image encoder.
        ValueError: on a non-positive ``input_size``.
        RuntimeError: when ``check`` finds a mismatch.

    Example::

        >>> ts = export_image_encoder_torchscript(net, "afloc_image_encoder.ts")
        >>> words, sentences, report = torch.jit.load("afloc_image_encoder.ts")(torch.rand(2, 3, 224, 224))
    """
    size = _check_size("input_size", input_size, 32)
    module = AFLocImageEncoderTuple(net).eval()
    encoder = module.image_encoder
    device = _device(module)
    traced = _trace(module, (_example_image(encoder, 1, size, device),))
    if check:
        x = _example_image(encoder, 2, size, device).flip(0)
        with torch.no_grad():
            _check_close("image encoder TorchScript", module(x), traced(x), atol=1e-4, rtol=1e-4)
    meta = _meta("image encoder", encoder, size, meta_values)
    meta.update({"inputs": ["image"], "outputs": list(IMAGE_ENCODER_OUTPUT_NAMES)})
    save_net_with_metadata(traced, os.fspath(path), meta_values=meta)
    return traced


def export_heatmap_head_torchscript(
    net: nn.Module,
    path: str | os.PathLike,
    sigma: float = 1.5,
    output_size: int = 224,
    input_size: int = 224,
    check: bool = True,
    meta_values: dict[str, Any] | None = None,
) -> torch.jit.ScriptModule:
    """
    Trace :class:`AFLocHeatmapHead` to TorchScript and save it with MONAI's metadata.

    The saved module maps ``(image [B, C, S, S], prompt_embeddings [K, D])`` to heatmaps
    ``[B, K, output_size, output_size]`` in [-1, 1]; ``B`` and ``K`` are dynamic.

    Args:
        net: an ``AFLoc``, an ``AFLocImageEncoder`` or an ``AFLocHeatmapHead`` (then ``sigma``/``output_size`` are
            taken from it).
        path: output file; ``.ts`` is appended when it has no extension.
        sigma: Gaussian σ in grid cells (1.5 in the reference).
        output_size: heatmap side (224 in the reference).
        input_size: side ``S`` of the example frame used for tracing.
        check: re-run eager and traced on another batch (B=2, K=3) and raise if they differ.
        meta_values: extra metadata entries.

    Returns:
        the traced module.

    Example::

        >>> export_heatmap_head_torchscript(net, "afloc_heatmaps.ts")
        >>> head = torch.jit.load("afloc_heatmaps.ts")
        >>> head(torch.rand(1, 3, 224, 224), prompt_vectors).shape  # prompt_vectors [K, D]
        torch.Size([1, K, 224, 224])
    """
    head = net if isinstance(net, AFLocHeatmapHead) else AFLocHeatmapHead(net, sigma=sigma, output_size=output_size)
    head = head.eval()
    size = _check_size("input_size", input_size, 32)
    encoder, device = head.image_encoder, _device(head)
    g = torch.Generator().manual_seed(1)
    prompts = torch.randn(2, encoder.embed_dim, generator=g).to(device)
    traced = _trace(head, (_example_image(encoder, 1, size, device), prompts))
    if check:
        x = _example_image(encoder, 2, size, device).flip(0)
        p = torch.randn(3, encoder.embed_dim, generator=g).to(device)
        with torch.no_grad():
            _check_close("heatmap head TorchScript", head(x, p), traced(x, p), atol=1e-4, rtol=1e-4)
    meta = _meta("heatmap head", encoder, size, meta_values)
    meta.update(
        {
            "inputs": ["image", "prompt_embeddings"],
            "outputs": ["heatmaps"],
            "sigma": head.sigma,
            "output_size": head.output_size,
            "region_key": head.region_key,
        }
    )
    save_net_with_metadata(traced, os.fspath(path), meta_values=meta)
    return traced


def export_onnx(
    net: nn.Module,
    path: str | os.PathLike,
    part: str = "image_encoder",
    input_size: int = 224,
    sigma: float = 1.5,
    output_size: int = 224,
    opset_version: int = 17,
    dynamo: bool = False,
) -> str:
    """
    Export the image encoder or the heatmap head to ONNX (``onnx`` needed; ``onnxruntime`` to run it).

    Inputs and outputs are named: ``image`` -> ``image_words``, ``image_sentences``, ``image_report``
    (``part="image_encoder"``), or ``image``, ``prompt_embeddings`` -> ``heatmaps`` (``part="heatmap_head"``).
    The batch axis (and the prompt axis) are dynamic.

    Args:
        net: an ``AFLoc``, an ``AFLocImageEncoder`` or an ``AFLocHeatmapHead`` (then ``part`` must be
            ``"heatmap_head"``).
        path: output ``.onnx`` file.
        part: ``"image_encoder"`` or ``"heatmap_head"``.
        input_size: side of the example frame used for export.
        sigma, output_size: heatmap head settings (ignored for the image encoder).
        opset_version: ONNX opset.
        dynamo: use the ``torch.export``-based exporter (needs ``onnxscript``; slower) instead of the TorchScript
            based one.

    Returns:
        the written path.

    Raises:
        ImportError: when ``onnx`` is not installed.
        ValueError: on an unknown ``part`` or a bad size.

    Example::

        >>> export_onnx(net, "afloc_heatmaps.onnx", part="heatmap_head")
        >>> import onnxruntime as ort
        >>> sess = ort.InferenceSession("afloc_heatmaps.onnx")
        >>> (maps,) = sess.run(None, {"image": image_np, "prompt_embeddings": prompts_np})
    """
    if not _has_onnx:
        raise ImportError("export_onnx needs the 'onnx' package: pip install onnx (and onnxruntime to run it).")
    part = look_up_option(part, ("image_encoder", "heatmap_head"))
    size = _check_size("input_size", input_size, 32)
    _check_size("opset_version", opset_version, 7)
    if isinstance(net, AFLocHeatmapHead):
        if part != "heatmap_head":
            raise ValueError(f"an AFLocHeatmapHead can only be exported with part='heatmap_head', got {part!r}.")
        module: nn.Module = net
    elif part == "heatmap_head":
        module = AFLocHeatmapHead(net, sigma=sigma, output_size=output_size)
    else:
        module = AFLocImageEncoderTuple(net)
    module = module.eval()
    encoder = module.image_encoder
    image = _example_image(encoder, 1, size, _device(module))
    if part == "image_encoder":
        args: tuple[torch.Tensor, ...] = (image,)
        input_names, output_names = ["image"], list(IMAGE_ENCODER_OUTPUT_NAMES)
        dynamic_axes = {"image": {0: "batch"}, **{n: {0: "batch"} for n in output_names}}
        dynamic_shapes: Any = {"image": {0: torch.export.Dim("batch", min=1)}}
    else:
        args = (image, torch.randn(2, encoder.embed_dim, generator=torch.Generator().manual_seed(1)).to(image.device))
        input_names, output_names = ["image", "prompt_embeddings"], ["heatmaps"]
        dynamic_axes = {
            "image": {0: "batch"},
            "prompt_embeddings": {0: "prompts"},
            "heatmaps": {0: "batch", 1: "prompts"},
        }
        dynamic_shapes = {
            "image": {0: torch.export.Dim("batch", min=1)},
            "prompt_embeddings": {0: torch.export.Dim("prompts", min=1)},
        }
    path = os.fspath(path)
    kwargs: dict[str, Any] = {"input_names": input_names, "output_names": output_names, "opset_version": opset_version}
    if dynamo:
        kwargs.update(dynamo=True, dynamic_shapes=dynamic_shapes)
    else:
        kwargs.update(dynamo=False, dynamic_axes=dynamic_axes)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, args, path, **kwargs)
    return path
