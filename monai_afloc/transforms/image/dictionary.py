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
Dictionary wrappers of :mod:`monai_afloc.transforms.image.array`. Transforms that set a geometry record also store
it, as a plain dict that collates, under ``f"{key}_{geometry_key_postfix}"`` (default ``f"{key}_geometry"``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms.transform import MapTransform

from monai_afloc.transforms.image.array import (
    AFLocImagePreprocess,
    CenterCropFrame,
    EqualizeHistogram,
    LoadGrayscaleImage,
    ResizeLongestSidePad,
)
from monai_afloc.transforms.image.geometry import GEOMETRY_META_KEY
from monai_afloc.transforms.image.io import DEFAULT_MAX_DECODE_SIZE

__all__ = [
    "LoadGrayscaleImaged",
    "LoadGrayscaleImageD",
    "LoadGrayscaleImageDict",
    "ResizeLongestSidePadd",
    "ResizeLongestSidePadD",
    "ResizeLongestSidePadDict",
    "CenterCropFramed",
    "CenterCropFrameD",
    "CenterCropFrameDict",
    "EqualizeHistogramd",
    "EqualizeHistogramD",
    "EqualizeHistogramDict",
    "AFLocImagePreprocessd",
    "AFLocImagePreprocessD",
    "AFLocImagePreprocessDict",
]


def _check_postfix(geometry_key_postfix: str) -> str:
    if not isinstance(geometry_key_postfix, str) or not geometry_key_postfix:
        raise ValueError(f"geometry_key_postfix: expected a non-empty string, got {geometry_key_postfix!r}.")
    return geometry_key_postfix


class _GeometryMapTransform(MapTransform):
    """Applies an array transform to every key and mirrors the output's geometry record into the dict."""

    transform: Any

    def __init__(self, keys: KeysCollection, geometry_key_postfix: str, allow_missing_keys: bool) -> None:
        super().__init__(keys, allow_missing_keys)
        self.geometry_key_postfix = _check_postfix(geometry_key_postfix)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
            if isinstance(d[key], MetaTensor) and GEOMETRY_META_KEY in d[key].meta:
                d[f"{key}_{self.geometry_key_postfix}"] = dict(d[key].meta[GEOMETRY_META_KEY])
        return d


class LoadGrayscaleImaged(MapTransform):
    """
    Dictionary version of :class:`~monai_afloc.transforms.image.array.LoadGrayscaleImage`: replaces each key's file
    path by the loaded ``MetaTensor [1, H, W]``.

    Example::

        >>> LoadGrayscaleImaged("image")({"image": "chest.png"})["image"].shape  # doctest: +SKIP
        torch.Size([1, 2544, 3056])
    """

    backend = LoadGrayscaleImage.backend

    def __init__(
        self,
        keys: KeysCollection,
        image_format: str | None = None,
        apply_voi_lut: bool = True,
        allow_missing_keys: bool = False,
        max_decode_size: int | None = DEFAULT_MAX_DECODE_SIZE,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadGrayscaleImage(image_format, apply_voi_lut, max_decode_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


class ResizeLongestSidePadd(_GeometryMapTransform):
    """
    Dictionary version of :class:`~monai_afloc.transforms.image.array.ResizeLongestSidePad`; also stores the
    geometry dict under ``f"{key}_{geometry_key_postfix}"``.

    Example::

        >>> import torch
        >>> d = ResizeLongestSidePadd("image", size=224)({"image": torch.zeros(1, 300, 100)})
        >>> d["image_geometry"]["pad"]
        (0, 75)
    """

    backend = ResizeLongestSidePad.backend

    def __init__(
        self,
        keys: KeysCollection,
        size: int = 224,
        interpolation: str = "cv2_area",
        reference_uint8: bool = True,
        geometry_key_postfix: str = "geometry",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, geometry_key_postfix, allow_missing_keys)
        self.transform = ResizeLongestSidePad(size=size, interpolation=interpolation, reference_uint8=reference_uint8)


class CenterCropFramed(_GeometryMapTransform):
    """
    Dictionary version of :class:`~monai_afloc.transforms.image.array.CenterCropFrame`; updates the stored geometry
    dict when the image carries one.

    Example::

        >>> import torch
        >>> d = ResizeLongestSidePadd("image", size=256)({"image": torch.zeros(1, 300, 100)})
        >>> CenterCropFramed("image", 224)(d)["image_geometry"]["crop"]
        (16, 16)
    """

    backend = CenterCropFrame.backend

    def __init__(
        self,
        keys: KeysCollection,
        crop_size: int = 224,
        geometry_key_postfix: str = "geometry",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, geometry_key_postfix, allow_missing_keys)
        self.transform = CenterCropFrame(crop_size=crop_size)


class EqualizeHistogramd(MapTransform):
    """
    Dictionary version of :class:`~monai_afloc.transforms.image.array.EqualizeHistogram`.

    Example::

        >>> import torch
        >>> EqualizeHistogramd("image")({"image": torch.tensor([[[0.0, 255.0]]])})["image"].tolist()
        [[[127.0, 255.0]]]
    """

    backend = EqualizeHistogram.backend

    def __init__(
        self, keys: KeysCollection, mask_zero: bool = False, num_bins: int = 256, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = EqualizeHistogram(mask_zero=mask_zero, num_bins=num_bins)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d


class AFLocImagePreprocessd(_GeometryMapTransform):
    """
    Dictionary version of :class:`~monai_afloc.transforms.image.array.AFLocImagePreprocess`: each key holds a file
    path or a grayscale image; it becomes the float32 ``[3, size, size]`` network input, and the geometry dict is
    stored under ``f"{key}_{geometry_key_postfix}"``.

    Example::

        >>> import torch
        >>> d = AFLocImagePreprocessd("image")({"image": torch.full((1, 300, 100), 100.0)})
        >>> d["image"].shape, d["image_geometry"]["resized_size"]
        (torch.Size([3, 224, 224]), (224, 74))
    """

    backend = AFLocImagePreprocess.backend

    def __init__(
        self,
        keys: KeysCollection,
        size: int = 224,
        train: bool = False,
        train_resize_size: int = 256,
        equalize_hist: bool = False,
        interpolation: str = "cv2_area",
        reference_uint8: bool = True,
        image_format: str | None = None,
        apply_voi_lut: bool = True,
        geometry_key_postfix: str = "geometry",
        allow_missing_keys: bool = False,
        max_decode_size: int | None = DEFAULT_MAX_DECODE_SIZE,
    ) -> None:
        super().__init__(keys, geometry_key_postfix, allow_missing_keys)
        self.transform = AFLocImagePreprocess(
            size=size,
            train=train,
            train_resize_size=train_resize_size,
            equalize_hist=equalize_hist,
            interpolation=interpolation,
            reference_uint8=reference_uint8,
            image_format=image_format,
            apply_voi_lut=apply_voi_lut,
            max_decode_size=max_decode_size,
        )


LoadGrayscaleImageD = LoadGrayscaleImageDict = LoadGrayscaleImaged
ResizeLongestSidePadD = ResizeLongestSidePadDict = ResizeLongestSidePadd
CenterCropFrameD = CenterCropFrameDict = CenterCropFramed
EqualizeHistogramD = EqualizeHistogramDict = EqualizeHistogramd
AFLocImagePreprocessD = AFLocImagePreprocessDict = AFLocImagePreprocessd
