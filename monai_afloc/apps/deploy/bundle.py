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
The MONAI Bundle route of the deploy app: the chest bundle's heatmap head (``heatmap_head`` of
``bundles/afloc_chest_xray_localization/configs/inference.json``) with the app's prompts baked in, exported as a
directory bundle that the SDK's ``MonaiBundleInferenceOperator`` runs.

- :func:`export_deploy_bundle` parses ``heatmap_head`` from the chest bundle with a checkpoint override, encodes the
  prompts once, traces ``image [B, 3, S, S] -> heatmaps [B, K, S, S]`` (:class:`FixedPromptHeatmapNet`) to
  ``models/model.ts`` and writes ``configs/metadata.json`` (the chest bundle's, with a one-input/one-output
  ``network_data_format``) and ``configs/inference.json`` (pre-processing :class:`AFLocBundlePreprocessd`,
  post-processing :class:`FrameHeatmapsToOriginald`).
- The SDK's operator turns a DICOM ``Image`` into a ``(cols, rows, 1)`` array whose affine comes from the series'
  ``nifti_affine_transform``: a single-image series (every CR/DX) has none and the operator fails on it.
  :class:`SetImageAffineOperator` (in :mod:`monai_afloc.apps.deploy.bundle_app`) sets a pixel-spacing affine first.
- The operator forwards only the network's first output, so this route gives heatmaps, masks and boxes but not the
  image-prompt cosine score (``score`` is ``null`` in its JSON and "n/a" in its SR); the TorchScript/eager route
  (:mod:`monai_afloc.apps.deploy.app`) gives both.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.torchscript_utils import save_net_with_metadata
from monai.transforms import MapTransform

from monai_afloc.export import AFLocHeatmapHead
from monai_afloc.transforms.image.array import AFLocImagePreprocess, scale_by_max_to_uint8
from monai_afloc.inferers.similarity import rescale_to_unit_range
from monai_afloc.transforms.image.geometry import (
    GEOMETRY_META_KEY,
    PreprocessGeometry,
    frame_to_original,
    valid_frame_masks,
)
from monai_afloc.utils.validation import check_number

__all__ = [
    "CHEST_BUNDLE_DIR",
    "FixedPromptHeatmapNet",
    "AFLocBundlePreprocessd",
    "FrameHeatmapsToOriginald",
    "export_deploy_bundle",
    "read_deploy_bundle_labels",
    "read_deploy_bundle_threshold",
]

#: the chest bundle in a source checkout (``None`` when not found, e.g. in an installed wheel)
CHEST_BUNDLE_DIR: str | None = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "bundles", "afloc_chest_xray_localization",
)
if not os.path.isdir(CHEST_BUNDLE_DIR):
    CHEST_BUNDLE_DIR = None


class FixedPromptHeatmapNet(nn.Module):
    """
    An :class:`~monai_afloc.export.AFLocHeatmapHead` with ``K`` prompt vectors stored as a buffer: one input
    (``image [B, C, S, S]``), one output (``heatmaps [B, K, s, s]`` in [-1, 1]), as ``MonaiBundleInferenceOperator``
    expects.

    Args:
        head: the heatmap head.
        prompt_embeddings: ``[K, D]``.
    """

    def __init__(self, head: AFLocHeatmapHead, prompt_embeddings: torch.Tensor) -> None:
        super().__init__()
        if not isinstance(head, AFLocHeatmapHead):
            raise TypeError(f"head must be an AFLocHeatmapHead, got {type(head).__name__}.")
        if not isinstance(prompt_embeddings, torch.Tensor) or prompt_embeddings.ndim != 2:
            raise ValueError(f"prompt_embeddings must be a [K, D] tensor, got {prompt_embeddings!r}.")
        self.head = head
        self.register_buffer("prompt_embeddings", prompt_embeddings.detach().float().clone())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(image, self.prompt_embeddings)


