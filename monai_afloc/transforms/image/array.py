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
Array image transforms of the AFLoc reference preprocessing: grayscale loading (PNG/JPG, DICOM, 2D NIfTI) in
row-major display orientation, OpenCV-exact ``INTER_AREA`` resizing of the longest side with zero padding to a
square, scikit-image-exact histogram equalization, the training centre crop, and the whole chain.

Images are channel-first ``[C, H, W]`` with row ``y`` down and column ``x`` right, as a viewer shows them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.data.image_reader import NibabelReader, PILReader
from monai.transforms import NormalizeIntensity, RepeatChannel, ScaleIntensityRange
from monai.transforms.transform import Transform
from monai.utils import TransformBackends, look_up_option, optional_import

from monai_afloc.transforms.image.geometry import (
    GEOMETRY_META_KEY,
    ORIGINAL_SIZE_META_KEY,
    PreprocessGeometry,
    center_crop_offset,
    longest_side_resize_shape,
)

pydicom, has_pydicom = optional_import("pydicom")
PILImage, has_pil = optional_import("PIL.Image")

__all__ = [
    "IMAGE_FORMATS",
    "RESIZE_INTERPOLATIONS",
    "scale_by_max_to_uint8",
    "resize_inter_area",
    "equalize_histogram",
    "LoadGrayscaleImage",
    "ResizeLongestSidePad",
    "EqualizeHistogram",
    "CenterCropFrame",
    "AFLocImagePreprocess",
    "MIN_IMAGE_SIZE",
    "check_image_size",
]

#: values of ``LoadGrayscaleImage(image_format=...)``
IMAGE_FORMATS = ("pil", "dicom", "nifti")
#: values of ``ResizeLongestSidePad(interpolation=...)``
RESIZE_INTERPOLATIONS = ("cv2_area", "area", "bilinear")

_PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm", ".pnm")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
_PIL_GRAY_MODES = ("L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_DBL_EPSILON = sys.float_info.epsilon


# ----------------------------------------------------------------------------------------------------------------
# pure functions
# ----------------------------------------------------------------------------------------------------------------


def scale_by_max_to_uint8(data: np.ndarray) -> np.ndarray:
    """
    Rescale an array to the uint8 range by its maximum exactly as the AFLoc reference does for DICOM with OpenCV's
    ``convertScaleAbs(x, alpha=255 / x.max())``: ``round_half_even(|x * float32(255 / max)|)`` computed in float32,
    saturated to ``[0, 255]``. Negative values are folded by the absolute value, as in OpenCV. An all-zero (or
    ``max == 0``) array gives zeros, as OpenCV does with an infinite ``alpha``.

    Args:
        data: a numeric array (any shape).

    Returns:
        float32 array of the same shape with integer values in ``[0, 255]``.

    Raises:
        ValueError: on empty or non-finite input.

    Example::

        >>> scale_by_max_to_uint8(np.array([0, 1000, 4095], dtype=np.uint16)).tolist()
        [0.0, 62.0, 255.0]
    """
    arr = np.asarray(data)
    if arr.size == 0:
        raise ValueError("expected a non-empty array to rescale, got an empty one.")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("expected finite pixel values, got NaN or infinity.")
    peak = float(arr.max())
    if peak == 0:
        return np.zeros(arr.shape, dtype=np.float32)
    alpha = np.float32(255.0 / peak)
    out = np.abs(arr.astype(np.float32) * alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.float32)


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


def equalize_histogram(img: torch.Tensor, mask: torch.Tensor | None = None, num_bins: int = 256) -> torch.Tensor:
    """
    Histogram equalization exactly as the AFLoc reference does it on a uint8 image ``u``:
    ``floor(255 * skimage.exposure.equalize_hist(u / 255, nbins=256, mask=mask))``, on any device.

    The histogram has ``num_bins`` equal bins between the min and max of the (masked) values, the cumulative
    histogram is divided by its total, and every pixel is linearly interpolated at the bin centres (``np.interp``
    semantics, float64). MONAI's ``HistogramNormalize`` rescales the cumulative histogram to start at 0 and
    interpolates at the left bin edges, so it differs. The whole input is one histogram (use one image).

    Args:
        img: uint8-valued real tensor of any shape.
        mask: optional bool tensor of ``img``'s shape: only these pixels build the histogram (all are mapped).
            The reference's training path uses ``img != 0``. An all-False mask leaves the image unchanged.
        num_bins: number of histogram bins.

    Returns:
        float32 tensor of ``img``'s shape with integer values in ``[0, 255]``.

    Example::

        >>> equalize_histogram(torch.tensor([0.0, 0.0, 128.0, 255.0])).tolist()
        [127.0, 127.0, 191.0, 255.0]
    """
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"img: expected a torch.Tensor, got {type(img).__name__}.")
    x = img.to(torch.float64) / 255.0
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.shape != img.shape:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask: expected a bool tensor of shape {tuple(img.shape)}, got {got}.")
        values = x[mask.to(device=x.device, dtype=torch.bool)]
    else:
        values = x.reshape(-1)
    if values.numel() == 0:
        return img.to(torch.float32).clone()
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = torch.as_tensor(np.linspace(lo, hi, num_bins + 1), dtype=torch.float64, device=x.device)
    bins = torch.bucketize(values, edges[1:-1], right=True)
    hist = torch.bincount(bins, minlength=num_bins)
    cdf = hist.cumsum(0).to(torch.float64)
    cdf = cdf / float(cdf[-1])
    centers = (edges[:-1] + edges[1:]) / 2.0
    slopes = (cdf[1:] - cdf[:-1]) / (centers[1:] - centers[:-1])
    j = torch.searchsorted(centers, x.contiguous(), right=True) - 1
    inner = j.clamp(0, num_bins - 2)
    interp = slopes[inner] * (x - centers[inner]) + cdf[inner]
    out = torch.where(j < 0, cdf[0], torch.where(j >= num_bins - 1, cdf[-1], interp))
    return torch.floor(255.0 * out).to(torch.float32)


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------


