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

import json
import os
import tempfile
import unittest

import numpy as np
from PIL import Image

from monai_afloc.apps.evaluation import detection_auroc, evaluate_localization, format_table, read_synthetic_annotations
from tests.helpers import BrightnessAFLoc


def write_coco(root: str, n: int = 6) -> str:
    """Images with one bright square each at a different place; the square is the finding's mask."""
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(n):
        h, w = (160, 120) if i % 2 else (120, 160)
        img = np.full((h, w), 50, np.uint8)
        y, x = int(rng.integers(10, h - 40)), int(rng.integers(10, w - 40))
        img[y : y + 30, x : x + 30] = 230
        Image.fromarray(img).save(os.path.join(root, f"img{i}.png"))
        mask = np.zeros((h, w), np.uint8)
        mask[y : y + 30, x : x + 30] = 255
        Image.fromarray(mask).save(os.path.join(root, f"mask{i}.png"))
        images.append({"id": i, "file_name": f"img{i}.png", "path": f"img{i}.png", "width": w, "height": h})
        anns.append({"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [x, y, 30, 30], "area": 900,
                     "iscrowd": 0, "label_text": f"nodule {i}", "label_text_location_free": "nodule",
                     "mask_path": f"mask{i}.png"})
    cats = [{"id": 1, "name": "Nodule", "supercategory": "finding"}, {"id": 2, "name": "Mass", "supercategory": "finding"}]
    path = os.path.join(root, "ann.json")
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    return path


class TestEvaluation(unittest.TestCase):
    def test_model_beats_controls_when_it_sees_the_image(self):
        with tempfile.TemporaryDirectory() as d:
            items = read_synthetic_annotations(write_coco(d))
            self.assertEqual(len(items), 6)
            self.assertEqual(int(items[0]["mask"].sum()), 900)
            flat = {"location_free": {"nodule": np.full((224, 224), 0.1)}, "category": {}}
            res = evaluate_localization(BrightnessAFLoc(), items, priors=flat, n_bootstrap=20)
            self.assertEqual(set(res), {"afloc", "shuffled", "prior"})
            self.assertEqual(res["afloc"]["mean"]["pointing_game"], 1.0)
            self.assertLess(res["shuffled"]["mean"]["pointing_game"], 0.5)
            self.assertGreater(res["afloc"]["mean"]["iou"], res["shuffled"]["mean"]["iou"])
            self.assertIn("location_bearing", res["afloc"])
            self.assertIn("| afloc | location-free | 1.000 |", format_table(res))
            paths = sorted({it["image"] for it in items})
            labels = np.array([[1, 0], [0, 1]] * 3)
            det = detection_auroc(BrightnessAFLoc(), paths, labels, ["Nodule", "Mass"])
            self.assertEqual(det["heatmap_max"]["per_finding"]["Nodule"]["n_pos"], 3)
            self.assertEqual(set(det), {"heatmap_max", "zero_shot"})
            self.assertTrue(0.0 <= det["zero_shot"]["mean"]["auroc"] <= 1.0)

    def test_bad_input(self):
        with self.assertRaises(FileNotFoundError):
            read_synthetic_annotations("/nonexistent/ann.json")
        with self.assertRaises(ValueError):
            evaluate_localization(BrightnessAFLoc(), [])
        with self.assertRaises(ValueError):
            detection_auroc(BrightnessAFLoc(), ["a.png"], np.zeros((2, 1)), ["Nodule"])


if __name__ == "__main__":
    unittest.main()
