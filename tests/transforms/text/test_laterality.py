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

from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_afloc.transforms.text import LATERALITY_PAIRS, SwapLaterality, SwapLateralityd

EXTRA = {"pairs": (("left", "right"), ("lt", "rt"), ("sinistra", "dextra"))}

SWAP_CASES = [
    # [ctor_kwargs, input, expected]
    [{}, "left lower lobe opacity", "right lower lobe opacity"],
    [{}, "right", "left"],
    [{}, "Left lung clear. RIGHT effusion.", "Right lung clear. LEFT effusion."],
    [{}, "LEFT", "RIGHT"],
    [{}, "lEfT", "right"],  # mixed case without a leading capital: lower case
    [{}, "LeFt", "Right"],  # leading capital: leading capital
    [{}, "left-sided effusion, right-sided pneumothorax", "right-sided effusion, left-sided pneumothorax"],
    [{}, "Left-sided and RIGHT-SIDED", "Right-sided and LEFT-SIDED"],
    [{}, "left and right", "right and left"],  # one pass: never swapped twice
    [{}, "(left), right; left.", "(right), left; right."],
    [{}, "left\nright", "right\nleft"],
    [{}, "bright upright leftover copyright rightly Wright", "bright upright leftover copyright rightly Wright"],
    # derived forms are not swapped by default
    [{}, "leftward, rightwards, lefty, righted", "leftward, rightwards, lefty, righted"],
    [{}, "left_lung left2 2left", "left_lung left2 2left"],  # "_" and digits are word characters
    [{}, "", ""],
    [{}, "no laterality here", "no laterality here"],
    [EXTRA, "lt basilar opacity, RT apex, Sinistra", "rt basilar opacity, LT apex, Dextra"],
    [EXTRA, "tilt, art, left", "tilt, art, right"],
    [{"pairs": (("left", "right"), ("leftward", "rightward"))}, "leftward shift, left", "rightward shift, right"],
    [{"pairs": [["L", "R"]]}, "L marker, r side", "R marker, l side"],  # lists accepted, matching ignores case
    [{"pairs": (("left-sided", "right-sided"),)}, "left-sided, left", "right-sided, left"],
    [{}, ["Left effusion", "right lung clear"], ["Right effusion", "left lung clear"]],
    [{}, ("left", "bright"), ("right", "bright")],
    [{}, [], []],
]


class TestSwapLaterality(unittest.TestCase):
    @parameterized.expand(SWAP_CASES)
    def test_swap(self, kwargs, report, expected):
        out = SwapLaterality(**kwargs)(report)
        self.assertEqual(out, expected)
        self.assertIs(type(out), type(expected))

    @parameterized.expand([[case[1]] for case in SWAP_CASES if not case[0] and case[1] not in ("lEfT", "LeFt")])
    def test_twice_is_identity(self, report):
        swap = SwapLaterality()
        self.assertEqual(swap(swap(report)), report)

    def test_input_not_modified(self):
        sentences = ["left effusion", "right apex"]
        out = SwapLaterality()(sentences)
        self.assertEqual(sentences, ["left effusion", "right apex"])
        self.assertIsNot(out, sentences)

    def test_default_pairs(self):
        self.assertEqual(LATERALITY_PAIRS, (("left", "right"),))
        self.assertEqual(SwapLaterality().pairs, (("left", "right"),))
        self.assertEqual(SwapLaterality(pairs=[("Lt", "RT")]).pairs, (("lt", "rt"),))

    @parameterized.expand(
        [
            [None, TypeError, "report must be a str or a list/tuple of str, got NoneType"],
            [torch.tensor([1, 2]), TypeError, "before tokenizing"],
            [{"input_ids": 1}, TypeError, "before tokenizing"],
            [b"left", TypeError, "got bytes"],
            [["left", 3], TypeError, "item 1 is a int"],
        ]
    )
    def test_bad_input(self, value, error, message):
        with self.assertRaisesRegex(error, message):
            SwapLaterality()(value)

    @parameterized.expand(
        [
            [{"pairs": "left"}, TypeError, "sequence of \\(word, word\\) tuples.*got str"],
            [{"pairs": None}, TypeError, "got NoneType"],
            [{"pairs": ()}, ValueError, "at least one"],
            [{"pairs": ("left", "right")}, TypeError, "pairs\\[0\\] must be a \\(word, word\\) tuple, got 'left'"],
            [{"pairs": (("left", "right", "centre"),)}, TypeError, "pairs\\[0\\] must be a \\(word, word\\) tuple"],
            [{"pairs": (("left", 1),)}, TypeError, "two str, got a int"],
            [{"pairs": (("left", ""),)}, ValueError, "word character.*got ''"],
            [{"pairs": (("left", " right"),)}, ValueError, "word character"],
            [{"pairs": (("lt.", "rt."),)}, ValueError, "word character.*'lt.'"],
            [{"pairs": (("left", "Left"),)}, ValueError, "'Left' is already in pairs\\[0\\]"],
            [{"pairs": (("left", "right"), ("right", "dextra"))}, ValueError, "already in pairs\\[0\\]"],
            [{"pairs": np.array([["left", "right"]])}, TypeError, "got ndarray"],
        ]
    )
    def test_ill_arg(self, kwargs, error, message):
        with self.assertRaisesRegex(error, message):
            SwapLaterality(**kwargs)


class TestSwapLateralityd(unittest.TestCase):
    def test_keys(self):
        data = {"report": "Left effusion.", "sentences": ("right apex",), "other": "left"}
        out = SwapLateralityd(["report", "sentences"])(data)
        self.assertEqual(out, {"report": "Right effusion.", "sentences": ("left apex",), "other": "left"})
        self.assertEqual(data["report"], "Left effusion.")  # input dict not modified

    def test_pairs_and_missing(self):
        out = SwapLateralityd("r", pairs=(("left", "right"), ("lt", "rt")), allow_missing_keys=True)({"r": "lt, left"})
        self.assertEqual(out["r"], "rt, right")
        self.assertEqual(SwapLateralityd("r", allow_missing_keys=True)({"x": 1}), {"x": 1})
        with self.assertRaises(KeyError):
            SwapLateralityd("r")({"x": 1})

    def test_ill_arg(self):
        with self.assertRaisesRegex(ValueError, "at least one"):
            SwapLateralityd("r", pairs=())
        with self.assertRaisesRegex(TypeError, "before tokenizing"):
            SwapLateralityd("r")({"r": torch.ones(3)})


if __name__ == "__main__":
    unittest.main()
