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

"""Tests of the full AFLoc image chain (AFLocImagePreprocess), inference and training variants."""

from __future__ import annotations

import os
import tempfile
import unittest

import numpy as np
import torch
from monai.data import MetaTensor
from parameterized import parameterized

from monai_afloc.transforms.image import AFLocImagePreprocess, CenterCropFrame, ResizeLongestSidePad
from tests.helpers import SkipIfNoModule
from tests.transforms.image.test_load import write_dicom
from tests.transforms.image.test_resize import reference_resize_shape


def random_cxr(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A uint8 image spanning 0..255 with a bright square at (20, 30)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 200, shape).astype(np.uint8)
    img[20:50, 30:60] = 255
    img[0, 0] = 0
    return img


class TestAFLocImagePreprocess(unittest.TestCase):
    @parameterized.expand([("portrait", (300, 180)), ("landscape", (180, 300))])
    def test_inference_chain(self, _, shape):
        img = torch.from_numpy(random_cxr(shape)).float()
        out = AFLocImagePreprocess()(img)
        self.assertIsInstance(out, MetaTensor)
        self.assertEqual((tuple(out.shape), out.dtype), ((3, 224, 224), torch.float32))
        self.assertGreaterEqual(out.min().item(), -1.0)
        self.assertLessEqual(out.max().item(), 1.0)
        self.assertEqual((out.min().item(), out.max().item()), (-1.0, 1.0))
        torch.testing.assert_close(out[0], out[1], rtol=0, atol=0)
        torch.testing.assert_close(out[0], out[2], rtol=0, atol=0)
        frame = ResizeLongestSidePad(224)(img[None])
        expected = (frame.as_tensor() / 255.0 - 0.5) / 0.5  # torchvision ToTensor + Normalize(0.5, 0.5)
        torch.testing.assert_close(out[:1].as_tensor(), expected, rtol=0, atol=0)
        g = out.meta["afloc_geometry"]
        self.assertEqual(g["original_size"], shape)
        self.assertGreater(max(g["pad"]), 0)
        self.assertEqual(out[0, 0, 0].item(), -1.0)  # a padded corner
        self.assertTrue(bool(torch.isfinite(out).all()))

    def test_train_chain(self):
        img = torch.from_numpy(random_cxr((300, 180))).float()
        out = AFLocImagePreprocess(train=True)(img[None])
        self.assertEqual(tuple(out.shape), (3, 224, 224))
        frame = CenterCropFrame(224)(ResizeLongestSidePad(256)(img[None]))
        torch.testing.assert_close(out[:1].as_tensor(), (frame.as_tensor() / 255.0 - 0.5) / 0.5, rtol=0, atol=0)
        g = out.meta["afloc_geometry"]
        self.assertEqual((g["padded_size"], g["frame_size"], g["crop"]), (256, 224, (16, 16)))
        self.assertGreaterEqual(out.min().item(), -1.0)
        self.assertLessEqual(out.max().item(), 1.0)

    @parameterized.expand([("inference", False), ("train", True)])
    def test_equalize(self, _, train):
        img = torch.from_numpy(random_cxr((200, 120))).float()
        out = AFLocImagePreprocess(train=train, equalize_hist=True)(img)
        plain = AFLocImagePreprocess(train=train)(img)
        self.assertEqual(tuple(out.shape), (3, 224, 224))
        self.assertFalse(torch.equal(out.as_tensor(), plain.as_tensor()))
        self.assertGreaterEqual(out.min().item(), -1.0)
        self.assertLessEqual(out.max().item(), 1.0)

    def test_from_dicom_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            arr = np.zeros((300, 200), np.uint16)
            arr[50:100, 20:60] = 4000
            path = write_dicom(os.path.join(tmp, "x.dcm"), arr, "MONOCHROME1")
            out = AFLocImagePreprocess()(path)
        self.assertEqual(tuple(out.shape), (3, 224, 224))
        g = out.meta["afloc_geometry"]
        self.assertEqual((g["original_size"], g["resized_size"], g["pad"]), ((300, 200), (224, 149), (0, 37)))
        # MONOCHROME1: the 4000 square is dark (-1), the background bright (+1); the padding is -1
        self.assertEqual(out[0, 50, 100].item(), 1.0)
        self.assertEqual(out[0, 55, 65].item(), -1.0)
        self.assertEqual(out[0, 100, 10].item(), -1.0)
        self.assertEqual(out.meta["afloc_photometric_interpretation"], "MONOCHROME1")

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            AFLocImagePreprocess(size=0)
        with self.assertRaises(TypeError):
            AFLocImagePreprocess(train="yes")  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            AFLocImagePreprocess(equalize_hist=1)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            AFLocImagePreprocess(train=True, train_resize_size=200)
        with self.assertRaises(ValueError):
            AFLocImagePreprocess(interpolation="lanczos")
        t = AFLocImagePreprocess()
        with self.assertRaisesRegex(ValueError, "grayscale"):
            t(torch.zeros(3, 30, 20))
        with self.assertRaises(TypeError):
            t({"image": torch.zeros(1, 30, 20)})
        with self.assertRaises(FileNotFoundError):
            t("/nonexistent/cxr.png")


@SkipIfNoModule("cv2")
class TestReferenceChainParity(unittest.TestCase):
    """The release's ``process_img`` chain re-expressed with cv2/numpy (torchvision-free)."""

    @parameterized.expand([("portrait", (613, 407)), ("landscape", (407, 613)), ("square", (500, 500))])
    def test_exact(self, _, shape):
        import cv2
        from PIL import Image

        img = random_cxr(shape, seed=3)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.png")
            Image.fromarray(img).save(path)
            x = cv2.imread(path, 0)
            out = AFLocImagePreprocess()(path)
        h, w = reference_resize_shape(*x.shape, 224)
        x = cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)
        pad_h, pad_w = 224 - h, 224 - w
        x = np.pad(x, [(pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)])
        expected = (torch.from_numpy(x).float().div(255) - 0.5) / 0.5
        for c in range(3):
            torch.testing.assert_close(out[c].as_tensor(), expected, rtol=0, atol=0)


if __name__ == "__main__":
    unittest.main()
