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
"""Tests for the synthetic chest X-ray generator: determinism, anatomy variation, findings and their ground truth."""

from __future__ import annotations

import re
import time
import unittest

import numpy as np
from parameterized import parameterized
from scipy import ndimage

import monai_afloc.apps.synthetic as synthetic
from monai_afloc.apps.synthetic import SYNTHETIC_FINDINGS, SYNTHETIC_LOCATION_WORDS, SyntheticCXRGenerator

# words that name each finding in our reports; a sentence naming one is about that finding
KEYWORDS = {
    "Consolidation": ("consolidation", "airspace", "opacit"),
    "Nodule": ("nodul",),
    "Pleural Effusion": ("effusion", "pleural fluid"),
    "Pneumothorax": ("pneumothora",),
    "Cardiomegaly": ("cardiomegaly", "enlarge"),
    "Atelectasis": ("atelecta",),
    "Edema": ("edema", "haziness", "congestion"),
}
NEGATION = re.compile(r"\b(no|not|without|normal)\b")
N_CASES = 120  # at 96 px: every finding appears several times (checked below), a few seconds in all


def _cases(gen: SyntheticCXRGenerator, n: int, start: int = 0) -> list[dict]:
    return [gen.generate_case(i) for i in range(start, start + n)]


class TestSyntheticGenerator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gen = SyntheticCXRGenerator(image_size=96, seed=11)
        cls.cases = _cases(cls.gen, N_CASES)

    def test_public_names(self):
        for name in synthetic.__all__:
            self.assertTrue(hasattr(synthetic, name), name)
        self.assertEqual(len(SYNTHETIC_FINDINGS), 7)

    @parameterized.expand([[256, (256, 256)], [(80, 112), (80, 112)], [(112, 80), (112, 80)], [64, (64, 64)]])
    def test_shape_dtype_keys(self, size, shape):
        case = SyntheticCXRGenerator(image_size=size, seed=0).generate_case(2)
        self.assertEqual(case["image"].shape, shape)
        self.assertEqual(case["image"].dtype, np.uint8)
        self.assertIsInstance(case["report"], str)
        self.assertEqual(set(case["labels"]), set(SYNTHETIC_FINDINGS))
        self.assertIn(case["view"], ("PA", "AP"))
        for f in case["findings"]:
            self.assertEqual(f["mask"].shape, shape)
            self.assertEqual(f["mask"].dtype, bool)
            for key in ("name", "box", "boxes", "phrase", "phrase_location_free", "laterality", "zone"):
                self.assertIn(key, f)

    def test_deterministic_per_seed_and_index(self):
        a = SyntheticCXRGenerator(image_size=96, seed=5)
        b = SyntheticCXRGenerator(image_size=96, seed=5)
        b.generate_case(9)  # drawing another case first must not matter
        ca, cb = a.generate_case(3), b.generate_case(3)
        np.testing.assert_array_equal(ca["image"], cb["image"])
        self.assertEqual(ca["report"], cb["report"])
        self.assertEqual(len(ca["findings"]), len(cb["findings"]))
        for fa, fb in zip(ca["findings"], cb["findings"]):
            np.testing.assert_array_equal(fa["mask"], fb["mask"])
            self.assertEqual(fa["box"], fb["box"])
        self.assertFalse(np.array_equal(ca["image"], a.generate_case(4)["image"]))
        other_seed = SyntheticCXRGenerator(image_size=96, seed=6).generate_case(3)
        self.assertFalse(np.array_equal(ca["image"], other_seed["image"]))

    def test_content_does_not_depend_on_image_size(self):
        small, large = SyntheticCXRGenerator(image_size=96, seed=2), SyntheticCXRGenerator(image_size=192, seed=2)
        for i in range(6):
            cs, cl = small.generate_case(i), large.generate_case(i)
            self.assertEqual(cs["view"], cl["view"])
            self.assertEqual(cs["anatomy"]["cardiothoracic_ratio"], cl["anatomy"]["cardiothoracic_ratio"])
            self.assertAlmostEqual(cs["pixel_spacing"][0], 2 * cl["pixel_spacing"][0], delta=1e-3)

    def test_anatomy_varies(self):
        rel = {}
        boxes = [c["anatomy"]["lung_boxes"] for c in self.cases[:50]]
        lb = np.array([[*b["right"], *b["left"]] for b in boxes])
        heart = np.array([c["anatomy"]["heart_box"] for c in self.cases[:50]], dtype=float)
        rel["right lung width"] = lb[:, 2]
        rel["left lung height"] = lb[:, 7]
        rel["lung top"] = np.minimum(lb[:, 1], lb[:, 5]) + 20.0  # offset: the top may be near 0
        rel["heart width"] = heart[:, 2]
        rel["heart centre x"] = heart[:, 0] + heart[:, 2] / 2
        rel["ctr"] = np.array([c["anatomy"]["cardiothoracic_ratio"] for c in self.cases[:50]])
        for name, values in rel.items():
            values = np.asarray(values, dtype=float)
            spread = (values.max() - values.min()) / np.median(values)
            self.assertGreater(spread, 0.1, f"{name} varies by only {spread:.3f}")
            self.assertGreater(values.std() / values.mean(), 0.03, name)
        self.assertGreater(np.ptp([c["anatomy"]["rotation_deg"] for c in self.cases[:50]]), 4.0)
        self.assertGreater(np.ptp([c["anatomy"]["zoom"] for c in self.cases[:50]]), 0.15)

    def test_every_finding_appears_with_valid_ground_truth(self):
        seen = {n: 0 for n in SYNTHETIC_FINDINGS}
        for case in self.cases:
            h, w = case["image"].shape
            an = case["anatomy"]
            # radiological convention: the patient's right lung lies on the image's left
            self.assertLess(an["lung_boxes"]["right"][0], an["lung_boxes"]["left"][0])
            for f in case["findings"]:
                seen[f["name"]] += 1
                mask = f["mask"]
                self.assertTrue(mask.any())
                self.assertEqual(int(mask.sum()), f["area"])
                self.assertFalse((mask & ~an["body_mask"]).any(), f"{f['name']} outside the body")
                if f["name"] != "Cardiomegaly":
                    self.assertFalse((mask & ~an["lung_mask"]).any(), f"{f['name']} outside the lungs")
                x, y, bw, bh = f["box"]
                self.assertTrue(0 <= x and 0 <= y and bw > 0 and bh > 0 and x + bw <= w and y + bh <= h, f["box"])
                inside = np.zeros_like(mask)
                inside[y : y + bh, x : x + bw] = True
                self.assertGreaterEqual((mask & inside).sum() / mask.sum(), 0.99)
                covered = np.zeros_like(mask)
                for bx, by, bbw, bbh in f["boxes"]:
                    covered[by : by + bbh, bx : bx + bbw] = True
                self.assertFalse((mask & ~covered).any())
                self.assertEqual(len(f["boxes"]), 2 if f["laterality"] == "bilateral" else 1)
                # the finding lies in the lung it is said to be in
                if f["laterality"] in ("left", "right") and f["name"] != "Cardiomegaly":
                    xs = np.nonzero(mask)[1].mean()
                    centres = {s: b[0] + b[2] / 2 for s, b in an["lung_boxes"].items()}
                    nearest = min(centres, key=lambda s: abs(centres[s] - xs))
                    self.assertEqual(nearest, f["laterality"], f["name"])
                if f["name"] == "Cardiomegaly":
                    self.assertGreater(an["cardiothoracic_ratio"], 0.5)
            if case["labels"]["Cardiomegaly"] == 0:
                self.assertLess(an["cardiothoracic_ratio"], 0.5)
        for name, count in seen.items():
            self.assertGreaterEqual(count, 5, f"{name} appears {count} times in {N_CASES} cases")

    def test_zones_follow_height(self):
        ys = {"upper": [], "middle": [], "lower": []}
        for case in self.cases:
            for f in case["findings"]:
                if f["name"] in ("Consolidation", "Nodule", "Atelectasis"):
                    lung = case["anatomy"]["lung_boxes"][f["laterality"]]
                    cy = np.nonzero(f["mask"])[0].mean()
                    ys[f["zone"]].append((cy - lung[1]) / lung[3])
        means = {z: float(np.mean(v)) for z, v in ys.items() if v}
        self.assertEqual(len(means), 3, means)
        self.assertLess(means["upper"], means["middle"])
        self.assertLess(means["middle"], means["lower"])

    def test_opacities_are_brighter_than_their_surroundings(self):
        # the ground truth points at something visible: an opacity is brighter than the lung around it
        wins = {n: [] for n in ("Nodule", "Consolidation", "Pleural Effusion", "Atelectasis")}
        for case in self.cases:
            img = case["image"].astype(float)
            others = np.zeros(img.shape, dtype=bool)
            for f in case["findings"]:
                others |= f["mask"]
            for f in case["findings"]:
                if f["name"] not in wins:
                    continue
                ring = ndimage.binary_dilation(f["mask"], iterations=3) & ~others & case["anatomy"]["lung_mask"]
                if ring.sum() >= 5:
                    wins[f["name"]].append(img[f["mask"]].mean() > img[ring].mean())
        for name, w in wins.items():
            self.assertGreaterEqual(len(w), 3, name)
            self.assertGreaterEqual(np.mean(w), 0.8, f"{name}: brighter than surroundings in {np.mean(w):.2f}")

    def test_normal_cases_and_counts(self):
        n_findings = [len(c["findings"]) for c in self.cases]
        self.assertLessEqual(max(n_findings), 3)
        normal = sum(n == 0 for n in n_findings)
        self.assertGreater(normal, 0.08 * N_CASES)
        self.assertLess(normal, 0.45 * N_CASES)
        for case in self.cases:
            self.assertEqual({f["name"] for f in case["findings"]}, {n for n, v in case["labels"].items() if v})

    def test_report_mentions_present_and_never_asserts_absent(self):
        phrases = {n: set() for n in SYNTHETIC_FINDINGS}
        for case in self.cases:
            report = case["report"].lower()
            self.assertTrue(report.startswith("findings:"))
            self.assertIn("impression:", report)
            present = {f["name"] for f in case["findings"]}
            for f in case["findings"]:
                phrases[f["name"]].add(f["phrase"])
                self.assertIn(f["phrase"].lower(), report)
                self.assertIn(f["phrase_location_free"], f["phrase"])
                for word in SYNTHETIC_LOCATION_WORDS:
                    self.assertIsNone(re.search(rf"\b{word}\b", f["phrase_location_free"]), f["phrase_location_free"])
                if f["laterality"] in ("left", "right", "bilateral"):
                    self.assertRegex(f["phrase"], rf"\b{f['laterality']}")
                    other = {"left": "right", "right": "left"}.get(f["laterality"])
                    if other:
                        self.assertNotRegex(f["phrase"], rf"\b{other}\b")
            body = report.replace("findings:", " ").replace("impression:", " ")
            for sentence in re.split(r"(?<=\.)\s+|\s+\d+\.\s+", body):
                named = {n for n, kws in KEYWORDS.items() if any(k in sentence for k in kws)}
                if NEGATION.search(sentence):
                    self.assertFalse(named & present, f"negates a present finding: {sentence!r}")
                else:
                    self.assertFalse(named - present, f"asserts an absent finding: {sentence!r}")
        for name, texts in phrases.items():
            self.assertGreaterEqual(len(texts), 3, f"{name}: {texts}")

    def test_options(self):
        gen = SyntheticCXRGenerator(image_size=64, seed=1, finding_probs={"Nodule": 1.0}, normal_fraction=0.0)
        for case in _cases(gen, 8):
            self.assertEqual({f["name"] for f in case["findings"]}, {"Nodule"})
        gen = SyntheticCXRGenerator(image_size=64, seed=1, normal_fraction=1.0)
        self.assertTrue(all(not c["findings"] for c in _cases(gen, 6)))
        gen = SyntheticCXRGenerator(image_size=64, seed=1, max_findings=1, normal_fraction=0.0)
        self.assertTrue(all(len(c["findings"]) <= 1 for c in _cases(gen, 10)))

    def test_speed(self):
        gen = SyntheticCXRGenerator(image_size=256, seed=0)
        gen.generate_case(0)
        start = time.perf_counter()
        for i in range(10):
            gen.generate_case(i)
        rate = 10 / (time.perf_counter() - start)
        # the target is >= 50 images/s on an idle core; shared test machines are slower, so assert a floor
        self.assertGreater(rate, 8.0, f"{rate:.1f} images/s")

    @parameterized.expand(
        [
            [{"image_size": 32}, ValueError],
            [{"image_size": 256.0}, TypeError],
            [{"image_size": (64, 64, 1)}, TypeError],
            [{"image_size": "256"}, TypeError],
            [{"seed": -1}, ValueError],
            [{"seed": 1.5}, TypeError],
            [{"max_findings": 0}, ValueError],
            [{"max_findings": 8}, ValueError],
            [{"normal_fraction": 1.5}, ValueError],
            [{"normal_fraction": "0.2"}, TypeError],
            [{"finding_probs": {"Pneumonia": 1.0}}, ValueError],
            [{"finding_probs": {"Nodule": -1.0}}, ValueError],
            [{"finding_probs": {"Nodule": float("nan")}}, ValueError],
            [{"finding_probs": {"Nodule": 0.0}}, ValueError],
            [{"finding_probs": [1.0] * 7}, TypeError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            SyntheticCXRGenerator(**kwargs)

    def test_ill_index(self):
        gen = SyntheticCXRGenerator(image_size=64)
        with self.assertRaises(ValueError):
            gen.generate_case(-1)
        with self.assertRaises(TypeError):
            gen.generate_case(1.0)
        with self.assertRaises(TypeError):
            gen.generate_case(True)


if __name__ == "__main__":
    unittest.main()
