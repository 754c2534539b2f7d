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
"""Large images are decoded at a reduced size (integer box average) with their geometry in original pixels."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import unittest
from unittest import mock

import nibabel as nib
import numpy as np
import torch
from PIL import Image

from monai_afloc.cli import main
from monai_afloc.inferers.localizer import TextPromptLocalizer
from monai_afloc.transforms.image import io as image_io
from monai_afloc.transforms.image.array import AFLocImagePreprocess, ResizeLongestSidePad
from monai_afloc.transforms.image.io import LoadGrayscaleImage, box_reduce, decode_factor, original_size_of
from tests.reliability._common import tiny_checkpoint


def _reference_box_mean(arr: np.ndarray, f: int) -> np.ndarray:
    """Block means one block at a time (the definition, independent of box_reduce's banded reduceat)."""
    rows, cols = -(-arr.shape[0] // f), -(-arr.shape[1] // f)
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            out[i, j] = arr[i * f : (i + 1) * f, j * f : (j + 1) * f].astype(np.float64).mean()
    return out


class TestBoxReduce(unittest.TestCase):
    def test_matches_block_means_with_partial_edges_and_small_bands(self):
        rng = np.random.default_rng(0)
        for dtype, hi in ((np.uint8, 256), (np.uint16, 65536)):
            arr = rng.integers(0, hi, (47, 53), dtype=dtype)
            with mock.patch.object(image_io, "_BAND_ELEMENTS", 200):  # several bands, last one partial
                out = box_reduce(arr, 4)
            self.assertEqual(out.dtype, dtype)
            self.assertEqual(out.shape, (12, 14))
            np.testing.assert_array_equal(out, np.rint(_reference_box_mean(arr, 4)))

    def test_factor_rule_and_bad_factor(self):
        self.assertEqual(decode_factor(12000, 12000, 8192), 2)
        self.assertEqual(decode_factor(8192, 100, 8192), 1)
        self.assertEqual(decode_factor(8193, 100, 8192), 2)
        self.assertEqual(decode_factor(600, 400, 250), 3)
        self.assertEqual(decode_factor(90000, 10, None), 1)
        with self.assertRaisesRegex(ValueError, "factor"):
            box_reduce(np.zeros((4, 4)), 0)
        with self.assertRaisesRegex(TypeError, "max_decode_size"):
            LoadGrayscaleImage(max_decode_size=300.0)
        with self.assertRaisesRegex(ValueError, "max_decode_size"):
            LoadGrayscaleImage(max_decode_size=0)


class TestBoundedDecode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.net, cls.ckpt = tiny_checkpoint(root)
        rng = np.random.default_rng(1)
        img = rng.integers(20, 60, (600, 450), dtype=np.uint8)
        img[100:300, 250:400] = 240
        cls.pixels = img
        cls.png = os.path.join(root, "wide.png")
        Image.fromarray(img).save(cls.png)
        img16 = (img.astype(np.uint16) * 200).T.copy()  # 450 x 600, 16-bit
        cls.nii = os.path.join(root, "tall.nii.gz")
        nib.save(nib.Nifti1Image(img16, np.eye(4)), cls.nii)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_loader_reduces_above_threshold_only_and_keeps_original_size(self):
        full = LoadGrayscaleImage()(self.png)  # the default threshold (8192) leaves ordinary images alone
        self.assertEqual(tuple(full.shape), (1, 600, 450))
        self.assertEqual(full.meta["afloc_decode_factor"], 1)
        np.testing.assert_array_equal(full[0].numpy(), self.pixels)
        small = LoadGrayscaleImage(max_decode_size=250)(self.png)  # 600 > 250: factor 3
        self.assertEqual(tuple(small.shape), (1, 200, 150))
        self.assertEqual(small.meta["afloc_decode_factor"], 3)
        self.assertEqual(original_size_of(small), (600, 450))
        np.testing.assert_array_equal(small[0].numpy(), np.rint(_reference_box_mean(self.pixels, 3)))
        # the affine maps a reduced pixel to the centre of its block in original pixels
        np.testing.assert_allclose(small.affine[:2, :2].numpy(), 3 * np.eye(2))
        np.testing.assert_allclose(small.affine[:2, 3].numpy(), [1.0, 1.0])
        nifti = LoadGrayscaleImage(max_decode_size=300)(self.nii)  # 16-bit: reduced, then rescaled by its max
        self.assertEqual(tuple(nifti.shape), (1, 225, 300))
        self.assertEqual(original_size_of(nifti), (450, 600))
        self.assertEqual(float(nifti.max()), 255.0)

    def test_geometry_is_the_original_images(self):
        exact = AFLocImagePreprocess()(self.png)
        reduced = AFLocImagePreprocess(max_decode_size=250)(self.png)
        self.assertEqual(reduced.meta["afloc_geometry"], exact.meta["afloc_geometry"])
        self.assertEqual(reduced.meta["afloc_geometry"]["original_size"], (600, 450))
        # the frame from 1/3 of the pixels is close to the exact one (bright block in the same place)
        self.assertLess(float((reduced - exact).abs().mean()), 0.02)
        self.assertGreater(float((reduced - exact).abs().max()), 0.0)  # and it is a different path
        loaded = LoadGrayscaleImage(max_decode_size=250)(self.png)
        cropped = loaded[:, :150, :150]  # changed after loading: its recorded size no longer fits
        with self.assertRaisesRegex(ValueError, "decoded at 1/3 of 600 x 450"):
            ResizeLongestSidePad(224)(cropped)

    def test_localizer_heatmaps_and_boxes_in_original_pixels(self):
        prompts = ["left pleural effusion", "nodule"]
        kw = {"return_masks": True, "return_boxes": True}
        exact = TextPromptLocalizer(self.net, threshold=0.0)(self.png, prompts, **kw)
        reduced = TextPromptLocalizer(self.net, threshold=0.0, preprocess=AFLocImagePreprocess(max_decode_size=250))
        out = reduced(self.png, prompts, **kw)
        self.assertEqual(tuple(out["heatmaps"].shape), (1, 2, 600, 450))
        self.assertEqual(out["geometries"][0].original_size, (600, 450))
        self.assertLess(float((out["heatmaps"] - exact["heatmaps"]).abs().max()), 0.2)
        for k in range(2):
            big = max(exact["boxes"][0][k], key=lambda b: b["area"])["box"]
            red = max(out["boxes"][0][k], key=lambda b: b["area"])["box"]
            np.testing.assert_allclose(red, big, atol=12)  # original pixels, not the 200 x 150 decode

    def test_cli_large_image_reduced_decode(self):
        out = os.path.join(self.tmp.name, "cli")
        real_factor = image_io.decode_factor
        with mock.patch.object(image_io, "decode_factor", lambda h, w, _: real_factor(h, w, 250)), \
                mock.patch.object(image_io, "box_reduce", wraps=image_io.box_reduce) as spy, \
                contextlib.redirect_stderr(io.StringIO()):
            code = main(["localize", self.png, "--checkpoint", self.ckpt, "--out", out, "--quiet",
                         "--prompt", "effusion", "--max-output-size", "300"])
        self.assertEqual(code, 0)
        self.assertEqual([c.args[1] for c in spy.call_args_list], [3])  # decoded once, at 1/3
        with open(os.path.join(out, "wide", "result.json"), encoding="utf-8") as f:
            result = json.load(f)
        self.assertEqual(result["size"], [600, 450])
        self.assertEqual(result["output_size"], [300, 225])
        for box in result["prompts"][0]["boxes"]:  # boxes in the original 600 x 450 pixels
            x, y, w, h = box["box"]
            self.assertTrue(0 <= x and 0 <= y and x + w <= 450 + 1e-6 and y + h <= 600 + 1e-6, box)
        self.assertEqual(nib.load(os.path.join(out, "wide", "heatmaps.nii.gz")).shape[:2], (225, 300))
        self.assertTrue(torch.isfinite(torch.as_tensor(nib.load(os.path.join(out, "wide", "heatmaps.nii.gz"))
                                                       .get_fdata())).all())


if __name__ == "__main__":
    unittest.main()
