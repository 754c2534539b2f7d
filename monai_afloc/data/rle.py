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
Run-length codes of the localization data sets, in vectorized numpy, and a dictionary transform that decodes them.

- SIIM-ACR Pneumothorax (``train-rle.csv``): *relative* run-length code, "offset length offset length ...", where
  each offset counts the background pixels since the end of the previous run; ``"-1"`` is an empty mask. Pixels
  are numbered column by column (the challenge's ``rle2mask(...).T``): the flat array is the ``[H, W]`` mask in
  Fortran order.
- CheXlocalize (and COCO): *compressed* RLE, ``{"size": [h, w], "counts": "<string>"}``; counts alternate
  background and foreground runs (background first) over the Fortran-ordered mask; the string packs each count in
  6-bit characters (5 data bits + a continuation bit, offset by 48), and counts after the third are stored as
  differences to the count two places before (COCO's ``maskApi``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = [
    "rle_decode_relative",
    "rle_encode_relative",
    "coco_rle_decode",
    "coco_rle_encode",
    "decode_mask",
    "DecodeRLEMaskd",
    "DecodeRLEMaskD",
    "DecodeRLEMaskDict",
]


def _check_hw(height: Any, width: Any) -> tuple[int, int]:
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    return int(height), int(width)


def _runs(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], flat, [False]]).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def rle_decode_relative(rle: str | Sequence[str], height: int, width: int) -> np.ndarray:
    """
    Decode SIIM-ACR relative run-length code(s) into a boolean mask.

    Args:
        rle: one code ``"o1 l1 o2 l2 ..."`` (``"-1"`` or ``""`` for an empty mask), or a sequence of codes whose
            masks are united (SIIM lists one row per connected component).
        height: mask height H (DICOM ``Rows``).
        width: mask width W (DICOM ``Columns``).

    Returns:
        ``np.bool_`` array ``[H, W]``.

    Raises:
        ValueError: non-integer values, an odd number of values, negative values, or runs past ``H * W``.

    Example::

        >>> rle_decode_relative("1 2", height=2, width=2)   # pixels 1, 2 in column-major order
        array([[False,  True],
               [ True, False]])
    """
    height, width = _check_hw(height, width)
    codes = [rle] if isinstance(rle, str) else list(rle)
    flat = np.zeros(height * width + 1, dtype=np.int32)
    for code in codes:
        if not isinstance(code, str):
            raise TypeError(f"rle must be a string or a sequence of strings, got an item of {type(code).__name__}.")
        text = code.strip()
        if text in ("", "-1"):
            continue
        try:
            values = np.asarray(text.split(), dtype=np.int64)
        except ValueError:
            raise ValueError(f"rle must hold integers separated by spaces, got {text[:60]!r}.") from None
        if values.size % 2:
            raise ValueError(f"rle must hold (offset, length) pairs, got {values.size} values.")
        if (values < 0).any():
            raise ValueError(f"rle offsets and lengths must be >= 0, got a negative value in {text[:60]!r}.")
        offsets, lengths = values[0::2], values[1::2]
        # absolute start of run k: all offsets up to k plus all lengths before k
        starts = np.cumsum(offsets) + np.cumsum(lengths) - lengths
        ends = starts + lengths
        if ends.size and ends[-1] > height * width:
            raise ValueError(f"rle runs end at pixel {int(ends[-1])}, past the {height}x{width} mask.")
        np.add.at(flat, starts, 1)
        np.add.at(flat, ends, -1)
    return (np.cumsum(flat[:-1]) > 0).reshape((height, width), order="F")


