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
Outputs people look at: overlay PNGs (heatmap over the image, colour bar, boxes, prompt as title), heatmaps and masks
as NIfTI/PNG in the source image's geometry, and one JSON per image with prompts, scores and boxes.

Overlays use matplotlib (``pip install 'monai-afloc[plot]'``) and MONAI's ``blend_images`` conventions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.utils import optional_import

mpl_figure, _has_mpl = optional_import("matplotlib.figure")
nib, _has_nib = optional_import("nibabel")
Image, _has_pil = optional_import("PIL.Image")

__all__ = ["overlay_figure", "save_overlay", "save_heatmaps_nifti", "save_mask_png", "save_result_json", "to_jsonable"]


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def to_jsonable(obj: Any) -> Any:
    """Tensors, numpy values and nested containers -> plain JSON types (NaN -> None)."""
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()] if obj.ndim else to_jsonable(obj.item())
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def overlay_figure(
    image: Any,
    heatmap: Any,
    title: str = "",
    boxes: Sequence[dict] | None = None,
    truth_boxes: Sequence[Sequence[float]] | None = None,
    alpha: float = 0.45,
    cmap: str = "jet",
    vmin: float = -1.0,
    vmax: float = 1.0,
) -> Any:
    """
    A matplotlib ``Figure`` of ``heatmap`` ([H, W], [-1, 1]) over the grayscale ``image`` ([H, W] or [1, H, W]) with
    a colour bar, predicted ``boxes`` (``{"box": [x, y, w, h], "score"}``, solid) and optional ``truth_boxes``
    (dashed). The figure is made without pyplot and without choosing a backend (``matplotlib.figure.Figure``), so it
    neither changes the caller's backend nor stays open: a notebook shows it, ``fig.savefig(path)`` writes it.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: ``image`` and ``heatmap`` are not 2D maps of one shape.
    """
    if not _has_mpl:
        raise ImportError("overlays need matplotlib: pip install 'monai-afloc[plot]'.")
    img, hm = np.squeeze(_np(image)).astype(np.float32), np.squeeze(_np(heatmap)).astype(np.float32)
    if img.ndim != 2 or hm.shape != img.shape:
        raise ValueError(f"image and heatmap must be 2D maps of one shape, got {img.shape} and {hm.shape}.")
    from matplotlib.patches import Rectangle

    h, w = img.shape
    fig = mpl_figure.Figure(figsize=(6.0 * w / max(h, w) + 1.2, 6.0 * h / max(h, w)), dpi=100)
    ax = fig.subplots()
    ax.imshow(img, cmap="gray")
    im = ax.imshow(np.ma.masked_invalid(hm), cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for b in boxes or []:
        x, y, bw, bh = b["box"]
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), bw, bh, fill=False, edgecolor="white", linewidth=1.5))
        if "score" in b:
            ax.text(x, y - 2, f"{b['score']:.2f}", color="white", fontsize=8)
    for x, y, bw, bh in truth_boxes or []:
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), bw, bh, fill=False, edgecolor="lime", linewidth=1.5, linestyle="--"))
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    return fig


def save_overlay(
    path: str,
    image: Any,
    heatmap: Any,
    title: str = "",
    boxes: Sequence[dict] | None = None,
    truth_boxes: Sequence[Sequence[float]] | None = None,
    alpha: float = 0.45,
    cmap: str = "jet",
    vmin: float = -1.0,
    vmax: float = 1.0,
) -> str:
    """Save :func:`overlay_figure` of the same arguments as a PNG at ``path`` (folders created); returns ``path``."""
    fig = overlay_figure(image, heatmap, title=title, boxes=boxes, truth_boxes=truth_boxes, alpha=alpha, cmap=cmap,
                         vmin=vmin, vmax=vmax)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path


def save_heatmaps_nifti(path: str, heatmaps: Any, spacing: Sequence[float] = (1.0, 1.0)) -> str:
    """
    Save ``[K, H, W]`` heatmaps as one NIfTI volume in MONAI's 2D convention (axis 0 = columns x, axis 1 = rows y,
    axis 2 = prompt), with the pixel ``spacing`` (row, col) in the affine; float32, NaN kept.
    """
    if not _has_nib:
        raise ImportError("NIfTI output needs nibabel.")
    maps = _np(heatmaps).astype(np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"heatmaps must be [K, H, W] or [H, W], got shape {maps.shape}.")
    affine = np.diag([float(spacing[1]), float(spacing[0]), 1.0, 1.0])
    nib.save(nib.Nifti1Image(np.transpose(maps, (2, 1, 0)), affine), path)
    return path


def save_mask_png(path: str, mask: Any) -> str:
    """Save a boolean ``[H, W]`` mask as an 8-bit PNG (0 / 255) in the source geometry."""
    if not _has_pil:
        raise ImportError("PNG output needs pillow.")
    m = np.squeeze(_np(mask)).astype(bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {m.shape}.")
    Image.fromarray((m * 255).astype(np.uint8)).save(path)
    return path


def save_result_json(path: str, result: dict) -> str:
    """Write ``result`` (tensors allowed; NaN written as null) as indented JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_jsonable(result), f, indent=2)
    return path
