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
"""Tests for the out-of-distribution chest phantoms: generator, COCO writer, evaluation and the benchmark script."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import unittest
from collections import Counter

import numpy as np
from parameterized import parameterized

from monai_afloc.apps.evaluation import read_synthetic_annotations
from monai_afloc.apps.phantoms import (
    PHANTOM_JSON,
    PHANTOM_PROMPTS,
    ChestPhantomGenerator,
    evaluate_phantoms,
    format_phantom_table,
    write_phantom_split,
)
from tests.helpers import load_benchmark, write_sized_checkpoint

N_CASES = 60  # cases drawn once for the whole module (about 40 ms each at 256 px)
_CASES: list[dict] = []


def cases() -> list[dict]:
    if not _CASES:
        gen = ChestPhantomGenerator(image_size=256, seed=0)
        _CASES.extend(gen.generate(i) for i in range(N_CASES))
    return _CASES


class TestChestPhantomGenerator(unittest.TestCase):
    def test_image(self):
        for case in cases()[:5]:
            image = case["image"]
            self.assertEqual(image.shape, (256, 256))
            self.assertEqual(image.dtype, np.uint8)
            # MONOCHROME2: the corners (air beside the patient) darker than the centre (mediastinum)
            corners = np.mean([image[:8, :8].mean(), image[:8, -8:].mean()])
            self.assertLess(corners, image[120:136, 120:136].mean())
            self.assertGreater(int(image.max()) - int(image.min()), 150)

    def test_deterministic_per_seed_and_index(self):
        a, b = ChestPhantomGenerator(128, seed=3), ChestPhantomGenerator(128, seed=3)
        for index in (0, 7, 12345):
            x, y = a.generate(index), b.generate(index)
            np.testing.assert_array_equal(x["image"], y["image"])
            self.assertEqual(x["anatomy"], y["anatomy"])
            self.assertEqual([f["label_text"] for f in x["findings"]], [f["label_text"] for f in y["findings"]])
            for fx, fy in zip(x["findings"], y["findings"]):
                np.testing.assert_array_equal(fx["mask"], fy["mask"])
        first = a.generate(4)["image"]
        a.generate(5)  # no state carried between calls
        np.testing.assert_array_equal(a.generate(4)["image"], first)
        self.assertFalse(np.array_equal(a.generate(4)["image"], a.generate(5)["image"]))
        self.assertFalse(np.array_equal(first, ChestPhantomGenerator(128, seed=4).generate(4)["image"]))

    def test_findings_masks_and_boxes(self):
        for case in cases():
            self.assertLessEqual(len(case["findings"]), 2)
            names = [f["name"] for f in case["findings"]]
            self.assertEqual(len(names), len(set(names)))
            for f in case["findings"]:
                self.assertIn(f["name"], PHANTOM_PROMPTS)
                mask = f["mask"]
                self.assertEqual(mask.dtype, bool)
                self.assertEqual(mask.shape, case["image"].shape)
                self.assertTrue(mask.any(), f"{case['index']}: {f['name']} has an empty mask")
                x, y, w, h = f["box"]
                rows, cols = np.nonzero(mask)
                self.assertEqual((x, y, x + w - 1, y + h - 1), (cols.min(), rows.min(), cols.max(), rows.max()))
                self.assertTrue(0 <= x and 0 <= y and x + w <= 256 and y + h <= 256)
                union = np.zeros_like(mask)
                for bx, by, bw, bh in f["boxes"]:
                    union[by : by + bh, bx : bx + bw] = True
                self.assertFalse((mask & ~union).any(), "every mask pixel lies in one of the boxes")

    def test_laterality_is_the_patients(self):
        checked = Counter()
        for case in cases():
            for f in case["findings"]:
                cols = np.nonzero(f["mask"])[1]
                image_right = float(np.mean(cols >= 128))
                if f["laterality"] == "left":  # the patient's left lies on the image's right
                    self.assertGreater(image_right, 0.9, f"{case['index']}: {f['label_text']}")
                elif f["laterality"] == "right":
                    self.assertLess(image_right, 0.1, f"{case['index']}: {f['label_text']}")
                elif f["laterality"] == "bilateral":
                    self.assertEqual(len(f["boxes"]), 2)
                    self.assertTrue(0.2 < image_right < 0.8)
                else:
                    self.assertEqual(f["name"], "cardiomegaly")
                    self.assertGreater(image_right, 0.5)  # the heart extends to the patient's left
                if f["laterality"] in ("left", "right"):
                    self.assertTrue(f["label_text"].startswith(f["laterality"]))
                checked[(f["name"], f["laterality"])] += 1
        self.assertGreater(checked[("pleural effusion", "left")], 0)
        self.assertGreater(checked[("pneumothorax", "right")], 0)

    def test_every_prompt_appears(self):
        counts = Counter(f["name"] for case in cases() for f in case["findings"])
        for prompt in PHANTOM_PROMPTS:
            self.assertGreaterEqual(counts[prompt], 3, f"{prompt}: {counts}")
        per_case = Counter(len(case["findings"]) for case in cases())
        self.assertEqual(set(per_case), {0, 1, 2})

    def test_cardiomegaly_enlarges_the_heart(self):
        ratios = {True: [], False: []}
        for case in cases():
            ratios[any(f["name"] == "cardiomegaly" for f in case["findings"])].append(
                case["anatomy"]["cardiothoracic_ratio"]
            )
        self.assertGreater(min(ratios[True]), 0.55)
        self.assertLess(max(ratios[False]), 0.5)

    def test_options(self):
        gen = ChestPhantomGenerator(image_size=96, seed=1, normal_fraction=0.0, max_findings=1, prompts=["nodule"])
        for i in range(6):
            findings = gen.generate(i)["findings"]
            self.assertEqual([f["name"] for f in findings], ["nodule"])
            self.assertRegex(findings[0]["label_text"], r"^(left|right) (upper|middle|lower) zone nodule$")
        self.assertEqual(ChestPhantomGenerator(96, max_findings=0).generate(0)["findings"], [])
        self.assertIn("seed=1", repr(gen))

    @parameterized.expand(
        [
            [{"image_size": 32}, ValueError],
            [{"image_size": 256.0}, TypeError],
            [{"seed": -1}, ValueError],
            [{"max_findings": 3}, ValueError],
            [{"normal_fraction": 1.5}, ValueError],
            [{"normal_fraction": "0.1"}, TypeError],
            [{"prompts": ["edema"]}, ValueError],
            [{"prompts": []}, ValueError],
            [{"prompts": "nodule"}, TypeError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            ChestPhantomGenerator(**kwargs)

    def test_ill_index(self):
        gen = ChestPhantomGenerator(96)
        with self.assertRaises(ValueError):
            gen.generate(-1)
        with self.assertRaises(TypeError):
            gen.generate(1.0)


class TestWritePhantomSplit(unittest.TestCase):
    def test_json_read_by_evaluation(self):
        gen = ChestPhantomGenerator(image_size=128, seed=2, normal_fraction=0.0)
        with tempfile.TemporaryDirectory() as d:
            path = write_phantom_split(d, 12, gen, start_index=5)
            self.assertEqual(path, os.path.join(d, PHANTOM_JSON))
            with open(path, encoding="utf-8") as f:
                coco = json.load(f)
            self.assertEqual(len(coco["images"]), 12)
            self.assertEqual([c["name"] for c in coco["categories"]], list(PHANTOM_PROMPTS))
            self.assertEqual(coco["images"][0]["case_index"], 5)
            items = read_synthetic_annotations(path)
            expected = [(k + 1, f) for k in range(12) for f in gen.generate(5 + k)["findings"]]
            self.assertEqual(len(items), len(expected))
            by_key = {(it["image_id"], it["category"]): it for it in items}
            for image_id, f in expected:
                item = by_key[(image_id, f["name"])]
                self.assertTrue(os.path.isfile(item["image"]))
                self.assertEqual(item["prompt_location_free"], f["name"])
                self.assertEqual(item["prompt"], f["label_text"])
                np.testing.assert_array_equal(item["mask"], f["mask"])
                self.assertEqual(item["boxes"], f["boxes"])
                self.assertEqual((item["width"], item["height"]), (128, 128))

    def test_ill_arg(self):
        gen = ChestPhantomGenerator(96)
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(ValueError):
                write_phantom_split(d, 0, gen)
            with self.assertRaises(TypeError):
                write_phantom_split(d, 2, object())
            with self.assertRaises(TypeError):
                write_phantom_split(3, 2, gen)
            with self.assertRaises(ValueError):
                write_phantom_split(d, 2, gen, start_index=-1)


class TestEvaluatePhantoms(unittest.TestCase):
    """End to end on a tiny random checkpoint (ResNet-10 at 96 px + a tiny BERT)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ckpt, _, _ = write_sized_checkpoint(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_evaluate_and_table(self):
        out = os.path.join(self.tmp.name, "ood")
        res = evaluate_phantoms(self.ckpt, out, n=6, seed=1, image_size=128, n_bootstrap=10)
        self.assertTrue(os.path.isfile(os.path.join(out, PHANTOM_JSON)))
        self.assertEqual(res["n_images"], 6)
        self.assertEqual(res["frame_size"], 96)
        self.assertGreaterEqual(res["n_items"], 6)
        for run in ("afloc", "shuffled"):
            summary = res[run]
            self.assertEqual(set(summary["overall"]), {"pointing_game", "iou", "dice", "cnr"})
            self.assertTrue(0.0 <= summary["overall"]["pointing_game"] <= 1.0)
            self.assertEqual(sum(r["n"] for r in summary["per_prompt"].values()), res["n_items"])
            self.assertTrue(set(summary["per_prompt"]) <= set(PHANTOM_PROMPTS))
            self.assertIn("overall", summary["location_bearing"])
        table = format_phantom_table(res)
        self.assertIn("| **overall** | ", table)
        self.assertEqual(len(table.splitlines()), 3 + len(res["afloc"]["per_prompt"]))
        with self.assertRaises(ValueError):
            format_phantom_table({"afloc": {}})

    def test_benchmark_script(self):
        script = load_benchmark("ood_phantoms")
        self.assertEqual(script.compare(0.45, 0.5), (0.9, True))
        self.assertFalse(script.compare(0.35, 0.5)[1])
        out = os.path.join(self.tmp.name, "bench")
        metrics = os.path.join(self.tmp.name, "metrics.json")
        with open(metrics, "w", encoding="utf-8") as f:
            json.dump({"afloc": {"mean": {"pointing_game": 0.5}}}, f)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            res = script.main(["--checkpoint", self.ckpt, "--n", "4", "--out", out, "--image-size", "96",
                               "--in-distribution", metrics])
        text = buf.getvalue()
        self.assertIn("| prompt | n | pointing game |", text)
        self.assertRegex(text, r"OOD [0-9.]+ / in-distribution 0\.500 = [0-9.]+; drop within 20%: (PASS|FAIL)")
        self.assertAlmostEqual(res["in_distribution"]["ratio"], res["afloc"]["overall"]["pointing_game"] / 0.5)
        with open(os.path.join(out, "ood_metrics.json"), encoding="utf-8") as f:
            self.assertIn("in_distribution", json.load(f))
        with open(metrics, "w", encoding="utf-8") as f:
            json.dump({"prior": {}}, f)
        with self.assertRaises(ValueError):
            script.in_distribution_pointing_game(metrics)

    def test_ill_arg(self):
        with self.assertRaises(FileNotFoundError):
            evaluate_phantoms(os.path.join(self.tmp.name, "missing"), self.tmp.name)
        with self.assertRaises(ValueError):
            evaluate_phantoms(self.ckpt, self.tmp.name, n=1)
        with self.assertRaises(TypeError):
            evaluate_phantoms(None, self.tmp.name)


if __name__ == "__main__":
    unittest.main()
