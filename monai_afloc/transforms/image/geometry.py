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
Geometry of the AFLoc image preprocessing (resize longest side, zero-pad to a square, optional centre crop) and
pure functions that map heatmaps, masks and boxes between the original image and the square network frame.

Coordinates are row-major display coordinates: rows ``y`` go down, columns ``x`` go right, a pixel ``(r, c)``
covers ``[r, r + 1) x [c, c + 1)``. Boxes are ``(x, y, w, h)`` in pixel-edge units, like COCO / MS-CXR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.utils import look_up_option

__all__ = [
    "GEOMETRY_META_KEY",
    "ORIGINAL_SIZE_META_KEY",
    "DECODE_FACTOR_META_KEY",
    "PreprocessGeometry",
    "longest_side_resize_shape",
    "center_crop_offset",
    "valid_frame_mask",
    "frame_to_original",
    "original_boxes_to_frame",
    "frame_boxes_to_original",
    "original_mask_to_frame",
    "geometry_for_size",
    "valid_frame_masks",
]

#: key of the geometry record (a plain dict, see :meth:`PreprocessGeometry.to_dict`) in a ``MetaTensor``'s meta
GEOMETRY_META_KEY = "afloc_geometry"
#: key of the ``(H, W)`` size of the image as loaded, in a ``MetaTensor``'s meta
ORIGINAL_SIZE_META_KEY = "afloc_original_size"
#: key of the integer factor by which ``LoadGrayscaleImage`` reduced a large image at decode (``1``: full size)
DECODE_FACTOR_META_KEY = "afloc_decode_factor"

