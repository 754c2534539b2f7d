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
the reference's rescale-by-maximum (:func:`scale_by_max_to_uint8`).
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

from monai_afloc.transforms.image.geometry import ORIGINAL_SIZE_META_KEY

pydicom, has_pydicom = optional_import("pydicom")
PILImage, has_pil = optional_import("PIL.Image")

__all__ = ["IMAGE_FORMATS", "IMAGE_FILE_SUFFIXES", "scale_by_max_to_uint8", "LoadGrayscaleImage"]

#: values of ``LoadGrayscaleImage(image_format=...)``
IMAGE_FORMATS = ("pil", "dicom", "nifti")

_PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm", ".pnm")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
#: file endings :class:`LoadGrayscaleImage` reads by their suffix (a folder of images expands to these files)
IMAGE_FILE_SUFFIXES: tuple[str, ...] = _PIL_SUFFIXES + _NIFTI_SUFFIXES + _DICOM_SUFFIXES
_PIL_GRAY_MODES = ("L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")


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
