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
"""Deploy-app pieces that need no MONAI Deploy (config, predictor, geometry helpers): these run in every env."""

from __future__ import annotations

import os
import tempfile
import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_afloc.apps.deploy.app import split_config_arg
from monai_afloc.apps.deploy.config import DEFAULT_APP_CONFIG, load_app_config
from monai_afloc.apps.deploy.operators import display_size, findings_text, volume_to_2d
from monai_afloc.apps.deploy.predictor import AFLocPredictor, PrecomputedPromptEncoder, load_deploy_model
from monai_afloc.apps.deploy.report import RunReport
from monai_afloc.inferers.localizer import TextPromptLocalizer
from tests.helpers import BrightnessAFLoc, write_dx_dicom


class TestVolumeTo2D(unittest.TestCase):
    def test_layouts_of_a_non_square_image(self):
        img = np.arange(6 * 4).reshape(6, 4)  # 6 rows, 4 columns
        for vol in (img[None], img.T[..., None], img[..., None], img):
            np.testing.assert_array_equal(volume_to_2d(vol, 6, 4), img)

    @parameterized.expand([[np.zeros((3, 6, 4))], [np.zeros((1, 4, 6))], [np.zeros((6, 5))]])
    def test_rejects_3d_and_wrong_geometry(self, vol):
        with self.assertRaisesRegex(ValueError, "expected one 2D image of 6 rows x 4 columns"):
            volume_to_2d(vol, 6, 4)


class TestDisplaySize(unittest.TestCase):
    def test_subsamples_big_images_and_scales_boxes(self):
        img, maps = np.zeros((2500, 2048)), np.zeros((2, 2500, 2048))
        boxes = [[{"box": [30, 60, 90, 120], "score": 0.9, "area": 5}], []]
        small_img, small_maps, small_boxes = display_size(img, maps, boxes, max_side=1024)
        self.assertEqual((small_img.shape, small_maps.shape), ((834, 683), (2, 834, 683)))
        self.assertEqual(small_boxes, [[{"box": [10.0, 20.0, 30.0, 40.0], "score": 0.9, "area": 5}], []])
        same = display_size(img[:100, :50], maps[:, :100, :50], boxes)
        self.assertIs(same[2], boxes)


class TestAppConfig(unittest.TestCase):
    def test_defaults_and_merge(self):
        cfg = load_app_config(None)
        self.assertEqual(len(cfg["finding_prompts"]), len(DEFAULT_APP_CONFIG["findings"]))
        cfg = load_app_config({"findings": ["Nodule"], "prompts": [{"label": "L eff", "prompt": "left effusion"}],
                               "outputs": {"png": False}, "modalities": ["dx"]})
        self.assertEqual(cfg["finding_prompts"], [("Nodule", "nodule"), ("L eff", "left effusion")])
        self.assertEqual(cfg["outputs"], {"seg": True, "sr": True, "png": False, "json": True})
        self.assertEqual(cfg["modalities"], ["DX"])
        self.assertEqual(load_app_config({"prompts": [{"label": "a", "prompt": "b"}]})["finding_prompts"], [("a", "b")])

    def test_yaml_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "c.yaml")
            with open(path, "w") as f:
                f.write("findings: [Edema]\nthreshold: 0.25\n")
            cfg = load_app_config(path)
        self.assertEqual((cfg["finding_prompts"], cfg["threshold"]), ([("Edema", "edema")], 0.25))

    @parameterized.expand([
        [{"treshold": 0.5}, "unknown app config keys"],
        [{"threshold": 2}, "threshold"],
        [{"findings": []}, "names no finding"],
        [{"findings": ["A", "A"]}, "duplicates"],
        [{"prompts": [{"label": "x"}]}, "prompts"],
        [{"outputs": {"pdf": True}}, "outputs"],
        [{"sigma": -1}, "sigma"],
        [{"modalities": "DX"}, "modalities"],
    ])
    def test_ill_config(self, cfg, msg):
        with self.assertRaisesRegex(ValueError, msg):
            load_app_config(cfg)

    def test_missing_file(self):
        with self.assertRaises(FileNotFoundError):
            load_app_config("/nonexistent/afloc.yaml")
        with self.assertRaises(TypeError):
            load_app_config(3)

    def test_split_config_arg(self):
        self.assertEqual(
            split_config_arg(["p", "-i", "x", "-c", "c.yaml", "-o", "y"]), (["p", "-i", "x", "-o", "y"], "c.yaml")
        )
        self.assertEqual(split_config_arg(["p", "--config=c.yaml"]), (["p"], "c.yaml"))
        with self.assertRaises(ValueError):
            split_config_arg(["p", "-c"])


