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

from monai_afloc.transforms.post import HeatmapToBoxes, HeatmapToMask, heatmap_to_boxes


class TestPost(unittest.TestCase):
    def test_boxes_exact(self):
        hm = np.zeros((20, 30))
        hm[2:5, 3:9] = 0.8  # rows 2..4, cols 3..8
        hm[10:18, 20:22] = 0.6
        hm[11, 21] = 0.9
        hm[0, 29] = np.nan
        boxes = heatmap_to_boxes(torch.from_numpy(hm), 0.5)
        self.assertEqual([b["box"] for b in boxes], [[20, 10, 2, 8], [3, 2, 6, 3]])
        self.assertAlmostEqual(boxes[0]["score"], 0.9)
        self.assertEqual(boxes[1]["area"], 18)
        valid = np.ones((20, 30), bool)
        valid[:, :10] = False
        self.assertEqual(len(heatmap_to_boxes(hm, 0.5, valid=valid)), 1)
        self.assertEqual([b["box"] for b in HeatmapToBoxes(0.5, min_area=17)(hm)], [[3, 2, 6, 3]])  # the 16-pixel one dropped
        self.assertEqual(heatmap_to_boxes(hm, 0.95), [])

    def test_connectivity(self):
        hm = np.zeros((4, 4))
        hm[0, 0] = hm[1, 1] = 1
        self.assertEqual(len(heatmap_to_boxes(hm, 0.5, connectivity=2)), 1)
        self.assertEqual(len(heatmap_to_boxes(hm, 0.5, connectivity=1)), 2)

    def test_mask(self):
        hm = torch.tensor([[0.1, 0.7], [float("nan"), 0.9]])
        self.assertEqual(HeatmapToMask(0.5)(hm).tolist(), [[False, True], [False, True]])

    def test_ill_arg(self):
        for bad in (float("nan"), "0.5", None, True):
            with self.assertRaises(ValueError):
                HeatmapToMask(bad)
        with self.assertRaises(ValueError):
            HeatmapToBoxes(0.5, min_area=0)
        with self.assertRaises(ValueError):
            heatmap_to_boxes(np.zeros((2, 2, 2)), 0.5)
        with self.assertRaises(ValueError):
            heatmap_to_boxes(np.zeros((2, 2)), 0.5, valid=np.ones((3, 3)))


if __name__ == "__main__":
    unittest.main()
