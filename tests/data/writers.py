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

"""Writers of tiny files in the data sets' published formats, for the reader tests (no package code used)."""

from __future__ import annotations

import csv
import gzip
import os

import numpy as np

__all__ = ["write_csv", "write_text", "touch", "write_dicom", "write_png", "siim_mask2rle", "siim_rle2mask"]


def write_csv(path: str, header: list[str], rows: list[list], gz: bool | None = None) -> str:
    """Write a CSV (gzipped when ``path`` ends with ``.gz``)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    gz = path.endswith(".gz") if gz is None else gz
    opener = gzip.open(path, "wt", newline="") if gz else open(path, "w", newline="")
    with opener as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_text(path: str, text: str) -> str:
    """Write a text file verbatim (for headers a CSV writer would quote)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(text)
    return path


def touch(path: str) -> str:
    """Create an empty placeholder file (the readers only check that images exist)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb"):
        pass
    return path


def write_dicom(path: str, rows: int, cols: int, photometric: str = "MONOCHROME2") -> str:
    """Write a small single-frame 8-bit DX DICOM (pixel values a ramp) with the shared test writer."""
    from tests.helpers import write_dx_dicom

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return write_dx_dicom(path, (np.arange(rows * cols) % 256).reshape(rows, cols), photometric=photometric, bits=8)


def write_png(path: str, array: np.ndarray) -> str:
    """Write a uint8 grayscale PNG with Pillow."""
    from PIL import Image

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def siim_mask2rle(mask: np.ndarray) -> str:
    """
    Loop-based SIIM relative RLE encoder written from the challenge's description (independent of the package):
    walk the pixels column by column; each run is "<background pixels since the previous run> <run length>".
    """
    height, width = mask.shape
    out, gap, run = [], 0, 0
    for x in range(width):
        for y in range(height):
            if mask[y, x]:
                run += 1
            else:
                if run:
                    out += [gap, run]
                    gap, run = 0, 0
                gap += 1
    if run:
        out += [gap, run]
    return " ".join(map(str, out)) if out else "-1"


def siim_rle2mask(rle: str, height: int, width: int) -> np.ndarray:
    """Loop-based decoder as in the challenge's ``rle2mask(rle, width, height).T`` (independent of the package)."""
    flat = np.zeros(width * height, dtype=bool)
    if rle.strip() != "-1":
        values = [int(v) for v in rle.split()]
        pos = 0
        for start, length in zip(values[0::2], values[1::2]):
            pos += start
            flat[pos : pos + length] = True
            pos += length
    return flat.reshape(width, height).T
