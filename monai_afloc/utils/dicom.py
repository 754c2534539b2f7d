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

"""DICOM helpers that work with pydicom 2.4 (MONAI Label's pin) and 3.x alike."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["save_dicom"]


def save_dicom(ds: Any, path: str | os.PathLike) -> str:
    """
    Write ``ds`` (a ``pydicom.Dataset`` with ``file_meta``) as a standard DICOM file (preamble, explicit VR little
    endian as its transfer syntax says) with pydicom 3 (``enforce_file_format``) or 2.x (``write_like_original``).
    Returns the path.
    """
    import pydicom

    path = os.fspath(path)
    if int(pydicom.__version__.split(".")[0]) >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:  # pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)
    return path