class AFLocBundlePreprocessd(MapTransform):
    """
    The SDK bundle operator's image (``(cols, rows, 1)``, modality and presentation LUTs applied, so MONOCHROME1 is
    already inverted) -> the AFLoc frame ``[3, S, S]`` with its preprocessing geometry in the meta.

    Display rule as :class:`~monai_afloc.transforms.image.LoadGrayscaleImage` for DICOM: shift to non-negative, then
    rescale by the maximum to [0, 255] (``scale_by_max_to_uint8``); then :class:`AFLocImagePreprocess`.

    Args:
        keys: the image key (``"image"``).
        image_size: the frame side ``S``.
    """

    def __init__(self, keys: KeysCollection = "image", image_size: int = 224, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.preprocess = AFLocImagePreprocess(size=image_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            x = d[key]
            arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
            if arr.ndim == 3 and arr.shape[-1] == 1:
                arr = arr[..., 0].T  # (cols, rows, 1) -> (rows, cols)
            elif arr.ndim == 3 and arr.shape[0] == 1:
                arr = arr[0].T  # channel-first (1, cols, rows)
            if arr.ndim != 2:
                raise ValueError(f"expected one 2D radiograph (cols, rows, 1), got shape {tuple(arr.shape)}.")
            arr = arr - min(arr.min(), 0.0)
            gray = torch.from_numpy(np.ascontiguousarray(scale_by_max_to_uint8(arr), dtype=np.float32))[None]
            d[key] = self.preprocess(MetaTensor(gray))
        return d


class FrameHeatmapsToOriginald(MapTransform):
    """
    Heatmaps on the square frame (``[1, K, S, S]`` or ``[K, S, S]``) -> ``[K, rows, cols]`` on the original image,
    undoing pad and resize with the geometry that :class:`AFLocBundlePreprocessd` stored on ``geometry_key``.

    Args:
        keys: the prediction key (``"pred"``).
        geometry_key: the pre-processed image key whose meta holds the geometry.
    """

    def __init__(self, keys: KeysCollection = "pred", geometry_key: str = "image", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.geometry_key = geometry_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref = d.get(self.geometry_key)
        meta = getattr(ref, "meta", None)
        if not meta or GEOMETRY_META_KEY not in meta:
            raise ValueError(
                f"'{self.geometry_key}' carries no {GEOMETRY_META_KEY} meta (run AFLocBundlePreprocessd first)."
            )
        geometry = PreprocessGeometry.from_dict(meta[GEOMETRY_META_KEY])
        for key in self.key_iterator(d):
            maps = torch.as_tensor(d[key]).float()
            if maps.ndim == 4 and maps.shape[0] == 1:
                maps = maps[0]
            if maps.ndim != 3:
                raise ValueError(f"expected heatmaps [1, K, S, S] or [K, S, S], got shape {tuple(maps.shape)}.")
            # the head rescales each map to [-1, 1] over the whole frame; the localizer over the image's pixels only
            # (not the padding): min-max rescaling ignores a prior affine rescale, so redoing it here on the valid
            # pixels gives the localizer's maps
            maps = rescale_to_unit_range(maps[None].cpu(), valid_frame_masks([geometry]))[0]
            d[key] = frame_to_original(maps, geometry)  # a tensor: the SDK passes unknown types on as arrays
        return d


def _metadata(source: Mapping[str, Any], labels: Sequence[str], prompts: Sequence[str], size: int, threshold: float = 0.5) -> dict:
    meta = copy.deepcopy(dict(source))
    meta["network_data_format"] = {
        "inputs": {
            "image": {
                "type": "image", "format": "magnitude", "modality": "DX", "num_channels": 1,
                "spatial_shape": ["*", "*"], "dtype": "float32", "value_range": [], "is_patch_data": False,
                "channel_def": {"0": "the radiograph as the DICOM series volume gives it (cols, rows, 1)"},
            }
        },
        "outputs": {
            "pred": {
                # not one of the SDK's known types ("image" would squeeze and cast to uint8): passed on as an array
                "type": "heatmaps", "format": "magnitude", "num_channels": len(labels),
                "spatial_shape": ["*", "*"], "dtype": "float32", "value_range": [-1, 1], "is_patch_data": False,
                "channel_def": {str(k): f"{lab}: '{pr}'" for k, (lab, pr) in enumerate(zip(labels, prompts))},
            }
        },
    }
    meta["deploy"] = {"labels": list(labels), "prompts": list(prompts), "frame_size": size, "threshold": threshold}
    return meta


def export_deploy_bundle(
    checkpoint: str | os.PathLike,
    directory: str | os.PathLike,
    findings: Sequence[tuple[str, str]],
    bundle_dir: str | os.PathLike | None = None,
    sigma: float | None = None,
    device: str = "cpu",
) -> str:
    """
    Export the chest bundle's ``heatmap_head`` with fixed prompts as a directory bundle for
    ``MonaiBundleInferenceOperator``.

    Args:
        checkpoint: the ``checkpoint`` override of the chest bundle (a monai_afloc checkpoint folder or release file).
        directory: output bundle folder (``configs/``, ``models/model.ts``).
        findings: ``[(label, prompt), ...]`` in output-channel order.
        bundle_dir: the chest bundle (default :data:`CHEST_BUNDLE_DIR`); its ``inferer`` (built with
            ``TextPromptLocalizer.from_checkpoint``), ``heatmap_head`` and ``metadata.json`` are used.
        sigma: Gaussian σ in grid cells; ``None`` keeps the checkpoint's (see
            :func:`~monai_afloc.checkpoint.load_inference_settings`).
        device: where the model is traced.

    Returns:
        the bundle folder.

    Raises:
        FileNotFoundError: when the chest bundle is not found.
        ValueError: on empty findings.
    """
    from monai.bundle import ConfigParser

    from monai_afloc.inferers.localizer import PromptEncoder

    bundle_dir = os.fspath(bundle_dir or CHEST_BUNDLE_DIR or "")
    if not os.path.isfile(os.path.join(bundle_dir, "configs", "inference.json")):
        raise FileNotFoundError(f"the chest bundle (configs/inference.json) was not found at '{bundle_dir}'.")
    if isinstance(findings, str) or not findings:
        raise ValueError(f"findings must be a non-empty list of (label, prompt) pairs, got {findings!r}.")
    labels, prompts = [str(a) for a, _ in findings], [str(b) for _, b in findings]
    parser = ConfigParser()
    parser.read_config(os.path.join(bundle_dir, "configs", "inference.json"))
    overrides: dict[str, Any] = {"bundle_root": bundle_dir, "checkpoint": os.fspath(checkpoint),
                                 "device": f"$torch.device('{device}')"}
    if sigma is not None:
        overrides["sigma"] = check_number("sigma", sigma, minimum=0)
    parser.update(overrides)
    head = parser.get_parsed_content("heatmap_head").eval()
    network = parser.get_parsed_content("network")
    inferer = parser.get_parsed_content("inferer")
    size = inferer.image_size  # the checkpoint's frame (or the override)
    vectors = PromptEncoder(network)(prompts)
    model = FixedPromptHeatmapNet(head, vectors).eval()
    example = torch.rand(1, 3, size, size, device=torch.device(device)) * 2 - 1
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # input checks run once at trace time
        traced = torch.jit.trace(model, example, check_trace=False)
        if not torch.allclose(traced(example.flip(-1)), model(example.flip(-1)), atol=1e-4):
            raise RuntimeError("the traced heatmap model differs from the eager one.")
    directory = os.fspath(directory)
    os.makedirs(os.path.join(directory, "configs"), exist_ok=True)
    os.makedirs(os.path.join(directory, "models"), exist_ok=True)
    save_net_with_metadata(traced, os.path.join(directory, "models", "model.ts"),
                           meta_values={"labels": labels, "prompts": prompts, "sigma": head.sigma})
    with open(os.path.join(bundle_dir, "configs", "metadata.json")) as f:
        source_meta = json.load(f)
    with open(os.path.join(directory, "configs", "metadata.json"), "w") as f:
        json.dump(_metadata(source_meta, labels, prompts, size, inferer.threshold), f, indent=2)
    inference = {
        "imports": ["$import torch", "$import monai_afloc.apps.deploy.bundle"],
        "device": f"$torch.device('{device}')",
        "image_size": size,
        "labels": labels,
        "prompts": prompts,
        "preprocessing": {
            "_target_": "monai.transforms.Compose",
            "transforms": [{"_target_": "monai_afloc.apps.deploy.bundle.AFLocBundlePreprocessd", "keys": "image",
                            "image_size": "@image_size"}],
        },
        "inferer": {"_target_": "monai.inferers.SimpleInferer"},
        "postprocessing": {
            "_target_": "monai.transforms.Compose",
            "transforms": [{"_target_": "monai_afloc.apps.deploy.bundle.FrameHeatmapsToOriginald", "keys": "pred",
                            "geometry_key": "image"}],
        },
    }
    with open(os.path.join(directory, "configs", "inference.json"), "w") as f:
        json.dump(inference, f, indent=2)
    return directory


def read_deploy_bundle_threshold(directory: str | os.PathLike) -> float:
    """The threshold a bundle written by :func:`export_deploy_bundle` was exported with (its checkpoint's)."""
    with open(os.path.join(os.fspath(directory), "configs", "metadata.json")) as f:
        return float(json.load(f).get("deploy", {}).get("threshold", 0.5))


def read_deploy_bundle_labels(directory: str | os.PathLike) -> tuple[list[str], list[str]]:
    """The ``(labels, prompts)`` a bundle written by :func:`export_deploy_bundle` was exported with."""
    path = os.path.join(os.fspath(directory), "configs", "metadata.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"not a deploy bundle (no configs/metadata.json): '{directory}'.")
    with open(path) as f:
        meta = json.load(f)
    if "deploy" not in meta:
        raise ValueError(f"'{path}' was not written by export_deploy_bundle (no 'deploy' entry).")
    return list(meta["deploy"]["labels"]), list(meta["deploy"]["prompts"])