_MAP_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def _as_int(value: Any, name: str) -> int:
    """An exact integer from a python / numpy / 0-d or one-element tensor value, else ``TypeError``."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name}: expected one integer, got a tensor of shape {tuple(value.shape)}.")
        value = value.item()
    elif isinstance(value, np.ndarray):
        if value.size != 1:
            raise TypeError(f"{name}: expected one integer, got an array of shape {value.shape}.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}.")
    if float(value) != int(value):
        raise TypeError(f"{name}: expected an integer, got {value}.")
    return int(value)


def _as_pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        value = value.reshape(-1).tolist()
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f"{name}: expected a pair of integers (rows, cols), got {value!r}.")
    return _as_int(value[0], name), _as_int(value[1], name)


def longest_side_resize_shape(height: int, width: int, size: int) -> tuple[tuple[int, int], float]:
    """
    The size the AFLoc reference resizes an image to so that its longest side is ``size``, and the scale it uses.

    The reference computes ``scale = size / float(longest)`` and the short side as ``int(float(short) * scale)``
    (truncation, not rounding; a square image takes the "taller" branch). We reproduce this exactly, including its
    float artefacts (e.g. a 111 x 111 image becomes 224 x 223), so that pads and boxes match the reference.
    MONAI's ``Resize(size_mode="longest")`` rounds instead, hence this function.

    Args:
        height: original number of rows ``H``.
        width: original number of columns ``W``.
        size: target length of the longest side.

    Returns:
        ``((h, w), scale)``.

    Raises:
        ValueError: when a size is not positive or the short side would become 0 pixels.

    Example::

        >>> longest_side_resize_shape(3000, 2500, 224)
        ((224, 186), 0.07466666666666667)
    """
    height, width, size = _as_int(height, "height"), _as_int(width, "width"), _as_int(size, "size")
    if height < 1 or width < 1 or size < 1:
        raise ValueError(f"expected positive sizes, got height={height}, width={width}, size={size}.")
    if height >= width:
        scale = size / float(height)
        new_hw = (size, int(float(width) * scale))
    else:
        scale = size / float(width)
        new_hw = (int(float(height) * scale), size)
    if min(new_hw) < 1:
        raise ValueError(
            f"image of shape {(height, width)} is too elongated: its short side would be {min(new_hw)} pixels "
            f"after resizing the longest side to {size}."
        )
    return new_hw, scale


def center_crop_offset(in_size: int, crop_size: int) -> int:
    """
    Start of a centred crop as torchvision's ``CenterCrop`` (the AFLoc training transform) computes it:
    ``int(round((in_size - crop_size) / 2))`` with Python's round-half-to-even. MONAI's ``CenterSpatialCrop`` uses
    ``in_size // 2 - crop_size // 2``, which differs when ``in_size - crop_size`` is odd.

    Example::

        >>> center_crop_offset(256, 224)
        16
    """
    in_size, crop_size = _as_int(in_size, "in_size"), _as_int(crop_size, "crop_size")
    if not 1 <= crop_size <= in_size:
        raise ValueError(f"expected 1 <= crop_size <= in_size, got crop_size={crop_size}, in_size={in_size}.")
    return round((in_size - crop_size) / 2.0)


@dataclass(frozen=True)
class PreprocessGeometry:
    """
    Where the original image lies in the square network frame after :class:`ResizeLongestSidePad` (and optionally
    :class:`CenterCropFrame`). All sizes are ``(rows, cols)``.

    Args:
        original_size: ``(H, W)`` of the image as loaded.
        resized_size: ``(h, w)`` of the resized image (longest side = ``padded_size``).
        scale: the reference's scale factor ``padded_size / max(H, W)``, used for boxes. The per-axis pixel scales
            ``h / H`` and ``w / W`` can differ from it by less than one pixel over the image (truncation).
        pad: ``(top, left)`` zero padding before the resized image in the padded square (floor on the top/left).
        frame_size: side ``S`` of the final square frame (the network input).
        padded_size: side of the padded square; ``None`` means ``frame_size`` (no crop).
        crop: ``(top, left)`` of the frame inside the padded square (training's centre crop); ``(0, 0)`` otherwise.

    The resized image's top-left corner lies at :attr:`offset` ``= pad - crop`` in frame pixels (negative when the
    crop cuts into the image). Convert to a plain dict with :meth:`to_dict` (what the transforms store, so that it
    collates) and back with :meth:`from_dict`.

    Example::

        >>> g = PreprocessGeometry((3000, 2500), (224, 186), 224 / 3000, (0, 19), 224)
        >>> g.offset
        (0, 19)
    """

    original_size: tuple[int, int]
    resized_size: tuple[int, int]
    scale: float
    pad: tuple[int, int]
    frame_size: int
    padded_size: int | None = None
    crop: tuple[int, int] = field(default=(0, 0))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "original_size", _as_pair(self.original_size, "original_size"))
        set_(self, "resized_size", _as_pair(self.resized_size, "resized_size"))
        set_(self, "pad", _as_pair(self.pad, "pad"))
        set_(self, "crop", _as_pair(self.crop, "crop"))
        set_(self, "frame_size", _as_int(self.frame_size, "frame_size"))
        padded = self.frame_size if self.padded_size is None else _as_int(self.padded_size, "padded_size")
        set_(self, "padded_size", padded)
        scale = self.scale.item() if isinstance(self.scale, (torch.Tensor, np.ndarray)) else self.scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
            raise TypeError(f"scale: expected a float, got {type(scale).__name__}.")
        if not (math.isfinite(float(scale)) and float(scale) > 0):
            raise ValueError(f"scale: expected a finite positive number, got {scale}.")
        set_(self, "scale", float(scale))
        if min(self.original_size) < 1 or min(self.resized_size) < 1 or self.frame_size < 1:
            raise ValueError(
                f"expected positive sizes, got original_size={self.original_size}, "
                f"resized_size={self.resized_size}, frame_size={self.frame_size}."
            )
        if min(self.pad) < 0 or any(p + r > padded for p, r in zip(self.pad, self.resized_size)):
            raise ValueError(
                f"pad {self.pad} with resized_size {self.resized_size} does not fit the padded square of "
                f"side {padded}."
            )
        if min(self.crop) < 0 or any(c + self.frame_size > padded for c in self.crop):
            raise ValueError(
                f"crop {self.crop} with frame_size {self.frame_size} does not fit the padded square of side {padded}."
            )

    @property
    def offset(self) -> tuple[int, int]:
        """``(top, left)`` of the resized image in frame pixels: ``pad - crop``."""
        return self.pad[0] - self.crop[0], self.pad[1] - self.crop[1]

    def center_crop(self, crop_size: int) -> PreprocessGeometry:
        """The geometry after a centred square crop of side ``crop_size`` of the current frame (torchvision rule)."""
        start = center_crop_offset(self.frame_size, crop_size)
        return PreprocessGeometry(
            original_size=self.original_size,
            resized_size=self.resized_size,
            scale=self.scale,
            pad=self.pad,
            frame_size=crop_size,
            padded_size=self.padded_size,
            crop=(self.crop[0] + start, self.crop[1] + start),
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of python ints, floats and tuples (collates with MONAI / PyTorch data loaders)."""
        return {
            "original_size": tuple(self.original_size),
            "resized_size": tuple(self.resized_size),
            "scale": float(self.scale),
            "pad": tuple(self.pad),
            "frame_size": int(self.frame_size),
            "padded_size": int(self.padded_size),  # type: ignore[arg-type]
            "crop": tuple(self.crop),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | PreprocessGeometry) -> PreprocessGeometry:
        """
        Build from :meth:`to_dict`'s output (values may be python numbers, numpy values or one-element tensors, as
        they come out of a batch of size one). A :class:`PreprocessGeometry` is returned unchanged.
        """
        if isinstance(data, PreprocessGeometry):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a PreprocessGeometry or a mapping, got {type(data).__name__}.")
        required = ("original_size", "resized_size", "scale", "pad", "frame_size")
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"geometry mapping lacks keys {missing}; got keys {sorted(data)}.")
        return cls(
            original_size=data["original_size"],
            resized_size=data["resized_size"],
            scale=data["scale"],
            pad=data["pad"],
            frame_size=data["frame_size"],
            padded_size=data.get("padded_size"),
            crop=data.get("crop", (0, 0)),
        )

    @classmethod
    def from_batch(cls, data: Mapping[str, Any]) -> list[PreprocessGeometry]:
        """
        Split a collated batch of geometry dicts (``list_data_collate`` turns each pair into a list of two ``[B]``
        tensors and each number into a ``[B]`` tensor) into one :class:`PreprocessGeometry` per item.
        """
        if not isinstance(data, Mapping) or "scale" not in data:
            raise TypeError(f"expected a collated geometry mapping, got {type(data).__name__}.")
        scale = torch.as_tensor(data["scale"]).reshape(-1)
        n = scale.numel()

        def item(value: Any, i: int) -> Any:
            if isinstance(value, (list, tuple)):
                return tuple(torch.as_tensor(v).reshape(-1)[i] for v in value)
            return torch.as_tensor(value).reshape(-1)[i]

        return [cls.from_dict({k: item(v, i) for k, v in data.items()}) for i in range(n)]