def rle_encode_relative(mask: np.ndarray) -> str:
    """
    Encode a 2-D mask ``[H, W]`` as SIIM-ACR relative run-length code (column-major pixel order).

    Returns ``"-1"`` for an empty mask, as in ``train-rle.csv``. ``rle_decode_relative(rle_encode_relative(m), H, W)``
    gives ``m != 0`` back.

    Example::

        >>> rle_encode_relative(np.array([[0, 1], [1, 0]]))
        '1 2'
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D [H, W], got shape {tuple(mask.shape)}.")
    starts, ends = _runs(mask.reshape(-1, order="F") != 0)
    if starts.size == 0:
        return "-1"
    offsets = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(map(str, np.stack([offsets, ends - starts], axis=1).reshape(-1).tolist()))


def _coco_size(size: Any) -> tuple[int, int]:
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
        raise ValueError(f"COCO RLE 'size' must be [height, width], got {size!r}.")
    return _check_hw(size[0], size[1])


def coco_rle_decode(rle: Mapping[str, Any]) -> np.ndarray:
    """
    Decode a COCO run-length code (compressed string or plain list of counts) into a boolean mask.

    Args:
        rle: ``{"size": [H, W], "counts": str | bytes | list[int]}`` as in the CheXlocalize ground-truth json or
            ``pycocotools.mask.encode``.

    Returns:
        ``np.bool_`` array ``[H, W]``.

    Raises:
        ValueError: missing keys, characters outside the code's alphabet, a truncated count, negative counts, or
            counts that do not add up to ``H * W``.

    Example::

        >>> coco_rle_decode({"size": [2, 2], "counts": [1, 2, 1]}).astype(int)
        array([[0, 1],
               [1, 0]])
    """
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"COCO RLE must be a dict with 'size' and 'counts', got {rle!r:.80}.")
    height, width = _coco_size(rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        raw = counts.encode("ascii") if isinstance(counts, str) else counts
        chars = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
        if chars.size and (chars.min() < 0 or chars.max() > 63):
            raise ValueError("COCO RLE counts string holds characters outside '0'..'o'.")
        more = (chars & 0x20) != 0
        if chars.size and more[-1]:
            raise ValueError("COCO RLE counts string is truncated (its last character expects more).")
        last = np.flatnonzero(~more)  # index of the last character of each count
        first = np.concatenate([[0], last[:-1] + 1])
        group = np.repeat(np.arange(last.size), last - first + 1)
        shift = 5 * (np.arange(chars.size) - first[group])
        if shift.size and shift.max() > 55:
            raise ValueError("COCO RLE counts string holds a count too long to be valid.")
        values = np.zeros(last.size, dtype=np.int64)
        np.add.at(values, group, (chars & 0x1F) << shift)
        negative = (chars[last] & 0x10) != 0
        values[negative] -= np.left_shift(1, shift[last][negative] + 5)
        # counts after the third are differences to the count two places before
        cnts = values.copy()
        cnts[1::2] = np.cumsum(values[1::2])
        cnts[2::2] = np.cumsum(values[2::2])
    else:
        try:
            cnts = np.asarray(list(counts), dtype=np.int64)
        except (TypeError, ValueError):
            raise ValueError(f"COCO RLE counts must be a string or a list of integers, got {counts!r:.80}.") from None
    if cnts.ndim != 1 or (cnts < 0).any():
        raise ValueError("COCO RLE counts must be non-negative.")
    if int(cnts.sum()) != height * width:
        raise ValueError(f"COCO RLE counts add up to {int(cnts.sum())}, expected {height}x{width}={height * width}.")
    flat = np.repeat(np.arange(cnts.size) % 2 == 1, cnts)
    return flat.reshape((height, width), order="F")


def coco_rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """
    Encode a 2-D mask ``[H, W]`` as a COCO compressed run-length code ``{"size": [H, W], "counts": str}``.

    The string equals ``pycocotools.mask.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()``.

    Example::

        >>> coco_rle_encode(np.array([[0, 1], [1, 0]]))
        {'size': [2, 2], 'counts': '121'}
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D [H, W], got shape {tuple(mask.shape)}.")
    height, width = mask.shape
    flat = mask.reshape(-1, order="F") != 0
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    cnts = np.diff(bounds)
    if flat.size and flat[0]:
        cnts = np.concatenate([[0], cnts])
    x = cnts.astype(np.int64).copy()
    x[3:] -= cnts[1:-2]
    # variable-length 5-bit groups, vectorized over the counts (the loop runs over character positions)
    chunks = []
    alive = np.ones(x.size, dtype=bool)
    while alive.any():
        c = x & 0x1F
        x = x >> 5
        more = np.where((c & 0x10) != 0, x != -1, x != 0) & alive
        chunks.append(np.where(alive, (c | (more.astype(np.int64) << 5)) + 48, -1))
        alive = more
    table = np.stack(chunks, axis=1).reshape(-1)
    counts = table[table >= 0].astype(np.uint8).tobytes().decode("ascii")
    return {"size": [int(height), int(width)], "counts": counts}


def decode_mask(value: Any) -> np.ndarray:
    """
    Decode an encoded mask left in a data dict by a reader with ``decode_masks=False``.

    Accepts ``{"size": [H, W], "counts": ...}`` (COCO, CheXlocalize) or ``{"size": [H, W], "rle": [str, ...]}``
    (SIIM relative code); an array is returned as a boolean array unchanged.
    """
    if isinstance(value, np.ndarray):
        return value.astype(bool, copy=False)
    if isinstance(value, Mapping) and "counts" in value:
        return coco_rle_decode(value)
    if isinstance(value, Mapping) and "rle" in value and "size" in value:
        height, width = _coco_size(value["size"])
        return rle_decode_relative(value["rle"], height, width)
    raise ValueError(
        "expected an encoded mask {'size', 'counts'} or {'size', 'rle'} or an array, "
        f"got {type(value).__name__}: {value!r:.80}."
    )


class DecodeRLEMaskd(MapTransform):
    """
    Dictionary transform: decode run-length-encoded masks (see :func:`decode_mask`) into ``np.bool_ [H, W]``.

    Readers of large mask sets (:func:`~monai_afloc.data.chexlocalize_datalist`,
    :func:`~monai_afloc.data.siim_pneumothorax_datalist`) can keep their masks encoded (``decode_masks=False``) so
    that the list stays small; this transform decodes one item at a time inside the data pipeline.

    Args:
        keys: keys of the encoded masks (usually ``"mask"``).
        add_channel: prepend a channel dimension (``[1, H, W]``), as MONAI's image transforms expect.
        allow_missing_keys: don't raise when a key is missing.

    Example::

        >>> DecodeRLEMaskd("mask")({"mask": {"size": [2, 2], "counts": "121"}})["mask"].astype(int)
        array([[0, 1],
               [1, 0]])
    """

    def __init__(self, keys: KeysCollection, add_channel: bool = False, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if not isinstance(add_channel, bool):
            raise TypeError(f"add_channel must be a bool, got {type(add_channel).__name__}.")
        self.add_channel = add_channel

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            mask = decode_mask(d[key])
            d[key] = mask[None] if self.add_channel else mask
        return d


DecodeRLEMaskD = DecodeRLEMaskDict = DecodeRLEMaskd
