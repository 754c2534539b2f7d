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
Array image transforms of the AFLoc reference preprocessing: resizing of the longest side (OpenCV-exact
``INTER_AREA``, :mod:`~monai_afloc.transforms.image.inter_area`) with zero padding to a square, scikit-image-exact
histogram equalization, the training centre crop, and the whole chain from a file (read by
:mod:`~monai_afloc.transforms.image.io`). ``LoadGrayscaleImage``, ``scale_by_max_to_uint8``, ``IMAGE_FORMATS`` and
``resize_inter_area`` are re-exported here for existing imports.

Images are channel-first ``[C, H, W]`` with row ``y`` down and column ``x`` right, as a viewer shows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import NormalizeIntensity, RepeatChannel, ScaleIntensityRange
from monai.transforms.transform import Transform
from monai.utils import TransformBackends, look_up_option

from monai_afloc.transforms.image.geometry import (
    DECODE_FACTOR_META_KEY,
    GEOMETRY_META_KEY,
    ORIGINAL_SIZE_META_KEY,
    PreprocessGeometry,
    center_crop_offset,
    longest_side_resize_shape,
)
from monai_afloc.transforms.image.inter_area import resize_inter_area
from monai_afloc.transforms.image.io import (
    DEFAULT_MAX_DECODE_SIZE,
    IMAGE_FORMATS,
    LoadGrayscaleImage,
    scale_by_max_to_uint8,
)


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

#: values of ``ResizeLongestSidePad(interpolation=...)``
RESIZE_INTERPOLATIONS = ("cv2_area", "area", "bilinear")



# ----------------------------------------------------------------------------------------------------------------
# pure functions
# ----------------------------------------------------------------------------------------------------------------


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


def _full_size(meta: Mapping, height: int, width: int) -> tuple[int, int]:
    """
    The size the geometry refers to: the file's ``afloc_original_size`` when the loader decoded it at a reduced size
    (``afloc_decode_factor`` ``f > 1``; the tensor must then be ``ceil(H / f) x ceil(W / f)``), else the tensor's.
    """
    factor = meta.get(DECODE_FACTOR_META_KEY, 1)
    if factor is None or int(factor) == 1:
        return height, width
    factor = int(factor)
    size = meta.get(ORIGINAL_SIZE_META_KEY)
    if size is None:
        raise ValueError(f"img: decoded at 1/{factor} of its size but its meta lacks '{ORIGINAL_SIZE_META_KEY}'.")
    full = (int(size[0]), int(size[1]))
    if (-(-full[0] // factor), -(-full[1] // factor)) != (height, width):
        raise ValueError(
            f"img: decoded at 1/{factor} of {full[0]} x {full[1]} pixels, so it should be "
            f"{-(-full[0] // factor)} x {-(-full[1] // factor)}, but it is {height} x {width} (changed after "
            "loading?); load it again or reset its afloc_decode_factor."
        )
    return full


def _geometry_of(img: Any) -> PreprocessGeometry | None:
    meta = img.meta if isinstance(img, MetaTensor) else {}
    geometry = meta.get(GEOMETRY_META_KEY)
    return None if geometry is None else PreprocessGeometry.from_dict(geometry)


# ----------------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------------------
# geometry transforms
# ----------------------------------------------------------------------------------------------------------------


class ResizeLongestSidePad(Transform):
    """
    Resize a channel-first 2D image so that its longest side is ``size`` and zero-pad the short side to a square,
    centred with the odd pixel at the bottom/right (``pad_top = (size - h) // 2``), like the AFLoc reference's
    ``resize_img``. The short side is ``int(short * size / long)`` (the reference truncates; MONAI's
    ``Resize(size_mode="longest")`` rounds, so it is not reused).

    An image that :class:`LoadGrayscaleImage` decoded at a reduced size (``afloc_decode_factor > 1`` in its meta)
    is resized from its reduced pixels, but its geometry is that of the original size (``afloc_original_size``):
    the same ``resized_size``, ``scale`` and pad as the full-size image, so heatmaps and boxes map to original pixels.

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
        full = _full_size(meta, height, width)
        (h, w), scale = longest_side_resize_shape(*full, self.size)
        resized = self.resize(x, (h, w))
        top, left = (self.size - h) // 2, (self.size - w) // 2
        out = F.pad(resized, (left, self.size - w - left, top, self.size - h - top), value=0.0)
        geometry = PreprocessGeometry(full, (h, w), scale, (top, left), self.size)
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
        max_decode_size: see :class:`LoadGrayscaleImage`: files whose longest side is above it (default 8192) are
            decoded at a reduced size; the geometry keeps their original size.

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
        max_decode_size: int | None = DEFAULT_MAX_DECODE_SIZE,
    ) -> None:
        for name, flag in (("train", train), ("equalize_hist", equalize_hist)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name}: expected a bool, got {type(flag).__name__}.")
        size = _positive_int(size, "size")
        train_resize_size = _positive_int(train_resize_size, "train_resize_size")
        if train and train_resize_size < size:
            raise ValueError(f"train_resize_size ({train_resize_size}) must be >= size ({size}) to crop.")
        self.train = train
        self.loader = LoadGrayscaleImage(image_format, apply_voi_lut, max_decode_size)
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