def _geometry(geometry: PreprocessGeometry | Mapping[str, Any]) -> PreprocessGeometry:
    return PreprocessGeometry.from_dict(geometry)


def _image_window(g: PreprocessGeometry) -> tuple[slice, slice, slice, slice]:
    """Slices of the frame and of the resized image that hold the same (real-image) pixels."""
    (top, left), (h, w), s = g.offset, g.resized_size, g.frame_size
    f_r = slice(max(top, 0), min(top + h, s))
    f_c = slice(max(left, 0), min(left + w, s))
    i_r = slice(f_r.start - top, f_r.stop - top)
    i_c = slice(f_c.start - left, f_c.stop - left)
    return f_r, f_c, i_r, i_c


def valid_frame_mask(
    geometry: PreprocessGeometry | Mapping[str, Any], device: torch.device | str | None = None
) -> torch.Tensor:
    """
    ``True`` on the frame pixels that hold the real image, ``False`` on the zero padding.

    Returns:
        a bool tensor ``[S, S]``.

    Example::

        >>> g = PreprocessGeometry((300, 100), (224, 74), 224 / 300, (0, 75), 224)
        >>> valid_frame_mask(g).sum().item() == 224 * 74
        True
    """
    g = _geometry(geometry)
    mask = torch.zeros(g.frame_size, g.frame_size, dtype=torch.bool, device=device)
    f_r, f_c, _, _ = _image_window(g)
    mask[f_r, f_c] = True
    return mask


