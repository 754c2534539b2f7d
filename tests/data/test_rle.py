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

"""Tests of the run-length codes (SIIM relative, COCO compressed) and DecodeRLEMaskd."""

from __future__ import annotations

import unittest

import numpy as np
from parameterized import parameterized

from monai_afloc.data import (
    DecodeRLEMaskd,
    coco_rle_decode,
    coco_rle_encode,
    decode_mask,
    rle_decode_relative,
    rle_encode_relative,
)
from tests.data.writers import siim_mask2rle, siim_rle2mask
from tests.helpers import SkipIfNoModule


def _random_masks(seed: int = 0, n: int = 30):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(1, 24, size=2))
        if i % 3 == 0:
            m = rng.random((h, w)) < rng.random()
        else:  # blobs, including ones touching the first and last pixels
            m = np.zeros((h, w), bool)
            m[rng.integers(0, h) :, : rng.integers(1, w + 1)] = True
        out.append(m)
    out += [np.zeros((5, 7), bool), np.ones((5, 7), bool)]
    return out


def _coco_string_counts(s: str) -> list[int]:
    """Plain-Python reading of COCO's compressed counts string (maskApi.c rleFrString), written for the test."""
    counts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


class TestRelativeRLE(unittest.TestCase):
    @parameterized.expand(
        [
            ["-1", 2, 3, np.zeros((2, 3), bool)],
            ["", 2, 3, np.zeros((2, 3), bool)],
            ["1 2", 2, 2, np.array([[0, 1], [1, 0]], bool)],
            ["0 1 3 1", 2, 3, np.array([[1, 0, 1], [0, 0, 0]], bool)],  # non-square: column-major walk
        ]
    )
    def test_known(self, rle, h, w, expected):
        np.testing.assert_array_equal(rle_decode_relative(rle, h, w), expected)

    def test_matches_challenge_loops(self):
        for m in _random_masks():
            h, w = m.shape
            code = siim_mask2rle(m)
            self.assertEqual(rle_encode_relative(m), code)
            np.testing.assert_array_equal(rle_decode_relative(code, h, w), siim_rle2mask(code, h, w))
            np.testing.assert_array_equal(rle_decode_relative(code, h, w), m)
            self.assertEqual(rle_decode_relative(code, h, w).dtype, np.bool_)

    def test_union_of_rows(self):
        a = np.zeros((6, 5), bool)
        b = np.zeros((6, 5), bool)
        a[1:3, 1:2] = True
        b[2:5, 1:4] = True  # overlaps a
        out = rle_decode_relative([siim_mask2rle(a), "-1", siim_mask2rle(b)], 6, 5)
        np.testing.assert_array_equal(out, a | b)

    @parameterized.expand(
        [
            ["1 2 3", 4, 4, ValueError],  # odd count
            ["1 x", 4, 4, ValueError],
            ["-2 3", 4, 4, ValueError],
            ["10 10", 4, 4, ValueError],  # past the end
            ["1 2", 0, 4, ValueError],
            ["1 2", 4, 2.5, ValueError],
            [[1, 2], 4, 4, TypeError],
        ]
    )
    def test_ill_arg(self, rle, h, w, error):
        with self.assertRaises(error):
            rle_decode_relative(rle, h, w)

    def test_encode_ill_arg(self):
        with self.assertRaisesRegex(ValueError, "2-D"):
            rle_encode_relative(np.zeros((2, 2, 2)))


class TestCocoRLE(unittest.TestCase):
    def test_known(self):
        m = np.array([[0, 1], [1, 0]], bool)
        self.assertEqual(coco_rle_encode(m), {"size": [2, 2], "counts": "121"})
        np.testing.assert_array_equal(coco_rle_decode({"size": [2, 2], "counts": "121"}), m)
        np.testing.assert_array_equal(coco_rle_decode({"size": [2, 2], "counts": b"121"}), m)
        np.testing.assert_array_equal(coco_rle_decode({"size": [2, 2], "counts": [1, 2, 1]}), m)

    def test_round_trip_and_plain_reading(self):
        masks = _random_masks(1)
        big = np.zeros((300, 200), bool)
        big[20:280, 5:190] = True  # long counts: several characters, negative differences
        big[100:120, 50:60] = False
        for m in masks + [big]:
            enc = coco_rle_encode(m)
            self.assertEqual(enc["size"], list(m.shape))
            counts = _coco_string_counts(enc["counts"])
            self.assertEqual(sum(counts), m.size)
            flat = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
            np.testing.assert_array_equal(flat.reshape(m.shape, order="F"), m)
            np.testing.assert_array_equal(coco_rle_decode(enc), m)

    @SkipIfNoModule("pycocotools")
    def test_pycocotools_parity(self):
        from pycocotools import mask as mask_utils

        big = np.zeros((320, 410), np.uint8)
        big[30:300, 17:400] = 1
        big[150:170, 200:230] = 0
        for m in _random_masks(2) + [big.astype(bool)]:
            ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            self.assertEqual(coco_rle_encode(m)["counts"], ref["counts"].decode("ascii"))
            np.testing.assert_array_equal(coco_rle_decode(ref), mask_utils.decode(ref).astype(bool))

    @parameterized.expand(
        [
            [{"size": [2, 2]}],
            [{"size": [2], "counts": "121"}],
            [{"size": [2, 2], "counts": "12"}],  # counts add up to 3, not 4
            [{"size": [2, 2], "counts": "1 1"}],  # ' ' is outside the alphabet
            [{"size": [2, 2], "counts": "1P"}],  # 'P' expects a continuation
            [{"size": [2, 2], "counts": [1, -1, 4]}],
            [{"size": [2, 2], "counts": ["a"]}],
            ["121"],
        ]
    )
    def test_ill_arg(self, rle):
        with self.assertRaises(ValueError):
            coco_rle_decode(rle)


class TestDecodeRLEMaskd(unittest.TestCase):
    def test_both_codes(self):
        m = np.zeros((4, 3), bool)
        m[1:3, 1] = True
        t = DecodeRLEMaskd(["a", "b"])
        out = t({"a": coco_rle_encode(m), "b": {"size": [4, 3], "rle": [siim_mask2rle(m)]}, "c": 1})
        np.testing.assert_array_equal(out["a"], m)
        np.testing.assert_array_equal(out["b"], m)
        self.assertEqual(out["c"], 1)
        out = DecodeRLEMaskd("a", add_channel=True)({"a": coco_rle_encode(m)})
        self.assertEqual(out["a"].shape, (1, 4, 3))
        np.testing.assert_array_equal(decode_mask(m.astype(np.uint8)), m)

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            DecodeRLEMaskd("mask", add_channel="yes")
        with self.assertRaises(ValueError):
            DecodeRLEMaskd("mask")({"mask": "1 2"})
        with self.assertRaises(KeyError):
            DecodeRLEMaskd("mask")({"other": 1})


if __name__ == "__main__":
    unittest.main()
