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
import math
import unittest

import numpy as np
import torch
from parameterized import parameterized
from scipy.stats import rankdata

from monai_afloc.metrics import ZeroShotMetric, compute_zero_shot_metrics


def ref_auroc(s, y):
    """Mann-Whitney U with mid-ranks for ties."""
    ranks = rankdata(s)
    n_pos, n_neg = y.sum(), (1 - y).sum()
    return (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def ref_best_f1(s, y):
    """Loop over every distinct score as a threshold (positive when score >= threshold); ties -> highest."""
    best, best_t = -1.0, None
    for t in sorted(set(s.tolist()), reverse=True):
        pred = s >= t
        tp = np.sum(pred & (y == 1))
        f1 = 2 * tp / (pred.sum() + y.sum())
        if f1 > best:
            best, best_t = f1, t
    return best, best_t


def make_scores(n=60, f=4, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, f)) < 0.35).astype(np.int64)
    s = rng.normal(size=(n, f)) + 1.2 * y
    if ties:
        s = np.round(s, 1)
    return s, y


class TestZeroShotParity(unittest.TestCase):
    @parameterized.expand([("continuous", False), ("ties", True)])
    def test_matches_reference(self, _, ties):
        s, y = make_scores(ties=ties, seed=1 if ties else 0)
        names = ["Atelectasis", "Edema", "Effusion", "Pneumonia"]
        out = compute_zero_shot_metrics(s, y, names)
        for j, name in enumerate(names):
            rec = out["per_finding"][name]
            self.assertAlmostEqual(rec["auroc"], ref_auroc(s[:, j], y[:, j]), places=12)
            f1, t = ref_best_f1(s[:, j], y[:, j])
            self.assertAlmostEqual(rec["f1"], f1, places=12)
            self.assertEqual(rec["threshold"], t)
            self.assertEqual((rec["n_pos"], rec["n_neg"]), (int(y[:, j].sum()), int((1 - y[:, j]).sum())))
        self.assertAlmostEqual(
            out["mean"]["auroc"], np.mean([ref_auroc(s[:, j], y[:, j]) for j in range(4)]), places=12
        )
        self.assertAlmostEqual(
            out["mean"]["f1"], np.mean([ref_best_f1(s[:, j], y[:, j])[0] for j in range(4)]), places=12
        )
        self.assertEqual(out["n_findings"], 4)
        json.dumps(out)

    def test_torch_inputs(self):
        s, y = make_scores(seed=2)
        a = compute_zero_shot_metrics(s, y, list("abcd"))
        b = compute_zero_shot_metrics(torch.from_numpy(s), torch.from_numpy(y).bool(), list("abcd"))
        self.assertEqual(a, b)

    def test_one_class_finding_is_nan_and_skipped(self):
        s, y = make_scores(seed=3)
        y[:, 1] = 0  # no positives
        y[:, 2] = 1  # no negatives
        out = compute_zero_shot_metrics(s, y, ["a", "b", "c", "d"])
        for name, n_pos in (("b", 0), ("c", 60)):
            rec = out["per_finding"][name]
            self.assertTrue(math.isnan(rec["auroc"]) and math.isnan(rec["f1"]))
            self.assertEqual((rec["n_pos"], rec["n_neg"]), (n_pos, 60 - n_pos))
        kept = [out["per_finding"][k]["auroc"] for k in ("a", "d")]
        self.assertAlmostEqual(out["mean"]["auroc"], float(np.mean(kept)))
        self.assertEqual(out["n_findings"], 2)
        none = compute_zero_shot_metrics(s[:, :1], np.zeros((60, 1)), ["a"])
        self.assertTrue(math.isnan(none["mean"]["auroc"]) and none["n_findings"] == 0)

    def test_perfect_and_inverted(self):
        s = np.array([[0.9], [0.8], [0.2], [0.1]])
        y = np.array([[1], [1], [0], [0]])
        self.assertEqual(compute_zero_shot_metrics(s, y, ["x"])["per_finding"]["x"]["auroc"], 1.0)
        inverted = compute_zero_shot_metrics(-s, y, ["x"])["per_finding"]["x"]
        self.assertEqual(inverted["auroc"], 0.0)
        self.assertAlmostEqual(inverted["f1"], 2 / 3)  # best: predict everything positive
        self.assertEqual(inverted["threshold"], -0.9)


class TestZeroShotMetric(unittest.TestCase):
    def test_accumulates(self):
        s, y = make_scores(seed=4)
        metric = ZeroShotMetric(["a", "b", "c", "d"])
        metric(torch.from_numpy(s[:25]), torch.from_numpy(y[:25]))
        metric(torch.from_numpy(s[25:]), torch.from_numpy(y[25:]))
        self.assertEqual(metric.aggregate(), compute_zero_shot_metrics(s, y, ["a", "b", "c", "d"]))
        metric.reset()
        with self.assertRaises(ValueError):
            metric.aggregate()

    @parameterized.expand(
        [
            ("names_str", lambda: ZeroShotMetric("abc"), TypeError),
            ("names_empty", lambda: ZeroShotMetric([]), ValueError),
            ("names_dup", lambda: ZeroShotMetric(["a", "a"]), ValueError),
            ("names_type", lambda: ZeroShotMetric([1, 2]), TypeError),
        ]
    )
    def test_ill_arg(self, _, make, error):
        with self.assertRaises(error):
            make()

    @parameterized.expand(
        [
            ("columns", lambda m: m(torch.rand(3, 3), torch.ones(3, 3)), ValueError),
            ("no_labels", lambda m: m(torch.rand(3, 2)), ValueError),
            ("label_shape", lambda m: m(torch.rand(3, 2), torch.ones(2, 2)), ValueError),
            ("label_values", lambda m: m(torch.rand(3, 2), torch.full((3, 2), 0.5)), ValueError),
        ]
    )
    def test_ill_call(self, _, call, error):
        with self.assertRaises(error):
            call(ZeroShotMetric(["a", "b"]))


BAD = [
    ("list_scores", lambda: compute_zero_shot_metrics([[0.1]], np.ones((1, 1)), ["a"]), TypeError),
    ("1d", lambda: compute_zero_shot_metrics(np.zeros(3), np.ones(3), ["a"]), ValueError),
    ("empty", lambda: compute_zero_shot_metrics(np.zeros((0, 1)), np.zeros((0, 1)), ["a"]), ValueError),
    ("shape", lambda: compute_zero_shot_metrics(np.zeros((3, 2)), np.ones((3, 1)), ["a", "b"]), ValueError),
    ("nan_score", lambda: compute_zero_shot_metrics(np.full((2, 1), np.nan), np.array([[0], [1]]), ["a"]), ValueError),
    ("uncertain_label", lambda: compute_zero_shot_metrics(np.zeros((2, 1)), np.array([[-1], [1]]), ["a"]), ValueError),
    ("names_count", lambda: compute_zero_shot_metrics(np.zeros((2, 2)), np.ones((2, 2)), ["a"]), ValueError),
    ("names_str", lambda: compute_zero_shot_metrics(np.zeros((2, 1)), np.ones((2, 1)), "a"), TypeError),
    ("bool_scores", lambda: compute_zero_shot_metrics(np.ones((2, 1), bool), np.ones((2, 1)), ["a"]), TypeError),
]


class TestZeroShotBadArgs(unittest.TestCase):
    @parameterized.expand(BAD)
    def test_ill_arg(self, _, call, error):
        with self.assertRaises(error):
            call()


if __name__ == "__main__":
    unittest.main()
