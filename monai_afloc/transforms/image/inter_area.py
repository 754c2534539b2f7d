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
The OpenCV ``INTER_AREA`` resize, ported to torch and numpy tap tables: the same numbers as ``cv2.resize(...,
interpolation=cv2.INTER_AREA)`` for the downscales and upscales AFLoc's preprocessing makes (tested against the
OpenCV formulas). Used by :class:`~monai_afloc.transforms.image.array.ResizeLongestSidePad`.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

__all__ = ["resize_inter_area"]

_DBL_EPSILON = sys.float_info.epsilon


def _area_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """
    OpenCV's ``computeResizeAreaTab`` as ``[T, out]`` tap tables: source index and float32 weight of the t-th term
    of every output pixel, in OpenCV's summation order (unused taps: index 0, weight 0, which adds exactly 0).
    """
    inv = out_size / in_size
    scale = 1.0 / inv
    pos = np.arange(out_size, dtype=np.float64)
    fsx1 = pos * scale
    fsx2 = fsx1 + scale
    cell = np.minimum(scale, in_size - fsx1)
    sx2 = np.minimum(np.floor(fsx2).astype(np.int64), in_size - 1)
    sx1 = np.minimum(np.ceil(fsx1).astype(np.int64), sx2)
    left = (sx1 - fsx1) > 1e-3
    right = (fsx2 - sx2) > 1e-3
    n_full = np.maximum(sx2 - sx1, 0)
    n_taps = int((left.astype(np.int64) + n_full + right.astype(np.int64)).max())
    t = np.arange(n_taps)[:, None]
    first_full = left.astype(np.int64)[None, :]
    index = np.zeros((n_taps, out_size), dtype=np.int64)
    weight = np.zeros((n_taps, out_size), dtype=np.float32)
    is_left = (t == 0) & left[None, :]
    index = np.where(is_left, sx1 - 1, index)
    weight = np.where(is_left, ((sx1 - fsx1) / cell).astype(np.float32), weight)
    is_full = (t >= first_full) & (t < first_full + n_full[None, :])
    index = np.where(is_full, sx1[None, :] + t - first_full, index)
    weight = np.where(is_full, (1.0 / cell).astype(np.float32)[None, :], weight)
    is_right = (t == first_full + n_full[None, :]) & right[None, :]
    index = np.where(is_right, sx2[None, :], index)
    w_right = (np.minimum(np.minimum(fsx2 - sx2, 1.0), cell) / cell).astype(np.float32)
    weight = np.where(is_right, w_right[None, :], weight)
    return index, weight.astype(np.float32)


