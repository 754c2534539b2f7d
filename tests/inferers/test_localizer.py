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

import os
import tempfile
import unittest
import warnings

import numpy as np
import torch
from parameterized import parameterized
from PIL import Image

from monai_afloc.inferers.localizer import PromptEncoder, TextPromptLocalizer
from monai_afloc.inferers.zero_shot import ZeroShotClassifier
from tests.helpers import BrightnessAFLoc, make_tiny_tokenizer, write_dx_dicom


def bright_square_image(rows: int, cols: int, center: tuple[int, int], half: int, peak: int = 250) -> np.ndarray:
    img = np.full((rows, cols), 60, dtype=np.uint16)
    r, c = center
    img[r - half : r + half, c - half : c + half] = peak
    return img


# (rows, cols, square centre (row, col)): portrait and landscape, square far from the centre
GEOMETRY_CASES = [
    ("png_portrait", 400, 250, (300, 60)),
    ("png_landscape", 240, 410, (50, 330)),
    ("dicom_portrait", 380, 260, (80, 190)),
    ("dicom_landscape", 250, 390, (190, 70)),
    ("dicom_mono1_landscape", 250, 390, (60, 300)),
]


class TestLocalizerGeometry(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.net = BrightnessAFLoc()
        cls.loc = TextPromptLocalizer(cls.net, sigma=1.5)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @parameterized.expand(GEOMETRY_CASES)
    def test_maximum_maps_back_to_square(self, name, rows, cols, center):
        img = bright_square_image(rows, cols, center, half=25)
        path = os.path.join(self.tmp.name, name + (".dcm" if "dicom" in name else ".png"))
        if "mono1" in name:
            write_dx_dicom(path, 255 - img, photometric="MONOCHROME1")  # displayed: the square is bright
        elif "dicom" in name:
            write_dx_dicom(path, img.astype(np.uint16) * 16)  # 12-bit range
        else:
            Image.fromarray(img.astype(np.uint8)).save(path)
        out = self.loc(path, ["left pleural effusion", "cardiomegaly"], return_masks=True, return_boxes=True)
        hm = out["heatmaps"]
        self.assertEqual(tuple(hm.shape), (1, 2, rows, cols))
        self.assertFalse(torch.isnan(hm).any())
        flat = int(hm[0, 0].argmax())
        r, c = divmod(flat, cols)
        self.assertLessEqual(abs(r - center[0]), 25, (r, c))
        self.assertLessEqual(abs(c - center[1]), 25, (r, c))
        # boxes are in original pixels and contain the square's centre
        x, y, w, h = out["boxes"][0][0][0]["box"]
        self.assertTrue(x <= center[1] <= x + w and y <= center[0] <= y + h, (x, y, w, h))
        self.assertEqual(out["masks"].dtype, torch.bool)
        self.assertGreaterEqual(float(hm.max()), 0.99)

    def test_tensor_batch_and_mixed_sizes(self):
        a = torch.from_numpy(bright_square_image(200, 120, (150, 40), 15).astype(np.float32))[None]
        out = self.loc(torch.stack([a, a.flip(-1)]), "pleural effusion")
        self.assertEqual(tuple(out["heatmaps"].shape), (2, 1, 200, 120))
        r, c = divmod(int(out["heatmaps"][1, 0].argmax()), 120)
        self.assertLessEqual(abs(c - (120 - 40)), 15)
        # paths of different sizes -> a list of per-image maps
        p1, p2 = os.path.join(self.tmp.name, "a.png"), os.path.join(self.tmp.name, "b.png")
        Image.fromarray(bright_square_image(100, 60, (50, 30), 8).astype(np.uint8)).save(p1)
        Image.fromarray(bright_square_image(70, 90, (20, 20), 8).astype(np.uint8)).save(p2)
        out = self.loc([p1, p2], ["a b", "c d", "e f"])
        self.assertEqual([tuple(m.shape) for m in out["heatmaps"]], [(3, 100, 60), (3, 70, 90)])
        self.assertEqual(tuple(out["frame_heatmaps"].shape), (2, 3, 224, 224))
        self.assertEqual(tuple(out["scores"].shape), (2, 3))

    def test_prompt_cache(self):
        net = BrightnessAFLoc()
        enc = PromptEncoder(net)
        enc(["small left effusion", "cardiomegaly"])
        calls = net.text_encoder.calls
        v = enc(["Small LEFT effusion.", "cardiomegaly"])  # same cleaned texts -> cache hits
        self.assertEqual(net.text_encoder.calls, calls)
        self.assertEqual(tuple(v.shape), (2, 1))

    def test_prompt_cut_at_max_length(self):
        enc = PromptEncoder(BrightnessAFLoc(), tokenizer=make_tiny_tokenizer(), max_length=6)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            enc(["small left effusion"])  # [CLS] + 3 + [SEP] fits in 6
        with self.assertWarnsRegex(
            UserWarning, r"'small left pleural effusion and edema' has 8 tokens and is cut at max_length=6: the model "
            r"sees 'small left pleural effusion'"
        ):
            enc(["small left pleural effusion and edema"])
        with self.assertRaisesRegex(TypeError, "keep_unicode"):
            PromptEncoder(BrightnessAFLoc(), keep_unicode=1)

    def test_bad_input(self):
        with self.assertRaises(ValueError):
            self.loc(torch.rand(1, 1, 64, 64), [""])
        with self.assertRaises(ValueError):
            self.loc(torch.rand(1, 1, 64, 64), [])
        with self.assertRaises(TypeError):
            self.loc(12, "effusion")
        with self.assertRaises(ValueError):
            self.loc(torch.rand(2, 2, 64, 64), "effusion")
        with self.assertRaises(FileNotFoundError):
            self.loc(os.path.join(self.tmp.name, "missing.png"), "effusion")
        with self.assertRaises(TypeError):
            TextPromptLocalizer(torch.nn.Linear(1, 1))
        with self.assertRaises(ValueError):
            TextPromptLocalizer(self.net, sigma=-1)


class TestZeroShot(unittest.TestCase):
    def test_probabilities_and_heatmap_scores(self):
        net = BrightnessAFLoc()
        clf = ZeroShotClassifier(net, findings=["Pleural Effusion", "Cardiomegaly"])
        out = clf(torch.rand(3, 1, 64, 80))
        self.assertEqual(tuple(out["probabilities"].shape), (3, 2))
        self.assertTrue(bool(((out["probabilities"] >= 0) & (out["probabilities"] <= 1)).all()))
        hm = ZeroShotClassifier(net, findings=["Edema"], mode="heatmap")
        bright = torch.full((1, 1, 64, 64), 10.0)
        bright[..., 10:20, 10:20] = 200.0
        dark = torch.full((1, 1, 64, 64), 10.0)
        dark[..., 10:20, 10:20] = 20.0
        dark[..., 0, 0] = 255.0  # same maximum after rescaling by max, smaller bright region
        s = hm(torch.cat([bright, dark]))["scores"]
        self.assertGreater(float(s[0, 0]), float(s[1, 0]))

    def test_ill_arg(self):
        net = BrightnessAFLoc()
        with self.assertRaises(ValueError):
            ZeroShotClassifier(net, mode="other")
        with self.assertRaises(ValueError):
            ZeroShotClassifier(net, prompts={"X": {"positive": ["x"]}})
        with self.assertRaises(ValueError):
            ZeroShotClassifier(net, findings="Edema")
        with self.assertRaises(TypeError):
            ZeroShotClassifier(object())


if __name__ == "__main__":
    unittest.main()


class TestZeroShotProbabilities(unittest.TestCase):
    def test_values_and_bad_shapes(self):
        from monai_afloc.inferers import zero_shot_probabilities

        img = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        pos, neg = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 1.0]])
        p = zero_shot_probabilities(img, pos, neg, logit_scale=10.0)
        expected = torch.tensor([[1 / (1 + torch.exp(torch.tensor(-10.0)))], [1 / (1 + torch.exp(torch.tensor(10.0)))]])
        torch.testing.assert_close(p, expected)
        with self.assertRaises(ValueError):
            zero_shot_probabilities(img, pos, torch.zeros(2, 2))
        with self.assertRaises(ValueError):
            zero_shot_probabilities(img[0], pos, neg)