def frame_to_original(
    maps: torch.Tensor,
    geometry: PreprocessGeometry | Mapping[str, Any],
    mode: str = "bilinear",
    fill_value: float = float("nan"),
) -> torch.Tensor:
    """
    Map heatmaps (or masks) from the square frame back onto the original image: crop away the padding, then resize
    the resized-image window to ``(H, W)`` with ``torch.nn.functional.interpolate`` (``align_corners=False`` for the
    linear modes). Runs on the tensor's device; all leading dimensions are kept.

    When a training centre crop cut into the image, the cut-off part of the resized image has no values: it is
    filled with ``fill_value`` (NaN by default) before resizing, so linear modes also blur NaN one pixel inwards.

    Args:
        maps: ``[..., S, S]`` tensor, ``S = geometry.frame_size``. Integer/bool maps are converted to float32.
        geometry: a :class:`PreprocessGeometry` or its dict.
        mode: ``"bilinear"`` (default), ``"bicubic"``, ``"nearest"``, ``"nearest-exact"`` or ``"area"``.
        fill_value: value of original pixels that lie outside the frame (only when the frame was cropped).

    Returns:
        ``[..., H, W]`` floating tensor on ``maps``' device.

    Raises:
        TypeError: when ``maps`` is not a tensor.
        ValueError: when its last two dimensions are not ``(S, S)`` or ``mode`` is unknown.

    Example::

        >>> g = PreprocessGeometry((300, 100), (224, 74), 224 / 300, (0, 75), 224)
        >>> frame_to_original(torch.rand(2, 5, 224, 224), g).shape
        torch.Size([2, 5, 300, 100])
    """
    if not isinstance(maps, torch.Tensor):
        raise TypeError(f"maps: expected a torch.Tensor [..., S, S], got {type(maps).__name__}.")
    g = _geometry(geometry)
    mode = look_up_option(mode, _MAP_MODES)
    s = g.frame_size
    if maps.ndim < 2 or tuple(maps.shape[-2:]) != (s, s):
        raise ValueError(f"maps: expected shape [..., {s}, {s}], got {tuple(maps.shape)}.")
    if not maps.is_floating_point():
        maps = maps.float()
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, s, s)
    f_r, f_c, i_r, i_c = _image_window(g)
    (h, w) = g.resized_size
    if (i_r.start, i_r.stop, i_c.start, i_c.stop) == (0, h, 0, w):
        window = flat[..., f_r, f_c]
    else:
        window = flat.new_full((flat.shape[0], 1, h, w), fill_value)
        window[..., i_r, i_c] = flat[..., f_r, f_c]
    align = False if mode in ("bilinear", "bicubic") else None
    out = F.interpolate(window, size=g.original_size, mode=mode, align_corners=align)
    return out.reshape(*lead, *g.original_size)


def _boxes(boxes: Any) -> tuple[torch.Tensor, bool]:
    is_tensor = isinstance(boxes, torch.Tensor)
    t = boxes if is_tensor else torch.as_tensor(np.asarray(boxes, dtype=np.float64))
    if t.ndim < 1 or t.shape[-1] != 4:
        raise ValueError(f"boxes: expected shape [..., 4] (x, y, w, h), got {tuple(t.shape)}.")
    if not t.is_floating_point():
        t = t.double()
    return t, is_tensor