def _linear_area_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    OpenCV's bilinear fallback of ``INTER_AREA`` (used when a side grows): ``sx = floor(dx * scale)``,
    ``fx = (dx + 1) - (sx + 1) / scale`` (0 if <= 0, else its fractional part), clamped at the last pixel.
    Returns the two source indices and float32 ``fx``.
    """
    inv = out_size / in_size
    scale = 1.0 / inv
    pos = np.arange(out_size)
    sx = np.floor(pos * scale).astype(np.int64)
    fx = ((pos + 1) - (sx + 1) * inv).astype(np.float32)
    fx = np.where(fx <= 0, np.float32(0), fx - np.floor(fx)).astype(np.float32)
    at_edge = sx >= in_size - 1
    fx = np.where(at_edge, np.float32(0), fx).astype(np.float32)
    sx = np.where(at_edge, in_size - 1, sx)
    return sx, np.minimum(sx + 1, in_size - 1), fx


def resize_inter_area(img: torch.Tensor, spatial_size: tuple[int, int], reference_uint8: bool = True) -> torch.Tensor:
    """
    Resize the last two dimensions like OpenCV's ``cv2.resize(..., interpolation=cv2.INTER_AREA)``, bit for bit on
    uint8-valued input (checked against OpenCV 5.0 on random and tie-prone images), on any device.

    - Integer shrink factors (OpenCV's "fast area" path): block sums times ``float32(1 / area)``; 2x2 blocks round
      half up (``(s + 2) >> 2``), the others half to even, as OpenCV does.
    - Other shrink factors: OpenCV's fractional-coverage weights (float32), summed in OpenCV's order in float32:
      horizontal taps then vertical taps. This is the separable ``Wy @ X @ Wx^T`` done tap by tap (a loop over at
      most ``ceil(factor) + 2`` taps, vectorised over all pixels) so that the float32 rounding matches OpenCV's.
    - A side that grows: OpenCV falls back to a bilinear variant; on uint8 input it uses 11-bit fixed-point
      weights and its SIMD rounding ``((a >> 4) * b >> 16 + ...) + 2 >> 2``, which we reproduce in int64.

    torch's ``interpolate(mode="area")`` (adaptive average pooling) differs from this for non-integer factors.

    Args:
        img: ``[..., H, W]`` real tensor.
        spatial_size: ``(h, w)``.
        reference_uint8: the input holds uint8 values (integers in ``[0, 255]``, not checked here) and the result
            is rounded and saturated to uint8 values as OpenCV does on a uint8 image; ``False`` keeps float32.

    Returns:
        float32 tensor ``[..., h, w]`` on ``img``'s device.

    Example::

        >>> x = torch.arange(12.0).reshape(1, 3, 4)
        >>> resize_inter_area(x, (1, 2), reference_uint8=False)
        tensor([[[4.5000, 6.5000]]])
    """
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"img: expected a torch.Tensor [..., H, W], got {type(img).__name__}.")
    if img.ndim < 2:
        raise ValueError(f"img: expected a tensor [..., H, W], got shape {tuple(img.shape)}.")
    h, w = (int(s) for s in spatial_size)
    in_h, in_w = int(img.shape[-2]), int(img.shape[-1])
    if h < 1 or w < 1:
        raise ValueError(f"spatial_size: expected positive sizes, got {(h, w)}.")
    x = torch.as_tensor(img).to(torch.float32)
    if (h, w) == (in_h, in_w):
        return x.clone()
    dev = x.device
    scale_y, scale_x = 1.0 / (h / in_h), 1.0 / (w / in_w)
    if scale_x >= 1 and scale_y >= 1:
        iscale_y, iscale_x = round(scale_y), round(scale_x)
        if abs(scale_y - iscale_y) < _DBL_EPSILON and abs(scale_x - iscale_x) < _DBL_EPSILON:
            blocks = x[..., : h * iscale_y, : w * iscale_x].reshape(*x.shape[:-2], h, iscale_y, w, iscale_x)
            total = blocks.sum(dim=(-3, -1))
            if reference_uint8 and (iscale_y, iscale_x) == (2, 2):
                return torch.floor((total + 2) / 4).clamp_(0, 255)
            out = total * torch.tensor(1.0 / (iscale_x * iscale_y), dtype=torch.float32, device=dev)
            return out.round().clamp_(0, 255) if reference_uint8 else out
        idx_x, wgt_x = (torch.as_tensor(a, device=dev) for a in _area_taps(in_w, w))
        idx_y, wgt_y = (torch.as_tensor(a, device=dev) for a in _area_taps(in_h, h))
        rows = x.new_zeros(*x.shape[:-1], w)
        for t in range(idx_x.shape[0]):
            rows = rows + x[..., idx_x[t]] * wgt_x[t]
        out = x.new_zeros(*x.shape[:-2], h, w)
        for t in range(idx_y.shape[0]):
            out = out + rows[..., idx_y[t], :] * wgt_y[t][:, None]
        return out.round().clamp_(0, 255) if reference_uint8 else out
    x0, x1, fx = (torch.as_tensor(a, device=dev) for a in _linear_area_taps(in_w, w))
    y0, y1, fy = (torch.as_tensor(a, device=dev) for a in _linear_area_taps(in_h, h))
    if not reference_uint8:
        rows = x[..., x0] * (1.0 - fx) + x[..., x1] * fx
        return rows[..., y0, :] * (1.0 - fy)[:, None] + rows[..., y1, :] * fy[:, None]
    coef = 2048.0  # OpenCV INTER_RESIZE_COEF_SCALE
    a0, a1 = torch.round((1.0 - fx) * coef).long(), torch.round(fx * coef).long()
    b0, b1 = torch.round((1.0 - fy) * coef).long()[:, None], torch.round(fy * coef).long()[:, None]
    xi = x.round().long()
    rows_i = xi[..., x0] * a0 + xi[..., x1] * a1
    top = torch.clamp(rows_i[..., y0, :] >> 4, -32768, 32767)
    bottom = torch.clamp(rows_i[..., y1, :] >> 4, -32768, 32767)
    acc = ((top * b0) >> 16) + ((bottom * b1) >> 16)
    return ((acc + 2) >> 2).clamp_(0, 255).to(torch.float32)