class TestPredictor(unittest.TestCase):
    def test_brightness_matches_the_localizer(self):
        rows, cols = 90, 60
        img = np.full((rows, cols), 300, np.uint16)
        img[10:30, 35:55] = 3000
        with tempfile.TemporaryDirectory() as d:
            path = write_dx_dicom(os.path.join(d, "a.dcm"), img)
            pred = AFLocPredictor(BrightnessAFLoc(), [("Nodule", "nodule"), ("Mass", "mass")], threshold=0.5)
            out = pred(path)
            localizer = TextPromptLocalizer(BrightnessAFLoc(), threshold=0.5)
            ref = localizer(path, ["nodule", "mass"], return_masks=True, return_boxes=True)
        self.assertEqual(out["heatmaps"].shape, (2, rows, cols))
        np.testing.assert_array_equal(out["masks"], ref["masks"][0].numpy())
        self.assertEqual(out["boxes"], ref["boxes"][0])
        x, y, w, h = out["boxes"][0][0]["box"]
        self.assertTrue(35 <= x + w / 2 <= 55 and 10 <= y + h / 2 <= 30, out["boxes"][0])
        text = findings_text(out, "AFLoc", 0.5)
        self.assertIn("Nodule (prompt 'nodule'): score", text)
        self.assertIn(f"[{x}, {y}, {w}, {h}]", text)

    def test_ill_args(self):
        with self.assertRaisesRegex(ValueError, "findings"):
            AFLocPredictor(BrightnessAFLoc(), [])
        with self.assertRaisesRegex(ValueError, "pair"):
            AFLocPredictor(BrightnessAFLoc(), [("a",)])
        with self.assertRaisesRegex(ValueError, "unique"):
            AFLocPredictor(BrightnessAFLoc(), [("a", "x"), ("a", "y")])
        with self.assertRaisesRegex(ValueError, "threshold"):
            AFLocPredictor(BrightnessAFLoc(), [("a", "x")], threshold=3)
        with self.assertRaises(FileNotFoundError):
            load_deploy_model("/nonexistent/model")
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ValueError, "neither a TorchScript deploy folder"):
                load_deploy_model(d)

    def test_precomputed_prompts(self):
        enc = PrecomputedPromptEncoder({"Pleural effusion": torch.ones(4), "nodule": torch.zeros(4)})
        self.assertEqual(tuple(enc(["pleural effusion", "nodule"]).shape), (2, 4))
        with self.assertRaisesRegex(ValueError, "were not exported"):
            enc(["pneumothorax"])
        with self.assertRaisesRegex(ValueError, "same width"):
            PrecomputedPromptEncoder({"a": torch.ones(2), "b": torch.ones(3)})


class TestRunReport(unittest.TestCase):
    def test_statuses(self):
        rep = RunReport()
        self.assertEqual(rep.finalize()["status"], "no_input")
        rep.series("s1", "a", status="ok")
        self.assertEqual(rep.finalize()["status"], "ok")
        rep.study_message("s2", "no_cr_dx_series", "no CR/DX series")
        rep.reject_file("x.dcm", "bad")
        out = rep.finalize()
        self.assertEqual((out["status"], out["studies"]["s1"]["status"]), ("partial", "ok"))
        self.assertEqual(out["rejected_files"], [{"file": "x.dcm", "reason": "bad"}])


if __name__ == "__main__":
    unittest.main()