def _split(img: Any, name: str = "img") -> tuple[torch.Tensor, dict, torch.Tensor | None]:
    """Plain tensor, a copy of the meta (without the affine) and the affine of a MetaTensor / tensor / array."""
    if isinstance(img, MetaTensor):
        meta = {k: v for k, v in img.meta.items() if k != "affine"}
        return img.as_tensor(), meta, img.affine
    if isinstance(img, torch.Tensor):
        return img, {}, None
    if isinstance(img, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(img)), {}, None
    raise TypeError(f"{name}: expected a torch.Tensor, MetaTensor or np.ndarray, got {type(img).__name__}.")


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int, ``TypeError`` if it is not an integer, ``ValueError`` if it is below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}.")
    return int(value)


def _check_image(x: torch.Tensor, uint8_values: bool, name: str = "img") -> torch.Tensor:
    """Validate a channel-first 2D image ``[C, H, W]`` and return it as float32."""
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(f"{name}: expected a channel-first 2D image [C, H, W], got shape {tuple(x.shape)}.")
    if x.is_complex():
        raise TypeError(f"{name}: expected a real tensor, got dtype {x.dtype}.")
    x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: expected finite intensities, got NaN or infinity.")
    if uint8_values:
        lo, hi = float(x.min()), float(x.max())
        integral = bool((x == x.round()).all())
        if lo < 0 or hi > 255 or not integral:
            raise ValueError(
                f"{name}: expected uint8 intensities (integers in [0, 255]), got values in [{lo}, {hi}]"
                f"{'' if integral else ', not all integers'}; load with LoadGrayscaleImage or pass "
                "reference_uint8=False."
            )
    return x


def _compose_affine(affine: torch.Tensor | None, step: tuple[float, float], shift: tuple[float, float]) -> Any:
    """``affine @ A`` where ``A`` maps new (row, col) indices to old ones: ``old = step * new + shift``."""
    if affine is None:
        return None
    affine = torch.as_tensor(affine, dtype=torch.float64)
    rank = affine.shape[-1] - 1
    if rank < 2:
        return affine
    step_m = torch.eye(rank + 1, dtype=torch.float64)
    step_m[0, 0], step_m[1, 1] = step
    step_m[0, rank], step_m[1, rank] = shift
    return affine @ step_m


def _meta_tensor(x: torch.Tensor, meta: dict, affine: Any) -> MetaTensor:
    out = MetaTensor(x, meta=meta)
    if affine is not None:
        out.affine = affine
    return out


