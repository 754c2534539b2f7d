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
Grayscale image reading for AFLoc: PNG/JPG (Pillow), DICOM (pydicom; MONOCHROME1, VOI LUT) and 2D NIfTI, in
row-major display orientation, as ``MetaTensor [1, H, W]`` of uint8-range values (:class:`LoadGrayscaleImage`), and
the reference's rescale-by-maximum (:func:`scale_by_max_to_uint8`). An image whose longest side exceeds
``max_decode_size`` (:data:`DEFAULT_MAX_DECODE_SIZE`) is box-averaged by an integer factor on its stored integer
data (:func:`box_reduce`) before any float copy, so memory is bounded by design (the network sees 224 px).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.image_reader import NibabelReader, PILReader
from monai.transforms.transform import Transform
from monai.utils import TransformBackends, look_up_option, optional_import

from monai_afloc.transforms.image.geometry import DECODE_FACTOR_META_KEY, ORIGINAL_SIZE_META_KEY

pydicom, has_pydicom = optional_import("pydicom")
PILImage, has_pil = optional_import("PIL.Image")

__all__ = [
    "IMAGE_FORMATS",
    "IMAGE_FILE_SUFFIXES",
    "DEFAULT_MAX_DECODE_SIZE",
    "scale_by_max_to_uint8",
    "decode_factor",
    "box_reduce",
    "original_size_of",
    "LoadGrayscaleImage",
]

#: values of ``LoadGrayscaleImage(image_format=...)``
IMAGE_FORMATS = ("pil", "dicom", "nifti")

_PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm", ".pnm")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
#: file endings :class:`LoadGrayscaleImage` reads by their suffix (a folder of images expands to these files)
IMAGE_FILE_SUFFIXES: tuple[str, ...] = _PIL_SUFFIXES + _NIFTI_SUFFIXES + _DICOM_SUFFIXES
_PIL_GRAY_MODES = ("L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")

#: default ``LoadGrayscaleImage(max_decode_size=...)``: images whose longest side is above it (pixels) are decoded at
#: a reduced size. Every clinical radiograph (detectors up to about 4300 px, mammograms about 6000 px) stays below
#: it and keeps the exact reference path; a 12000 x 12000 image is decoded at 6000 x 6000.
DEFAULT_MAX_DECODE_SIZE = 8192
_BAND_ELEMENTS = 1 << 21  # box_reduce's work per band of rows (16 MB of int64 / float64 sums)


