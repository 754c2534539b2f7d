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
"""The calibration ladder: its two map baselines learn, and the whole ladder runs end to end at toy size."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import torch

from monai_afloc.apps.demo import ABLATIONS
from monai_afloc.apps.ladder import (
    LADDER_RUNGS,
    ClassMapNet,
    evaluate_class_maps,
    run_ladder,
    summarize_ladder,
    train_class_map_baseline,
)
from tests.helpers import make_tiny_bert


class TestMapBaselines(unittest.TestCase):
    def setUp(self):
        torch.set_num_threads(1)
        # a bright square in the left or right half; class 0 = left, 1 = right
        g = torch.Generator().manual_seed(0)
        self.frames = torch.rand(16, 3, 32, 32, generator=g) * 0.1 - 1
        self.masks = torch.zeros(16, 2, 32, 32)
        for n in range(16):
            side = n % 2
            self.frames[n, :, 8:24, 2 + 16 * side : 14 + 16 * side] = 1.0
            self.masks[n, side, 8:24, 2 + 16 * side : 14 + 16 * side] = 1.0
        self.labels = self.masks.amax(dim=(2, 3))

    def test_segmentation_learns_the_side(self):
        grid = ClassMapNet(2).eval()(self.frames[:1]).shape[-1]
        targets = torch.nn.functional.adaptive_avg_pool2d(self.masks, grid)
        net = train_class_map_baseline("supervised_segmentation", self.frames, targets, steps=40, batch_size=8,
                                       learning_rate=3e-3, amp=False)
        with torch.no_grad():
            maps = net(self.frames)
        left = maps[:, :, :, : grid // 2].mean(dim=(2, 3))
        right = maps[:, :, :, grid // 2 :].mean(dim=(2, 3))
        side = torch.arange(16) % 2
        # the map of the present class is higher on its own side
        own = torch.where(side == 0, left[:, 0] - right[:, 0], right[:, 1] - left[:, 1])
        self.assertGreater(float((own > 0).float().mean()), 0.8)

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            train_class_map_baseline("boxes", self.frames, self.labels, steps=1)
        with self.assertRaises(ValueError):
            train_class_map_baseline("label_cam", self.frames, self.masks, steps=1)  # needs [N, C]
        with self.assertRaises(ValueError):
            train_class_map_baseline("label_cam", self.frames[:3], self.labels, steps=1)
        with self.assertRaises(ValueError):
            ClassMapNet(0)

    def test_evaluate_class_maps_scores_a_perfect_map(self):
        maps = self.masks[:2].clone()  # the truth itself as the class maps, scored in a 64-pixel frame
        big = torch.nn.functional.interpolate(self.masks[:2], size=(64, 64), mode="nearest")
        items = [{"category": "a"}, {"category": "b"}]
        truth = [big[0, 0].numpy(), big[1, 1].numpy()]
        valid = [np.ones((64, 64), bool)] * 2
        report = evaluate_class_maps(maps, items, [0, 1], {"a": 0, "b": 1}, truth, valid, sigma=0.5, frame_size=64)
        self.assertEqual(report["mean"]["pointing_game"], 1.0)
        swapped = evaluate_class_maps(maps, items, [0, 1], {"a": 1, "b": 0}, truth, valid, sigma=0.5, frame_size=64)
        self.assertEqual(swapped["mean"]["pointing_game"], 0.0)

    def test_summary_mean_and_sd(self):
        rows = [{"afloc": {"pointing_game": 0.1}}, {"afloc": {"pointing_game": 0.3}}]
        s = summarize_ladder(rows)["afloc"]["pointing_game"]
        self.assertAlmostEqual(s["mean"], 0.2)
        self.assertAlmostEqual(s["sd"], float(np.std([0.1, 0.3], ddof=1)))


class TestRunLadder(unittest.TestCase):
    def test_toy_ladder(self):
        torch.set_num_threads(1)
        tmp = tempfile.mkdtemp()
        try:
            bert = make_tiny_bert(os.path.join(tmp, "bert"))
            out = os.path.join(tmp, "ladder")
            overrides = {"image_size": 64, "batch_size": 8, "progress_bar": False}
            from unittest import mock

            from monai_afloc.apps import demo

            real = demo.run_demo
            with mock.patch.object(demo, "run_demo", lambda *a, **k: real(*a, text_model=bert, **k)):
                result = run_ladder(out, steps=2, seeds=(0,), n_train=16, n_val=4, n_test=6, image_size=64,
                                    overrides=overrides, ablations=False)
            with open(os.path.join(out, "ladder.json"), encoding="utf-8") as f:
                saved = json.load(f)
            rungs = set(saved["summary"])
            self.assertEqual(rungs, set(LADDER_RUNGS) - set(ABLATIONS))
            for rung in ("supervised_segmentation", "label_cam", "afloc"):
                self.assertIn("detection_auroc", saved["summary"][rung])
            self.assertIn("| supervised_segmentation |", result["table"])
            self.assertTrue(os.path.isfile(os.path.join(out, "ladder.md")))
            self.assertTrue(os.path.isfile(os.path.join(out, "seed0", "overlays", "afloc_vs_prior.png")))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