def _geometry_of(img: Any) -> PreprocessGeometry | None:
    meta = img.meta if isinstance(img, MetaTensor) else {}
    geometry = meta.get(GEOMETRY_META_KEY)
    return None if geometry is None else PreprocessGeometry.from_dict(geometry)


# ----------------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------------


def _pil_to_gray(image: Any) -> Any:
    """PILReader converter: keep grayscale modes (8/16/32-bit, float), convert the others to 8-bit luminance."""
    if image.mode in _PIL_GRAY_MODES:
        return image
    # RGB/RGBA/P/CMYK/YCbCr/1/LA -> "L": ITU-R 601-2 luma L = (19595 R + 38470 G + 7471 B + 2^15) >> 16; alpha dropped
    return image.convert("L")


def _detect_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith(_NIFTI_SUFFIXES):
        return "nifti"
    if lower.endswith(_DICOM_SUFFIXES):
        return "dicom"
    if lower.endswith(_PIL_SUFFIXES):
        return "pil"
    with open(path, "rb") as f:
        head = f.read(132)
    return "dicom" if head[128:132] == b"DICM" else "pil"


def _shift_nonnegative(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind in "iuf" and arr.size and arr.min() < 0:
        return arr.astype(np.float64) - float(arr.min())
    return arr


class LoadGrayscaleImage(Transform):
    """
    Load a 2D image file as a grayscale ``MetaTensor [1, H, W]`` of float32 uint8-range values (integers in
    ``[0, 255]``) in row-major display orientation (row = y down, column = x right, as a viewer shows it).

    Formats and intensity handling (chosen to match the AFLoc reference, which reads with ``cv2.imread(p, 0)`` and
    ``pydicom`` + ``cv2.convertScaleAbs``):

    - PNG/JPG/BMP/TIFF (Pillow, through MONAI's ``PILReader(reverse_indexing=False)``; MONAI's ``LoadImage`` with
      its default ``PILReader`` or ``ITKReader`` returns a 40 x 24 PNG as ``[24, 40]``, transposed): 8-bit
      grayscale is kept as is (identical to ``cv2.imread(p, 0)`` for 8-bit PNG and grayscale JPEG, tested);
      RGB/RGBA/palette images become 8-bit ITU-R 601-2 luminance (Pillow's ``convert("L")``; OpenCV's decoders may
      differ by one gray level on colour images); 16-bit (and 32-bit/float) grayscale is rescaled to ``[0, 255]``
      by its maximum like DICOM (``cv2.imread(p, 0)`` would instead keep the high byte). Pillow reads 16-bit RGB
      PNG as 8-bit RGB.
    - DICOM (pydicom; MONAI's ``PydicomReader`` swaps the axes, applies the rescale slope/intercept and ignores VOI
      LUT and MONOCHROME1, so we decode ourselves): the raw stored values (no modality LUT, as in the reference);
      if ``apply_voi_lut`` and the file has a VOI LUT or window centre/width, the modality LUT then
      ``pydicom``'s ``apply_voi_lut`` are applied first (the AFLoc release does not window; its output is shifted
      to be non-negative). Then ``x = round_saturate(|x * 255 / x.max()|)`` (``convertScaleAbs``), and MONOCHROME1
      becomes ``255 - x``. Colour DICOM becomes luminance ``0.299 R + 0.587 G + 0.114 B`` before rescaling.
      Multi-frame DICOM is rejected.
    - NIfTI (MONAI's ``NibabelReader``, no reorientation): a ``[H, W]`` or ``[H, W, 1]`` volume whose first array
      axis is taken as the rows. uint8 data is kept; other data is shifted to be non-negative if needed and
      rescaled by its maximum like DICOM.

    The output's meta holds ``filename_or_obj``, ``spatial_shape`` and ``afloc_original_size`` (both ``(H, W)``),
    ``afloc_source_format``, and for DICOM ``afloc_photometric_interpretation``, ``afloc_voi_lut_applied`` and
    ``afloc_pixel_spacing`` (row, col; when present).

    Args:
        image_format: ``None`` (from the suffix; files without a known suffix are sniffed for the DICOM
            ``DICM`` marker, else read with Pillow), ``"pil"``, ``"dicom"`` or ``"nifti"``.
        apply_voi_lut: apply a DICOM VOI LUT / window when the file has one.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        ValueError: the file cannot be decoded (the message names it) or is not a 2D image.
        TypeError: the input is not a path.

    Example::

        >>> img = LoadGrayscaleImage()("chest.dcm")  # doctest: +SKIP
        >>> img.shape, img.meta["afloc_original_size"]  # doctest: +SKIP
        (torch.Size([1, 3000, 2500]), (3000, 2500))
    """

    backend = [TransformBackends.NUMPY, TransformBackends.TORCH]

    def __init__(self, image_format: str | None = None, apply_voi_lut: bool = True) -> None:
        if image_format is not None:
            image_format = look_up_option(image_format, IMAGE_FORMATS)
        if not isinstance(apply_voi_lut, bool):
            raise TypeError(f"apply_voi_lut: expected a bool, got {type(apply_voi_lut).__name__}.")
        self.image_format = image_format
        self.apply_voi_lut = apply_voi_lut

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"filename: expected a path (str or os.PathLike), got {type(filename).__name__}.")
        path = os.fspath(filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image file not found: '{path}'.")
        fmt = self.image_format or _detect_format(path)
        extra: dict[str, Any] = {}
        if fmt == "dicom":
            gray, extra = self._read_dicom(path)
        elif fmt == "nifti":
            gray = self._read_nifti(path)
        else:
            gray = self._read_pil(path)
        height, width = gray.shape
        meta = {
            "filename_or_obj": path,
            "spatial_shape": (height, width),
            "original_channel_dim": 0,
            ORIGINAL_SIZE_META_KEY: (height, width),
            "afloc_source_format": fmt,
            **extra,
        }
        return MetaTensor(torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None], meta=meta)

    @staticmethod
    def _require_2d(arr: np.ndarray, path: str) -> np.ndarray:
        while arr.ndim > 2 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim != 2 or min(arr.shape) < 1:
            raise ValueError(f"expected a 2D image, got shape {tuple(arr.shape)} in '{path}'.")
        return arr

    def _read_pil(self, path: str) -> np.ndarray:
        if not has_pil:
            raise ImportError(f"reading '{path}' needs Pillow: pip install pillow.")
        reader = PILReader(converter=_pil_to_gray, reverse_indexing=False)
        try:
            data, meta = reader.get_data(reader.read(path))
        except Exception as err:  # any decoder failure means a corrupt or unsupported file
            raise ValueError(f"could not read image file '{path}' with Pillow: {err}") from err
        arr = self._require_2d(np.asarray(data), path)
        if meta.get("mode") == "L" or arr.dtype == np.uint8:
            return arr.astype(np.float32)
        return scale_by_max_to_uint8(_shift_nonnegative(arr))

    def _read_nifti(self, path: str) -> np.ndarray:
        reader = NibabelReader(as_closest_canonical=False)
        try:
            data, _ = reader.get_data(reader.read(path))
        except Exception as err:
            raise ValueError(f"could not read NIfTI file '{path}': {err}") from err
        arr = self._require_2d(np.asarray(data), path)
        if arr.dtype == np.uint8:
            return arr.astype(np.float32)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"NIfTI file '{path}' holds NaN or infinite values.")
        return scale_by_max_to_uint8(_shift_nonnegative(arr))

    def _read_dicom(self, path: str) -> tuple[np.ndarray, dict]:
        if not has_pydicom:
            raise ImportError(f"reading '{path}' needs pydicom: pip install pydicom.")
        try:
            ds = pydicom.dcmread(path, force=True)
            if "PixelData" not in ds:
                raise ValueError("the dataset has no PixelData element")
            arr = np.asarray(ds.pixel_array)
        except Exception as err:
            raise ValueError(f"could not read DICOM file '{path}': {err}") from err
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if samples == 3 and arr.ndim == 3 and arr.shape[-1] == 3:
            arr = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
        elif arr.ndim != 2:
            raise ValueError(f"expected a 2D image, got shape {tuple(arr.shape)} in '{path}'.")
        has_voi = "VOILUTSequence" in ds or "WindowCenter" in ds
        voi_applied = False
        if self.apply_voi_lut and has_voi and samples == 1:
            try:
                arr = _dicom_modality_lut(arr, ds)
                arr = np.asarray(_dicom_voi_lut(arr, ds), dtype=np.float64)
            except Exception as err:
                raise ValueError(f"could not apply the VOI LUT of DICOM file '{path}': {err}") from err
            arr = _shift_nonnegative(arr)
            voi_applied = True
        gray = scale_by_max_to_uint8(arr)
        if photometric == "MONOCHROME1":
            gray = 255.0 - gray
        extra: dict[str, Any] = {
            "afloc_photometric_interpretation": photometric,
            "afloc_voi_lut_applied": voi_applied,
        }
        spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
        if spacing is not None and len(spacing) == 2:
            extra["afloc_pixel_spacing"] = (float(spacing[0]), float(spacing[1]))
        return gray, extra


