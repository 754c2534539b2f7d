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
One checkpoint trained at a non-default size gives one heatmap whichever entry point runs it (to 1e-5): the Python
API, the CLI, the bundle's inference.json and the Deploy predictor here; the MONAI Label task and the Deploy app's
operator in their own environments (tests/apps/monailabel/test_entry_point.py, tests/apps/deploy/test_deploy_app.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import unittest

import numpy as np
import torch

from monai_afloc.checkpoint import load_afloc_checkpoint, load_inference_settings
from monai_afloc.inference_settings import REFERENCE_SIGMA, REFERENCE_SENTENCE_GRID, InferenceSettings
from monai_afloc.inferers import TextPromptLocalizer, ZeroShotClassifier
from tests.helpers import SIZED_GRID, SIZED_IMAGE_SIZE, read_heatmaps_nifti, write_sized_checkpoint

PROMPTS = ["left pleural effusion", "cardiomegaly"]
BUNDLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "bundles", "afloc_chest_xray_localization"))


class TestOneCheckpointOneHeatmap(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ckpt, cls.png, cls.dcm = write_sized_checkpoint(cls.tmp.name)
        cls.loc = TextPromptLocalizer.from_checkpoint(cls.ckpt)
        cls.ref = cls.loc(cls.png, PROMPTS)["heatmaps"][0].numpy()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assert_same(self, got, ref=None):
        np.testing.assert_allclose(np.asarray(got, dtype=np.float32), self.ref if ref is None else ref, atol=1e-5,
                                   rtol=0)

    def test_api_reads_the_saved_settings(self):
        s = self.loc.settings
        self.assertEqual(s.image_size, SIZED_IMAGE_SIZE)
        self.assertAlmostEqual(s.sigma, REFERENCE_SIGMA * SIZED_GRID / REFERENCE_SENTENCE_GRID)
        self.assertEqual((s.threshold, s.region_key, s.text_key, s.max_length), (0.5, "image_sentences",
                                                                                 "text_report", 97))
        # the same settings written by hand give the same maps; the old defaults (224 px, sigma 1.5) do not
        net = load_afloc_checkpoint(self.ckpt)
        by_hand = TextPromptLocalizer(net, sigma=1.5 * SIZED_GRID / 19, image_size=SIZED_IMAGE_SIZE)
        self.assert_same(by_hand(self.png, PROMPTS)["heatmaps"][0])
        old = TextPromptLocalizer(net)(self.png, PROMPTS)["heatmaps"][0].numpy()
        self.assertGreater(float(np.abs(old - self.ref).max()), 0.05)

    def test_overrides_win(self):
        loc = TextPromptLocalizer.from_checkpoint(self.ckpt, sigma=0.0, threshold=0.2)
        self.assertEqual((loc.sigma, loc.threshold, loc.image_size), (0.0, 0.2, SIZED_IMAGE_SIZE))
        loc = TextPromptLocalizer.from_checkpoint(self.ckpt, image_size=192, sigma=None)  # None keeps the saved
        self.assertEqual(loc.image_size, 192)
        self.assertAlmostEqual(loc.sigma, self.loc.sigma * 12 / SIZED_GRID)  # same width in pixels on the 12x12 grid
        with self.assertRaisesRegex(TypeError, "unknown inference setting"):
            TextPromptLocalizer.from_checkpoint(self.ckpt, sigmaa=1.0)
        with self.assertRaises(ValueError):
            TextPromptLocalizer.from_checkpoint(self.ckpt, sigma=-1.0)
        clf = ZeroShotClassifier.from_checkpoint(self.ckpt, findings=["Edema"])
        self.assertEqual((clf.settings.image_size, clf.sigma), (SIZED_IMAGE_SIZE, self.loc.sigma))

    def test_cli(self):
        from monai_afloc.cli import main

        out = os.path.join(self.tmp.name, "cli")
        with contextlib.redirect_stderr(io.StringIO()) as err:
            code = main(["localize", self.png, "--checkpoint", self.ckpt, "--out", out, "--quiet", "--no-overlay",
                         *[a for p in PROMPTS for a in ("--prompt", p)]])
        self.assertEqual(code, 0, err.getvalue())
        self.assert_same(read_heatmaps_nifti(os.path.join(out, "cxr", "heatmaps.nii.gz")))

    def test_bundle_inference(self):
        from monai.bundle import ConfigParser

        out = os.path.join(self.tmp.name, "bundle")
        parser = ConfigParser()
        parser.read_config(os.path.join(BUNDLE, "configs", "inference.json"))
        parser.update({"bundle_root": BUNDLE, "checkpoint": self.ckpt, "device": "$torch.device('cpu')",
                       "dataset_dir": os.path.dirname(self.png), "output_dir": out, "prompts": PROMPTS,
                       "image_suffixes": [".png"], "save_overlays": False})
        parser.get_parsed_content("initialize")
        summary = parser.get_parsed_content("evaluator").run()
        self.assertEqual(summary["failures"], {})
        self.assert_same(read_heatmaps_nifti(os.path.join(out, "cxr", "heatmaps.nii.gz")))

    def test_deploy_predictor(self):
        from monai_afloc.apps.deploy.predictor import AFLocPredictor

        pred = AFLocPredictor(self.ckpt, list(zip(["A", "B"], PROMPTS)))
        self.assertEqual(pred.localizer.settings, self.loc.settings)
        self.assert_same(pred(self.png)["heatmaps"])

    def test_release_settings(self):
        # a release-layout network (ResNet-50 resized to 299) gets the release's settings: 224 px, sigma 1.5
        from monai_afloc.networks.nets import AFLocImageEncoder

        with torch.device("meta"):  # no weights needed: the grid comes from the strides
            net = AFLocImageEncoder("resnet50", embed_dim=8, input_size=299)
        settings = load_inference_settings(os.path.join(self.tmp.name, "release.ckpt"), net)
        self.assertEqual(settings, InferenceSettings(image_size=224, sigma=1.5, threshold=0.5, max_length=97))

    def test_strict_saved_section(self):
        import json
        import shutil

        bad = os.path.join(self.tmp.name, "bad_ckpt")
        shutil.copytree(self.ckpt, bad)
        cfg_path = os.path.join(bad, "afloc_config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        del cfg["inference"]["sigma"]
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        with self.assertRaisesRegex(ValueError, "sigma"):
            TextPromptLocalizer.from_checkpoint(bad)


class TestStemPoolSettings(unittest.TestCase):
    """A ResNet saved with ``stem_pool=False`` (no stem max pool: every grid doubles) gets its own grid's sigma."""

    def test_stem_pool_false_checkpoint(self):
        import json

        from monai_afloc.checkpoint import CONFIG_FILENAME, save_afloc_checkpoint
        from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder
        from tests.helpers import make_tiny_bert

        with tempfile.TemporaryDirectory() as root:
            bert = make_tiny_bert(os.path.join(root, "bert"), hidden_size=32)
            image = AFLocImageEncoder("resnet10", embed_dim=32, input_size=None, stem_pool=False)
            ckpt = save_afloc_checkpoint(AFLoc(image, AFLocTextEncoder(bert)).eval(), os.path.join(root, "ckpt"),
                                         extra={"image_size": 128})
            expected = REFERENCE_SIGMA * 16 / REFERENCE_SENTENCE_GRID  # 16x16 sentence grid at 128 px (8x8 with pool)
            loc = TextPromptLocalizer.from_checkpoint(ckpt)
            self.assertFalse(loc.network.image_encoder.stem_pool)
            self.assertEqual(loc.network.image_encoder.feature_grid_sizes(128), ((32, 32), (16, 16)))
            self.assertEqual(loc.settings.image_size, 128)
            self.assertAlmostEqual(loc.sigma, expected)
            frames = loc(torch.rand(1, 1, 128, 128), PROMPTS)["frame_heatmaps"]
            self.assertEqual(tuple(frames.shape), (1, 2, 128, 128))
            # a folder saved before the inference section existed: the defaults follow the loaded stem too
            path = os.path.join(ckpt, CONFIG_FILENAME)
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
            del config["inference"]
            with open(path, "w", encoding="utf-8") as f:
                json.dump(config, f)
            self.assertAlmostEqual(TextPromptLocalizer.from_checkpoint(ckpt).sigma, expected)


if __name__ == "__main__":
    unittest.main()
