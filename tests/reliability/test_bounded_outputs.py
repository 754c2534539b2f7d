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
"""Outputs of large images are bounded (reduced heatmaps, masks, NIfTI), boxes stay in original pixels."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import unittest

import nibabel as nib
import numpy as np
from PIL import Image

from monai_afloc.cli import main
from monai_afloc.inferers.localizer import TextPromptLocalizer
from tests.reliability._common import tiny_checkpoint


class TestBoundedOutputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.net, cls.ckpt = tiny_checkpoint(root)
        img = np.full((400, 200), 40, np.uint8)
        img[50:150, 100:180] = 250
        cls.png = os.path.join(root, "big.png")
        Image.fromarray(img).save(cls.png)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_localizer_bounds_heatmaps_and_keeps_box_coordinates(self):
        prompts = ["left pleural effusion", "nodule"]
        full = TextPromptLocalizer(self.net, threshold=0.0)(self.png, prompts, return_masks=True, return_boxes=True)
        small = TextPromptLocalizer(self.net, threshold=0.0, max_output_size=100)(
            self.png, prompts, return_masks=True, return_boxes=True
        )
        self.assertEqual(tuple(full["heatmaps"].shape), (1, 2, 400, 200))
        self.assertEqual(tuple(small["heatmaps"].shape), (1, 2, 100, 50))
        self.assertEqual(tuple(small["masks"].shape), (1, 2, 100, 50))
        self.assertEqual(small["geometries"][0].original_size, (400, 200))
        for k in range(2):  # the largest box of each prompt: same place in original pixels, within the 4x reduction
            big = max(full["boxes"][0][k], key=lambda b: b["area"])["box"]
            red = max(small["boxes"][0][k], key=lambda b: b["area"])["box"]
            np.testing.assert_allclose(red, big, atol=8)

    def test_cli_writes_reduced_outputs_unless_full_size(self):
        for flags, shape in ((["--max-output-size", "100"], (100, 50)), (["--full-size"], (400, 200))):
            out = os.path.join(self.tmp.name, "out_" + flags[0].strip("-"))
            with contextlib.redirect_stderr(io.StringIO()):
                code = main(["localize", self.png, "--checkpoint", self.ckpt, "--out", out, "--quiet",
                             "--prompt", "effusion", *flags])
            self.assertEqual(code, 0)
            nifti = nib.load(os.path.join(out, "big", "heatmaps.nii.gz"))
            self.assertEqual(nifti.shape[:2], shape[::-1])  # NIfTI axes are (x, y)
            self.assertEqual(Image.open(os.path.join(out, "big", "mask_00.png")).size[::-1], shape)
            with open(os.path.join(out, "big", "result.json"), encoding="utf-8") as f:
                result = json.load(f)
            self.assertEqual(result["size"], [400, 200])
            self.assertEqual(result["output_size"], list(shape))


if __name__ == "__main__":
    unittest.main()