def _dicom_modality_lut(arr: np.ndarray, ds: Any) -> np.ndarray:
    try:
        from pydicom.pixels import apply_modality_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_modality_lut
    return apply_modality_lut(arr, ds)


def _dicom_voi_lut(arr: np.ndarray, ds: Any) -> np.ndarray:
    try:
        from pydicom.pixels import apply_voi_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_voi_lut
    return apply_voi_lut(arr, ds)


# ----------------------------------------------------------------------------------------------------------------
# geometry transforms
# ----------------------------------------------------------------------------------------------------------------


class ResizeLongestSidePad(Transform):
    """
    Resize a channel-first 2D image so that its longest side is ``size`` and zero-pad the short side to a square,
    centred with the odd pixel at the bottom/right (``pad_top = (size - h) // 2``), like the AFLoc reference's
    ``resize_img``. The short side is ``int(short * size / long)`` (the reference truncates; MONAI's
    ``Resize(size_mode="longest")`` rounds, so it is not reused).

    The output's meta gets ``afloc_geometry`` (:meth:`PreprocessGeometry.to_dict`) for mapping heatmaps and boxes
    back (:mod:`monai_afloc.transforms.image.geometry`), and an affine updated for the resize and the pad. The
    step is not recorded in MONAI's ``applied_operations`` (invert with the geometry record instead).

    Args:
        size: side of the output square.
        interpolation: ``"cv2_area"`` (default, the release's ``cv2.INTER_AREA``, exact, see
            :func:`resize_inter_area`), ``"area"`` (torch adaptive average pooling; differs for non-integer factors)
            or ``"bilinear"`` (torch, ``align_corners=False``, no antialiasing).
        reference_uint8: the input must hold uint8 values and the resized values are rounded to uint8 values as
            OpenCV does on a uint8 image; ``False`` accepts any finite float image and keeps float results.

    Example::

        >>> out = ResizeLongestSidePad(224)(torch.zeros(1, 300, 100))
        >>> out.shape, out.meta["afloc_geometry"]["pad"]
        (torch.Size([1, 224, 224]), (0, 75))
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, size: int = 224, interpolation: str = "cv2_area", reference_uint8: bool = True) -> None:
        self.size = _positive_int(size, "size")
        if not isinstance(reference_uint8, bool):
            raise TypeError(f"reference_uint8: expected a bool, got {type(reference_uint8).__name__}.")
        self.interpolation = look_up_option(interpolation, RESIZE_INTERPOLATIONS)
        self.reference_uint8 = reference_uint8

    def resize(self, x: torch.Tensor, spatial_size: tuple[int, int]) -> torch.Tensor:
        """Resize ``[C, H, W]`` to ``[C, h, w]`` with the configured interpolation (no padding)."""
        if tuple(x.shape[-2:]) == tuple(spatial_size):
            return x.to(torch.float32).clone()
        if self.interpolation == "cv2_area":
            return resize_inter_area(x, spatial_size, self.reference_uint8)
        kwargs = {"align_corners": False} if self.interpolation == "bilinear" else {}
        out = F.interpolate(x[None].to(torch.float32), size=spatial_size, mode=self.interpolation, **kwargs)[0]
        return out.round().clamp_(0, 255) if self.reference_uint8 else out

    def __call__(self, img: Any) -> MetaTensor:
        x, meta, affine = _split(img)
        x = _check_image(x, self.reference_uint8)
        height, width = int(x.shape[-2]), int(x.shape[-1])
        (h, w), scale = longest_side_resize_shape(height, width, self.size)
        resized = self.resize(x, (h, w))
        top, left = (self.size - h) // 2, (self.size - w) // 2
        out = F.pad(resized, (left, self.size - w - left, top, self.size - h - top), value=0.0)
        geometry = PreprocessGeometry((height, width), (h, w), scale, (top, left), self.size)
        meta[GEOMETRY_META_KEY] = geometry.to_dict()
        meta.setdefault(ORIGINAL_SIZE_META_KEY, (height, width))
        step = (height / h, width / w)
        shift = ((0.5 - top) * step[0] - 0.5, (0.5 - left) * step[1] - 0.5)
        return _meta_tensor(out, meta, _compose_affine(affine, step, shift))


class CenterCropFrame(Transform):
    """
    Centre-crop a square frame to ``crop_size`` like torchvision's ``CenterCrop`` (the AFLoc training transform:
    start ``int(round((S - crop) / 2))``, see :func:`~monai_afloc.transforms.image.geometry.center_crop_offset`;
    MONAI's ``CenterSpatialCrop`` rounds the other way for odd differences) and update the ``afloc_geometry``
    record in the meta when there is one.

    Args:
        crop_size: side of the output square.

    Example::

        >>> frame = ResizeLongestSidePad(256)(torch.zeros(1, 300, 100))
        >>> out = CenterCropFrame(224)(frame)
        >>> out.shape, out.meta["afloc_geometry"]["crop"]
        (torch.Size([1, 224, 224]), (16, 16))
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, crop_size: int = 224) -> None:
        self.crop_size = _positive_int(crop_size, "crop_size")

    def __call__(self, img: Any) -> MetaTensor:
        geometry = _geometry_of(img)
        x, meta, affine = _split(img)
        if x.ndim != 3:
            raise ValueError(f"img: expected a channel-first 2D image [C, H, W], got shape {tuple(x.shape)}.")
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if self.crop_size > min(height, width):
            raise ValueError(f"crop_size {self.crop_size} is larger than the image's spatial shape {(height, width)}.")
        if geometry is not None and (height, width) != (geometry.frame_size,) * 2:
            raise ValueError(
                f"img: spatial shape {(height, width)} does not match its afloc_geometry frame size "
                f"{geometry.frame_size}."
            )
        top, left = center_crop_offset(height, self.crop_size), center_crop_offset(width, self.crop_size)
        out = x[..., top : top + self.crop_size, left : left + self.crop_size].clone()
        if geometry is not None:
            meta[GEOMETRY_META_KEY] = geometry.center_crop(self.crop_size).to_dict()
        return _meta_tensor(out, meta, _compose_affine(affine, (1.0, 1.0), (float(top), float(left))))