def decode_factor(height: int, width: int, max_size: int | None) -> int:
    """
    The integer reduction factor of an ``height x width`` image under ``max_size``: ``1`` when ``max_size`` is
    ``None`` or the longest side is at most ``max_size``, else the smallest ``f`` with ``ceil(longest / f) <=
    max_size`` (so the reduced longest side lies in ``(max_size / 2, max_size]``).

    Example::

        >>> decode_factor(12000, 12000, 8192), decode_factor(3000, 2500, 8192), decode_factor(9000, 100, None)
        (2, 1, 1)
    """
    longest = max(int(height), int(width))
    if max_size is None or longest <= max_size:
        return 1
    return -(-longest // int(max_size))


def box_reduce(arr: np.ndarray, factor: int) -> np.ndarray:
    """
    Integer box average over the first two axes: output pixel ``(i, j)`` is the mean of
    ``arr[i*f:(i+1)*f, j*f:(j+1)*f]`` (edge blocks of an image whose size is not a multiple of ``f`` average the
    pixels they have), so the output is ``ceil(H / f) x ceil(W / f)``. Integer data are summed exactly in int64 and
    the mean is rounded half to even back to ``arr``'s dtype; float data are averaged in float64 and kept in their
    dtype. Works in bands of rows, so the extra memory is a few MB whatever the image size.

    Args:
        arr: ``[H, W, ...]`` numeric (or bool) array.
        factor: integer ``f >= 1`` (``1`` returns ``arr`` itself).

    Example::

        >>> box_reduce(np.array([[0, 2, 9], [4, 6, 9]], np.uint8), 2).tolist()
        [[3, 9]]
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor: expected an integer >= 1, got {factor!r}.")
    arr = np.asarray(arr)
    if arr.ndim < 2:
        raise ValueError(f"arr: expected an array [H, W, ...], got shape {arr.shape}.")
    f = int(factor)
    if f == 1:
        return arr
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"arr: expected integer or float pixel data, got dtype {arr.dtype}.")
    height, width = arr.shape[:2]
    acc = np.float64 if arr.dtype.kind == "f" else np.int64
    starts_r, starts_c = np.arange(0, height, f), np.arange(0, width, f)
    count_c = np.minimum(f, width - starts_c)
    trailing = (1,) * (arr.ndim - 2)
    out = np.empty((len(starts_r), len(starts_c), *arr.shape[2:]), dtype=arr.dtype)
    band = max(1, _BAND_ELEMENTS // max(1, f * width * int(np.prod(arr.shape[2:], dtype=np.int64))))
    for r0 in range(0, len(starts_r), band):  # bands of output rows: bounded memory, not a per-item loop
        rows = arr[r0 * f : (r0 + band) * f]
        sums = np.add.reduceat(rows, np.arange(0, rows.shape[0], f), axis=0, dtype=acc)
        sums = np.add.reduceat(sums, starts_c, axis=1)
        count_r = np.minimum(f, height - starts_r[r0 : r0 + band])
        mean = sums / (count_r[:, None] * count_c[None, :]).reshape(*count_r.shape, len(count_c), *trailing)
        out[r0 : r0 + band] = mean if acc is np.float64 else np.rint(mean)
    return out


def original_size_of(image: Any) -> tuple[int, int]:
    """
    ``(H, W)`` of the image file a :class:`LoadGrayscaleImage` output was decoded from (its meta's
    ``afloc_original_size``; larger than the tensor when it was decoded at a reduced size), else the tensor's own.
    """
    meta = getattr(image, "meta", None) or {}
    size = meta.get(ORIGINAL_SIZE_META_KEY)
    if size is None:
        return int(image.shape[-2]), int(image.shape[-1])
    return int(size[0]), int(size[1])


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

    Large images (bounded memory): when the longest side of the stored image is above ``max_decode_size``, the
    stored data (uint8 / uint16 / ... as decoded, before any float copy and before the rescaling above) is
    box-averaged by the integer factor ``f`` of :func:`decode_factor` (:func:`box_reduce`), and the output is
    ``[1, ceil(H / f), ceil(W / f)]``. Its meta keeps the original ``(H, W)`` in ``afloc_original_size`` and ``f`` in
    ``afloc_decode_factor``; :class:`ResizeLongestSidePad` builds the geometry from the original size, so heatmaps
    and boxes map back to original pixels. Below the threshold nothing changes (``f = 1``, the exact reference
    path). The reduced path is not the reference's: the frame differs from a full-size ``INTER_AREA`` by the
    rounding of the box means (and, for DICOM, by windowing / rescaling the means rather than the pixels).

    The output's meta holds ``filename_or_obj``, ``spatial_shape`` (the tensor's ``(H', W')``),
    ``afloc_original_size`` (the file's ``(H, W)``), ``afloc_decode_factor`` (``1`` unless reduced),
    ``afloc_source_format``, and for DICOM ``afloc_photometric_interpretation``, ``afloc_voi_lut_applied`` and
    ``afloc_pixel_spacing`` (row, col; when present).

    Args:
        image_format: ``None`` (from the suffix; files without a known suffix are sniffed for the DICOM
            ``DICM`` marker, else read with Pillow), ``"pil"``, ``"dicom"`` or ``"nifti"``.
        apply_voi_lut: apply a DICOM VOI LUT / window when the file has one.
        max_decode_size: longest side (pixels) above which the image is decoded at a reduced size (see above);
            default :data:`DEFAULT_MAX_DECODE_SIZE` (8192); ``None`` always decodes at full size.

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

    def __init__(
        self,
        image_format: str | None = None,
        apply_voi_lut: bool = True,
        max_decode_size: int | None = DEFAULT_MAX_DECODE_SIZE,
    ) -> None:
        if image_format is not None:
            image_format = look_up_option(image_format, IMAGE_FORMATS)
        if not isinstance(apply_voi_lut, bool):
            raise TypeError(f"apply_voi_lut: expected a bool, got {type(apply_voi_lut).__name__}.")
        if max_decode_size is not None:
            if isinstance(max_decode_size, bool) or not isinstance(max_decode_size, (int, np.integer)):
                raise TypeError(f"max_decode_size: expected an int or None, got {type(max_decode_size).__name__}.")
            if max_decode_size < 1:
                raise ValueError(f"max_decode_size: expected an integer >= 1 or None, got {max_decode_size}.")
            max_decode_size = int(max_decode_size)
        self.image_format = image_format
        self.apply_voi_lut = apply_voi_lut
        self.max_decode_size = max_decode_size

    def _reduce(self, arr: np.ndarray) -> tuple[np.ndarray, tuple[int, int], int]:
        """The stored data box-reduced when its longest side is above ``max_decode_size``, its ``(H, W)``, ``f``."""
        size = (int(arr.shape[0]), int(arr.shape[1]))
        factor = decode_factor(*size, self.max_decode_size)
        return box_reduce(arr, factor), size, factor

    def __call__(self, filename: str | os.PathLike) -> MetaTensor:
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"filename: expected a path (str or os.PathLike), got {type(filename).__name__}.")
        path = os.fspath(filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image file not found: '{path}'.")
        fmt = self.image_format or _detect_format(path)
        extra: dict[str, Any] = {}
        if fmt == "dicom":
            gray, size, factor, extra = self._read_dicom(path)
        elif fmt == "nifti":
            gray, size, factor = self._read_nifti(path)
        else:
            gray, size, factor = self._read_pil(path)
        meta = {
            "filename_or_obj": path,
            "spatial_shape": tuple(int(n) for n in gray.shape),
            "original_channel_dim": 0,
            ORIGINAL_SIZE_META_KEY: size,
            DECODE_FACTOR_META_KEY: factor,
            "afloc_source_format": fmt,
            **extra,
        }
        out = MetaTensor(torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None], meta=meta)
        if factor > 1:  # reduced pixel (i, j) is the block whose centre is original (f i + (f - 1) / 2, f j + ...)
            affine = torch.eye(4, dtype=torch.float64)
            affine[0, 0] = affine[1, 1] = float(factor)
            affine[0, 3] = affine[1, 3] = (factor - 1) / 2.0
            out.affine = affine
        return out

    @staticmethod
    def _require_2d(arr: np.ndarray, path: str) -> np.ndarray:
        while arr.ndim > 2 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim != 2 or min(arr.shape) < 1:
            raise ValueError(f"expected a 2D image, got shape {tuple(arr.shape)} in '{path}'.")
        return arr

    def _read_pil(self, path: str) -> tuple[np.ndarray, tuple[int, int], int]:
        if not has_pil:
            raise ImportError(f"reading '{path}' needs Pillow: pip install pillow.")
        reader = PILReader(converter=_pil_to_gray, reverse_indexing=False)
        try:
            data, meta = reader.get_data(reader.read(path))
        except Exception as err:  # any decoder failure means a corrupt or unsupported file
            raise ValueError(f"could not read image file '{path}' with Pillow: {err}") from err
        arr, size, factor = self._reduce(self._require_2d(np.asarray(data), path))
        del data
        if meta.get("mode") == "L" or arr.dtype == np.uint8:
            return arr.astype(np.float32), size, factor
        return scale_by_max_to_uint8(_shift_nonnegative(arr)), size, factor

    def _read_nifti(self, path: str) -> tuple[np.ndarray, tuple[int, int], int]:
        reader = NibabelReader(as_closest_canonical=False)
        try:
            data, _ = reader.get_data(reader.read(path))
        except Exception as err:
            raise ValueError(f"could not read NIfTI file '{path}': {err}") from err
        arr, size, factor = self._reduce(self._require_2d(np.asarray(data), path))  # a NaN stays NaN in its block
        del data
        if arr.dtype == np.uint8:
            return arr.astype(np.float32), size, factor
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"NIfTI file '{path}' holds NaN or infinite values.")
        return scale_by_max_to_uint8(_shift_nonnegative(arr)), size, factor

    def _read_dicom(self, path: str) -> tuple[np.ndarray, tuple[int, int], int, dict]:
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
        colour = samples == 3 and arr.ndim == 3 and arr.shape[-1] == 3
        if colour or arr.ndim == 2:  # the stored values, reduced before any float copy
            arr, size, factor = self._reduce(arr)
        if colour:
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
        return gray, size, factor, extra


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
