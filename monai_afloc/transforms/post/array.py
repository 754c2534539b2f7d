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
Post-processing of AFLoc heatmaps: threshold to masks and connected components to scored boxes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.transforms import Transform
from scipy import ndimage

__all__ = ["heatmap_to_mask", "heatmap_to_boxes", "HeatmapToMask", "HeatmapToBoxes"]


def _as_numpy_2d(x: Any, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2D map [H, W], got shape {arr.shape}.")
    return arr


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}.")
    return float(threshold)


def heatmap_to_mask(heatmap: torch.Tensor, threshold: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``heatmap > threshold`` (any leading dimensions); NaN and invalid pixels are never in the mask."""
    threshold = _check_threshold(threshold)
    mask = heatmap > threshold  # NaN compares False
    if valid is not None:
        mask = mask & valid.to(device=mask.device, dtype=torch.bool)
    return mask


def heatmap_to_boxes(
    heatmap: Any, threshold: float, valid: Any = None, min_area: int = 1, connectivity: int = 2
) -> list[dict[str, Any]]:
    """
    Connected components of ``heatmap > threshold`` as boxes, highest score first.

    Args:
        heatmap: one 2D map ``[H, W]`` (torch or numpy).
        threshold: the mask threshold.
        valid: optional ``[H, W]`` bool map of pixels that belong to the image.
        min_area: components with fewer pixels are dropped.
        connectivity: 1 (4-neighbourhood) or 2 (8-neighbourhood).

    Returns:
        a list of ``{"box": [x, y, w, h], "score": max heatmap value in the component, "area": pixels}``; ``x, y``
        are the column and row of the top-left pixel.
    """
    threshold = _check_threshold(threshold)
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}.")
    hm = _as_numpy_2d(heatmap, "heatmap").astype(np.float64)
    mask = np.nan_to_num(hm, nan=-np.inf) > threshold
    if valid is not None:
        valid_np = _as_numpy_2d(valid, "valid").astype(bool)
        if valid_np.shape != hm.shape:
            raise ValueError(f"valid must match the heatmap shape {hm.shape}, got {valid_np.shape}.")
        mask &= valid_np
    labels, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(2, connectivity))
    if n == 0:
        return []
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # pixels per component
    # per-component maximum in one linear pass (ndimage.maximum argsorts the whole image: ~0.4 s at 1024^2)
    scores = np.full(n + 1, -np.inf)
    np.maximum.at(scores, labels[mask], hm[mask])
    scores = scores[1:]
    boxes = []
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None or areas[i] < min_area:
            continue
        ys, xs = sl
        boxes.append(
            {
                "box": [int(xs.start), int(ys.start), int(xs.stop - xs.start), int(ys.stop - ys.start)],
                "score": float(scores[i]),
                "area": int(areas[i]),
            }
        )
    boxes.sort(key=lambda b: -b["score"])
    return boxes


class HeatmapToMask(Transform):
    """Threshold heatmaps ``[..., H, W]`` into boolean masks (NaN pixels excluded)."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = _check_threshold(threshold)

    def __call__(self, heatmap: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return heatmap_to_mask(torch.as_tensor(heatmap), self.threshold, valid)


class HeatmapToBoxes(Transform):
    """Connected components of a thresholded 2D heatmap as scored ``[x, y, w, h]`` boxes (see :func:`heatmap_to_boxes`)."""

    def __init__(self, threshold: float = 0.5, min_area: int = 1, connectivity: int = 2) -> None:
        self.threshold = _check_threshold(threshold)
        if not isinstance(min_area, int) or min_area < 1:
            raise ValueError(f"min_area must be a positive int, got {min_area!r}.")
        if connectivity not in (1, 2):
            raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}.")
        self.min_area = min_area
        self.connectivity = connectivity

    def __call__(self, heatmap: Any, valid: Any = None) -> list[dict[str, Any]]:
        return heatmap_to_boxes(heatmap, self.threshold, valid, self.min_area, self.connectivity)