class EqualizeHistogram(Transform):
    """
    The AFLoc reference's optional histogram equalization of a uint8 image (``skimage.exposure.equalize_hist`` on
    ``u / 255``, back to uint8 by truncation), exact; see :func:`equalize_histogram` for why MONAI's
    ``HistogramNormalize`` is not used.

    Args:
        mask_zero: build the histogram from the non-zero pixels only (the reference's training path, which
            excludes the zero padding); ``False`` uses all pixels (the reference's inference path).
        num_bins: number of histogram bins.

    Example::

        >>> EqualizeHistogram()(torch.tensor([[[0.0, 0.0, 128.0, 255.0]]])).tolist()
        [[[127.0, 127.0, 191.0, 255.0]]]
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, mask_zero: bool = False, num_bins: int = 256) -> None:
        if not isinstance(mask_zero, bool):
            raise TypeError(f"mask_zero: expected a bool, got {type(mask_zero).__name__}.")
        self.mask_zero = mask_zero
        self.num_bins = _positive_int(num_bins, "num_bins", minimum=2)

    def __call__(self, img: Any) -> MetaTensor:
        x, meta, affine = _split(img)
        x = _check_image(x, uint8_values=True)
        out = equalize_histogram(x, x != 0 if self.mask_zero else None, self.num_bins)
        return _meta_tensor(out, meta, affine)


#: the smallest image side AFLocImagePreprocess accepts (pixels): a smaller image carries too little to localize in
#: (a 1 x 1 image would give a constant frame and a confident-looking score)
MIN_IMAGE_SIZE = 16


def check_image_size(height: int, width: int, what: str = "image", minimum: int = MIN_IMAGE_SIZE) -> None:
    """Raise ``ValueError`` when ``height`` or ``width`` is below ``minimum`` pixels (:data:`MIN_IMAGE_SIZE`)."""
    if min(height, width) < minimum:
        raise ValueError(
            f"{what} is {height} x {width} pixels; AFLoc needs at least {minimum} x {minimum} (MIN_IMAGE_SIZE)."
        )


class AFLocImagePreprocess(Transform):
    """
    The whole AFLoc reference image chain, from a file (or an already loaded grayscale image) to the network input.

    Inference (``train=False``): load -> :class:`ResizeLongestSidePad` (``size``) -> optional
    :class:`EqualizeHistogram` (all pixels) -> scale ``[0, 255] -> [0, 1]`` (MONAI ``ScaleIntensityRange``) ->
    repeat to 3 channels (``RepeatChannel``) -> normalise with mean 0.5 and std 0.5 (``NormalizeIntensity``).
    Training (``train=True``): resize the longest side to ``train_resize_size`` (256) and pad, optional
    equalization of the non-zero pixels, then :class:`CenterCropFrame` (``size``), then the same scaling.
    The result equals torchvision's ``ToTensor`` + ``Normalize((0.5,) * 3, (0.5,) * 3)`` bit for bit.

    Args:
        size: side of the output (224).
        train: use the training variant.
        train_resize_size: longest side before the training crop (256).
        equalize_hist: apply histogram equalization (off in the release's inference).
        interpolation: see :class:`ResizeLongestSidePad`.
        reference_uint8: see :class:`ResizeLongestSidePad`.
        image_format: see :class:`LoadGrayscaleImage`.
        apply_voi_lut: see :class:`LoadGrayscaleImage`.

    Input: a file path, or a grayscale image ``[1, H, W]`` / ``[H, W]`` (tensor, MetaTensor or array), at least
    :data:`MIN_IMAGE_SIZE` (16) pixels on each side.
    Output: float32 ``MetaTensor [3, size, size]`` with values in ``[-1, 1]`` and ``afloc_geometry`` in its meta.

    Example::

        >>> out = AFLocImagePreprocess()(torch.full((300, 100), 200.0))
        >>> out.shape, out.dtype
        (torch.Size([3, 224, 224]), torch.float32)
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        size: int = 224,
        train: bool = False,
        train_resize_size: int = 256,
        equalize_hist: bool = False,
        interpolation: str = "cv2_area",
        reference_uint8: bool = True,
        image_format: str | None = None,
        apply_voi_lut: bool = True,
    ) -> None:
        for name, flag in (("train", train), ("equalize_hist", equalize_hist)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name}: expected a bool, got {type(flag).__name__}.")
        size = _positive_int(size, "size")
        train_resize_size = _positive_int(train_resize_size, "train_resize_size")
        if train and train_resize_size < size:
            raise ValueError(f"train_resize_size ({train_resize_size}) must be >= size ({size}) to crop.")
        self.train = train
        self.loader = LoadGrayscaleImage(image_format=image_format, apply_voi_lut=apply_voi_lut)
        self.resize = ResizeLongestSidePad(train_resize_size if train else size, interpolation, reference_uint8)
        self.equalize = EqualizeHistogram(mask_zero=train) if equalize_hist else None
        self.crop = CenterCropFrame(size) if train else None
        self.scale = ScaleIntensityRange(a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=False)
        self.repeat = RepeatChannel(repeats=3)
        self.normalize = NormalizeIntensity(subtrahend=0.5, divisor=0.5)

    def __call__(self, img: Any) -> MetaTensor:
        if isinstance(img, (str, os.PathLike)):
            img = self.loader(img)
        elif isinstance(img, (torch.Tensor, np.ndarray)) and img.ndim == 2:
            img = img[None]
        if isinstance(img, Mapping):
            raise TypeError("img: expected a path or an image, got a mapping; use AFLocImagePreprocessd for dicts.")
        x, _, _ = _split(img)
        if x.ndim != 3 or x.shape[0] != 1:
            raise ValueError(f"img: expected a grayscale image [1, H, W] or [H, W], got shape {tuple(x.shape)}.")
        meta = getattr(img, "meta", None) or {}
        check_image_size(int(x.shape[1]), int(x.shape[2]), f"image '{meta['filename_or_obj']}'"
                         if isinstance(meta.get("filename_or_obj"), str) else "img")
        out = self.resize(img)
        if self.equalize is not None:
            out = self.equalize(out)
        if self.crop is not None:
            out = self.crop(out)
        out = self.normalize(self.repeat(self.scale(out)))
        return out if isinstance(out, MetaTensor) else MetaTensor(out)
