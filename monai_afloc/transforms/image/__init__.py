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

"""Image transforms for AFLoc: grayscale reading (``io``), the INTER_AREA port (``inter_area``), the reference
resize/pad/crop, equalization and the whole chain (``array``, ``dictionary``), geometry mapping (``geometry``)."""

from __future__ import annotations

from .array import (
    MIN_IMAGE_SIZE,
    RESIZE_INTERPOLATIONS,
    AFLocImagePreprocess,
    CenterCropFrame,
    EqualizeHistogram,
    ResizeLongestSidePad,
    check_image_size,
    equalize_histogram,
)
from .dictionary import (
    AFLocImagePreprocessD,
    AFLocImagePreprocessd,
    AFLocImagePreprocessDict,
    CenterCropFrameD,
    CenterCropFramed,
    CenterCropFrameDict,
    EqualizeHistogramD,
    EqualizeHistogramd,
    EqualizeHistogramDict,
    LoadGrayscaleImageD,
    LoadGrayscaleImaged,
    LoadGrayscaleImageDict,
    ResizeLongestSidePadD,
    ResizeLongestSidePadd,
    ResizeLongestSidePadDict,
)
from .inter_area import resize_inter_area
from .io import (
    DEFAULT_MAX_DECODE_SIZE,
    IMAGE_FORMATS,
    LoadGrayscaleImage,
    box_reduce,
    decode_factor,
    original_size_of,
    scale_by_max_to_uint8,
)
from .geometry import (
    DECODE_FACTOR_META_KEY,
    GEOMETRY_META_KEY,
    ORIGINAL_SIZE_META_KEY,
    PreprocessGeometry,
    center_crop_offset,
    frame_boxes_to_original,
    frame_to_original,
    geometry_for_size,
    longest_side_resize_shape,
    original_boxes_to_frame,
    original_mask_to_frame,
    valid_frame_mask,
    valid_frame_masks,
)

__all__ = [
    "IMAGE_FORMATS",
    "RESIZE_INTERPOLATIONS",
    "GEOMETRY_META_KEY",
    "geometry_for_size",
    "original_mask_to_frame",
    "valid_frame_masks",
    "ORIGINAL_SIZE_META_KEY",
    "DECODE_FACTOR_META_KEY",
    "DEFAULT_MAX_DECODE_SIZE",
    "box_reduce",
    "decode_factor",
    "original_size_of",
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
    "PreprocessGeometry",
    "longest_side_resize_shape",
    "center_crop_offset",
    "valid_frame_mask",
    "frame_to_original",
    "original_boxes_to_frame",
    "frame_boxes_to_original",
]