def original_boxes_to_frame(boxes: Any, geometry: PreprocessGeometry | Mapping[str, Any], floor: bool = False) -> Any:
    """
    Map ``(x, y, w, h)`` boxes from original pixels into the frame: ``x * scale + left``, ``y * scale + top``,
    ``w * scale``, ``h * scale`` with ``(top, left) = geometry.offset``. ``floor=True`` floors the four numbers like
    the AFLoc evaluation's ``box_mapping`` (MS-CXR / RSNA boxes become integer frame boxes).

    Args:
        boxes: ``[..., 4]`` tensor (result is a tensor on the same device) or array-like (result is a float64
            ``np.ndarray``).
        geometry: a :class:`PreprocessGeometry` or its dict.
        floor: floor the results (reference evaluation), else keep them exact.

    Example::

        >>> g = PreprocessGeometry((1024, 1024), (224, 224), 224 / 1024, (0, 0), 224)
        >>> original_boxes_to_frame([[512.0, 0.0, 100.0, 50.0]], g).tolist()
        [[112.0, 0.0, 21.875, 10.9375]]
    """
    g = _geometry(geometry)
    t, is_tensor = _boxes(boxes)
    top, left = g.offset
    shift = t.new_tensor([left, top, 0.0, 0.0])
    out = t * g.scale + shift
    if floor:
        out = torch.floor(out)
    return out if is_tensor else out.numpy()


def frame_boxes_to_original(boxes: Any, geometry: PreprocessGeometry | Mapping[str, Any]) -> Any:
    """
    Inverse of :func:`original_boxes_to_frame` (without flooring): ``(x - left) / scale``, ``(y - top) / scale``,
    ``w / scale``, ``h / scale``.

    Example::

        >>> g = PreprocessGeometry((1024, 1024), (224, 224), 224 / 1024, (0, 0), 224)
        >>> frame_boxes_to_original([[112.0, 0.0, 21.875, 10.9375]], g).tolist()
        [[512.0, 0.0, 100.0, 50.0]]
    """
    g = _geometry(geometry)
    t, is_tensor = _boxes(boxes)
    top, left = g.offset
    shift = t.new_tensor([left, top, 0.0, 0.0])
    out = (t - shift) / g.scale
    return out if is_tensor else out.numpy()


def geometry_for_size(height: int, width: int, frame_size: int = 224) -> PreprocessGeometry:
    """The inference :class:`PreprocessGeometry` of an ``height × width`` image (resize longest side, centred pad)."""
    (h, w), scale = longest_side_resize_shape(height, width, frame_size)
    return PreprocessGeometry((height, width), (h, w), scale, ((frame_size - h) // 2, (frame_size - w) // 2), frame_size)


def original_mask_to_frame(mask: Any, geometry: PreprocessGeometry | Mapping[str, Any]) -> torch.Tensor:
    """
    Map a boolean ``[..., H, W]`` mask of the original image into the ``S × S`` frame (nearest-neighbour resize to
    the resized size, then the pad and crop of ``geometry``); pixels outside the image are False.
    """
    g = _geometry(geometry)
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    if m.ndim < 2 or tuple(m.shape[-2:]) != tuple(g.original_size):
        raise ValueError(f"mask must be [..., {g.original_size[0]}, {g.original_size[1]}], got {tuple(m.shape)}.")
    lead = m.shape[:-2]
    x = m.reshape(-1, 1, *m.shape[-2:]).float()
    x = F.interpolate(x, size=g.resized_size, mode="nearest-exact") > 0.5
    out = torch.zeros(x.shape[0], 1, g.frame_size, g.frame_size, dtype=torch.bool, device=x.device)
    top, left = g.offset
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + g.resized_size[0], g.frame_size), min(left + g.resized_size[1], g.frame_size)
    if r1 > r0 and c1 > c0:
        out[..., r0:r1, c0:c1] = x[..., r0 - top : r1 - top, c0 - left : c1 - left]
    return out.reshape(*lead, g.frame_size, g.frame_size)


def valid_frame_masks(
    geometries: Sequence[PreprocessGeometry | Mapping[str, Any]], device: torch.device | str | None = None
) -> torch.Tensor:
    """:func:`valid_frame_mask` of each geometry, stacked as ``[B, 1, S, S]`` (all frames share one size ``S``)."""
    return torch.stack([valid_frame_mask(g, device=device) for g in geometries]).unsqueeze(1)
