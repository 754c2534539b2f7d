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
Pure tensor maths of AFLoc localization (docs/design.md §5): prompt-region similarity, Gaussian smoothing with scipy's
``gaussian_filter`` semantics (mode "reflect", truncate 4.0) implemented in torch so it runs on the tensor's device,
upsampling to the input frame and min–max rescaling to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_kernel1d", "gaussian_smooth2d", "similarity_map", "rescale_to_unit_range", "upsample_maps"]


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float32, device=None) -> torch.Tensor:
    """The normalised 1D Gaussian of ``scipy.ndimage.gaussian_filter1d``: radius ``int(truncate * sigma + 0.5)``."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}.")
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    w = torch.exp(-0.5 * (x / float(sigma)) ** 2)
    return (w / w.sum()).to(dtype)


def _reflect_indices(n: int, radius: int, device) -> torch.Tensor:
    """Indices of scipy's "reflect" extension (d c b a | a b c d | d c b a), repeated for any radius."""
    i = torch.arange(-radius, n + radius, device=device)
    j = torch.remainder(i, 2 * n)
    return torch.where(j >= n, 2 * n - 1 - j, j)


def gaussian_smooth2d(maps: torch.Tensor, sigma: float = 1.5, truncate: float = 4.0) -> torch.Tensor:
    """
    Separable Gaussian smoothing of the last two dimensions, equal to ``scipy.ndimage.gaussian_filter(x, sigma,
    mode="reflect", truncate=truncate)`` applied to each 2D map (to float round-off).

    Args:
        maps: ``[..., H, W]`` float tensor.
        sigma: standard deviation in pixels (grid cells); ``0`` returns the input unchanged.
    """
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2:
        raise ValueError(f"maps must be a tensor with at least 2 dimensions [..., H, W], got {type(maps).__name__}.")
    if sigma == 0:
        return maps
    kernel = gaussian_kernel1d(sigma, truncate, dtype=maps.dtype, device=maps.device)
    radius = (kernel.numel() - 1) // 2
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    x = maps.reshape(-1, 1, h, w)
    x = x.index_select(2, _reflect_indices(h, radius, maps.device))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    x = x.index_select(3, _reflect_indices(w, radius, maps.device))
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return x.reshape(*lead, h, w)


def similarity_map(region_embeddings: torch.Tensor, text_embeddings: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """
    AFLoc prompt heatmaps on the region grid: the dot product (no normalisation) of every prompt embedding with every
    region embedding, smoothed by a Gaussian of ``sigma`` grid cells (1.5 in the reference, for a 19×19 grid).

    Args:
        region_embeddings: ``[B, D, h, w]`` (the ``image_sentences`` output in the reference).
        text_embeddings: ``[K, D]`` prompt vectors (the ``text_report`` output in the reference).
        sigma: Gaussian σ in grid cells; 0 disables smoothing.

    Returns:
        ``[B, K, h, w]`` similarity maps (before resizing).

    Example::

        >>> similarity_map(torch.rand(2, 8, 19, 19), torch.rand(3, 8)).shape
        torch.Size([2, 3, 19, 19])
    """
    if not isinstance(region_embeddings, torch.Tensor) or region_embeddings.ndim != 4:
        raise ValueError(f"region_embeddings must be a [B, D, h, w] tensor, got {_shape(region_embeddings)}.")
    if not isinstance(text_embeddings, torch.Tensor) or text_embeddings.ndim != 2:
        raise ValueError(f"text_embeddings must be a [K, D] tensor, got {_shape(text_embeddings)}.")
    if region_embeddings.shape[1] != text_embeddings.shape[1]:
        raise ValueError(
            f"embedding widths differ: regions D={region_embeddings.shape[1]}, prompts D={text_embeddings.shape[1]}."
        )
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}.")
    text = text_embeddings.to(region_embeddings.dtype)
    sim = torch.einsum("bdhw,kd->bkhw", region_embeddings, text)
    return gaussian_smooth2d(sim, sigma)


def upsample_maps(maps: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling (``align_corners=False``) of ``[B, K, h, w]`` maps to ``size``."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def rescale_to_unit_range(maps: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """
    Min–max rescale each 2D map of ``[..., H, W]`` to [-1, 1], the minimum and maximum taken over ``valid`` pixels
    (``[H, W]`` or broadcastable to ``maps``; default all). A constant map becomes all zeros (never NaN). Invalid
    pixels are set to -1.
    """
    if valid is None:
        valid = torch.ones(maps.shape[-2:], dtype=torch.bool, device=maps.device)
    valid = valid.to(device=maps.device, dtype=torch.bool).expand_as(maps)
    inf = torch.finfo(maps.dtype).max
    lo = torch.where(valid, maps, torch.full_like(maps, inf)).amin(dim=(-2, -1), keepdim=True)
    hi = torch.where(valid, maps, torch.full_like(maps, -inf)).amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    out = torch.where(span > 0, 2 * (maps - lo) / span.clamp_min(torch.finfo(maps.dtype).tiny) - 1, torch.zeros_like(maps))
    return torch.where(valid, out, torch.full_like(out, -1.0))


def _shape(x) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
