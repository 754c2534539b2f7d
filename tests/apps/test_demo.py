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
The one-command demo end to end at toy size: ``run_demo`` generates the data, trains AFLoc and both ablations
through the bundle (tiny BERT, 64 px, one epoch), evaluates against the prior and the shuffled control, and writes
``metrics.json``, ``results.md``, overlays and a checkpoint that ``load_afloc_checkpoint`` reads back.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest

import torch

from monai_afloc.apps.demo import ABLATIONS, run_demo
from monai_afloc.checkpoint import load_afloc_checkpoint
from tests.helpers import make_tiny_bert

_TINY = {"backbone": "resnet10", "image_size": 64, "batch_size": 8, "epochs": 1, "progress_bar": False}


class TestRunDemo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        cls.bert = make_tiny_bert(os.path.join(cls.tmp, "bert"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_demo_with_ablations(self):
        out = os.path.join(self.tmp, "demo")
        metrics = run_demo(out, steps=3, ablations=True, n_train=16, n_val=4, n_test=6, image_size=64,
                           text_model=self.bert, overrides=_TINY)
        with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
            saved = json.load(f)
        for name in ("afloc", "prior", "shuffled", *ABLATIONS):
            self.assertIn(name, saved)
            self.assertIn("pointing_game", saved[name]["mean"])
            self.assertIn("location_bearing", saved[name])
        for name in ("afloc", *ABLATIONS):
            for kind in ("heatmap_max", "zero_shot"):
                self.assertIn("auroc", saved[name]["detection"][kind]["mean"])
        self.assertEqual(saved["settings"]["image_size"], 64)
        self.assertLess(saved["minutes_total"], 5)
        self.assertEqual(metrics["table"], saved["table"])
        with open(os.path.join(out, "results.md"), encoding="utf-8") as f:
            self.assertIn("| afloc |", f.read())
        self.assertTrue(saved["overlays"])
        for path in saved["overlays"]:
            self.assertTrue(os.path.isfile(path), path)
        net = load_afloc_checkpoint(os.path.join(out, "models", "afloc"))
        self.assertEqual(net.image_encoder.backbone_name, "resnet10")
        self.assertEqual(saved["settings"]["max_steps"], 3)
        with open(os.path.join(out, "models", "afloc", "afloc_config.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["extra"]["iteration"], 3)  # the step budget, whatever the machine's speed

    def test_reserved_overrides(self):
        for key, argument in (("seed", "seed"), ("text_model", "text_model"), ("budget_minutes", "minutes"),
                              ("max_steps", "steps")):
            with self.assertRaisesRegex(ValueError, argument):
                run_demo(os.path.join(self.tmp, "unused"), overrides={key: 1})
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "unused")))  # nothing written

    def test_bad_minutes_and_steps(self):
        for kwargs in ({"minutes": 0}, {"steps": 0}, {"steps": 2.5}, {"steps": True}):
            with self.assertRaises(ValueError):
                run_demo(os.path.join(self.tmp, "unused"), **kwargs)


if __name__ == "__main__":
    unittest.main()
