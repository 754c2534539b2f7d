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

import math
import unittest

import numpy as np
import torch
from parameterized import parameterized
from scipy.ndimage import gaussian_filter

from monai_afloc.metrics import (
    CNRMetric,
    HeatmapDiceMetric,
    IoUMetric,
    PointingGameMetric,
    compute_cnr,
    compute_dice,
    compute_iou,
    compute_pointing_game,
)

NAN = float("nan")


# ---- a straightforward re-implementation (numpy, one map at a time) -------------------------------------------------
def ref_iou_dice(h, m, t, valid=None):
    ok = ~np.isnan(h) if valid is None else (valid.astype(bool) & ~np.isnan(h))
    pred = h[ok] > t
    truth = m[ok].astype(bool)
    if pred.sum() == 0 or truth.sum() == 0:
        return NAN, NAN
    inter = np.logical_and(pred, truth).sum()
    return inter / np.logical_or(pred, truth).sum(), 2 * inter / (pred.sum() + truth.sum())


def ref_cnr(h, m, valid=None):
    ok = ~np.isnan(h) if valid is None else (valid.astype(bool) & ~np.isnan(h))
    inside, outside = h[ok][m[ok].astype(bool)], h[ok][~m[ok].astype(bool)]
    if inside.size == 0 or outside.size == 0:
        return NAN
    var = np.var(inside) + np.var(outside)
    return 0.0 if var == 0 else (inside.mean() - outside.mean()) / math.sqrt(var)


def ref_pointing_game(h, m, valid=None):
    ok = ~np.isnan(h) if valid is None else (valid.astype(bool) & ~np.isnan(h))
    if m[ok].astype(bool).sum() == 0:
        return NAN
    flat = np.flatnonzero(ok)[np.argmax(h[ok])]  # boolean indexing is row-major; argmax takes the first
    return float(m.flat[flat])


def random_case(rng, size=32, nan_frac=0.0):
    h = gaussian_filter(rng.normal(size=(size, size)), 2.0)
    m = np.zeros((size, size), dtype=bool)
    y0, x0 = rng.integers(0, size - 8, size=2)
    hh, ww = rng.integers(3, 9, size=2)
    m[y0 : y0 + hh, x0 : x0 + ww] = True
    if nan_frac:
        h[rng.random((size, size)) < nan_frac] = np.nan
    return h, m


def assert_same(testcase, a, b, places=10):
    if math.isnan(b):
        testcase.assertTrue(math.isnan(a), f"expected NaN, got {a}")
    else:
        testcase.assertAlmostEqual(a, b, places=places)


class TestFunctionalParity(unittest.TestCase):
    def test_random_maps_match_reference(self):
        rng = np.random.default_rng(0)
        for i in range(25):
            h, m = random_case(rng, nan_frac=0.1 if i % 2 else 0.0)
            valid = rng.random(h.shape) > 0.2 if i % 3 == 0 else None
            for t in (-0.2, 0.0, 0.05, 0.2):
                iou, dice = ref_iou_dice(h, m, t, valid)
                assert_same(self, compute_iou(h, m, t, valid=valid), iou)
                assert_same(self, compute_dice(h, m, t, valid=valid), dice)
            assert_same(self, compute_cnr(h, m, valid=valid), ref_cnr(h, m, valid))
            assert_same(self, compute_pointing_game(h, m, valid=valid), ref_pointing_game(h, m, valid))

    def test_torch_and_numpy_agree(self):
        rng = np.random.default_rng(1)
        h, m = random_case(rng)
        ht, mt = torch.from_numpy(h).float(), torch.from_numpy(m)
        self.assertAlmostEqual(compute_iou(ht, mt, 0.1), compute_iou(h.astype(np.float32), m, 0.1), places=12)
        self.assertAlmostEqual(
            compute_cnr(ht, mt.int()), compute_cnr(h.astype(np.float32), m.astype(np.uint8)), places=12
        )
        self.assertEqual(compute_pointing_game(ht, mt), compute_pointing_game(h, m))

    def test_returns_python_floats(self):
        h, m = random_case(np.random.default_rng(2))
        for value in (compute_iou(h, m, 0.0), compute_dice(h, m, 0.0), compute_cnr(h, m), compute_pointing_game(h, m)):
            self.assertIsInstance(value, float)


class TestFunctionalEdgeCases(unittest.TestCase):
    def test_hand_example(self):
        h = np.array([[0.9, 0.8], [0.1, 0.0]])
        m = np.array([[1, 0], [0, 0]])
        self.assertAlmostEqual(compute_iou(h, m, 0.5), 0.5)
        self.assertAlmostEqual(compute_dice(h, m, 0.5), 2 / 3)
        # inside {0.9}: var 0; outside {0.8, 0.1, 0.0}: mean 0.3, population var (0.25 + 0.04 + 0.09) / 3
        self.assertAlmostEqual(compute_cnr(h, m), (0.9 - 0.3) / math.sqrt(0.38 / 3))
        self.assertEqual(compute_pointing_game(h, m), 1.0)

    def test_threshold_is_strict(self):
        h = np.array([[0.5, 0.2]])
        m = np.array([[True, False]])
        self.assertTrue(math.isnan(compute_iou(h, m, 0.5)))  # 0.5 > 0.5 is False: empty prediction
        self.assertEqual(compute_iou(h, m, 0.49), 1.0)

    def test_empty_truth_and_empty_prediction(self):
        h = np.arange(16.0).reshape(4, 4)
        empty = np.zeros((4, 4), dtype=bool)
        full = np.ones((4, 4), dtype=bool)
        for value in (compute_iou(h, empty, 3.0), compute_dice(h, empty, 3.0), compute_cnr(h, empty)):
            self.assertTrue(math.isnan(value))
        self.assertTrue(math.isnan(compute_pointing_game(h, empty)))
        some = empty.copy()
        some[0, 0] = True
        self.assertTrue(math.isnan(compute_iou(h, some, 100.0)))  # nothing predicted
        self.assertTrue(math.isnan(compute_dice(h, some, 100.0)))
        self.assertTrue(math.isnan(compute_cnr(h, full)))  # empty outside

    def test_prediction_without_overlap_is_zero(self):
        h = np.array([[1.0, 0.0], [0.0, 0.0]])
        m = np.array([[0, 0], [0, 1]])
        self.assertEqual(compute_iou(h, m, 0.5), 0.0)
        self.assertEqual(compute_dice(h, m, 0.5), 0.0)
        self.assertEqual(compute_pointing_game(h, m), 0.0)

    def test_constant_maps(self):
        m = np.zeros((5, 5), dtype=bool)
        m[1:3, 1:3] = True
        const = np.full((5, 5), 0.1)  # 0.1 is not exact in binary: the variance must still be exactly 0
        self.assertEqual(compute_cnr(const, m), 0.0)
        two_levels = np.where(m, 0.7, 0.1)  # both variances 0, means differ: defined as 0
        self.assertEqual(compute_cnr(two_levels, m), 0.0)
        self.assertTrue(math.isnan(compute_iou(const, m, 0.1)))
        self.assertEqual(compute_iou(const, m, 0.0), 4 / 25)
        # a constant map points at its first pixel (row-major): outside the truth here
        self.assertEqual(compute_pointing_game(const, m), 0.0)

    def test_negative_cnr_keeps_sign(self):
        m = np.zeros((4, 4), dtype=bool)
        m[:2] = True
        h = np.where(m, 0.0, 1.0) + np.arange(16).reshape(4, 4) * 0.01
        self.assertLess(compute_cnr(h, m), 0.0)
        self.assertAlmostEqual(compute_cnr(-h, m), -compute_cnr(h, m))

    def test_pointing_game_ties_take_first_row_major(self):
        h = np.zeros((3, 3))
        h[0, 2] = h[2, 0] = 1.0  # tied maxima; (0, 2) comes first in row-major order
        m_first = np.zeros((3, 3), dtype=bool)
        m_first[0, 2] = True
        m_second = np.zeros((3, 3), dtype=bool)
        m_second[2, 0] = True
        self.assertEqual(compute_pointing_game(h, m_first), 1.0)
        self.assertEqual(compute_pointing_game(h, m_second), 0.0)
        h[0, 2] = np.nan  # the first maximum is now invalid: the second one decides
        self.assertEqual(compute_pointing_game(h, m_second), 1.0)

    def test_nan_pixels_equal_invalid_pixels(self):
        rng = np.random.default_rng(3)
        h, m = random_case(rng)
        invalid = rng.random(h.shape) < 0.3
        h_nan = h.copy()
        h_nan[invalid] = np.nan
        self.assertEqual(compute_iou(h_nan, m, 0.0), compute_iou(h, m, 0.0, valid=~invalid))
        self.assertEqual(compute_dice(h_nan, m, 0.0), compute_dice(h, m, 0.0, valid=~invalid))
        self.assertEqual(compute_cnr(h_nan, m), compute_cnr(h, m, valid=~invalid))
        self.assertEqual(compute_pointing_game(h_nan, m), compute_pointing_game(h, m, valid=~invalid))

    def test_truth_outside_valid_is_ignored(self):
        h = np.array([[0.0, 1.0, 0.2]])
        m = np.array([[True, True, False]])
        valid = np.array([[True, False, True]])  # the max and half the truth are invalid
        self.assertEqual(compute_pointing_game(h, m, valid=valid), 0.0)  # max over valid pixels: 0.2, outside
        self.assertTrue(math.isnan(compute_iou(h, m, 0.5, valid=valid)))
        self.assertTrue(math.isnan(compute_cnr(h, m, valid=np.array([[False, False, True]]))))

    def test_all_nan_map_is_undefined(self):
        h = np.full((3, 3), np.nan)
        m = np.eye(3, dtype=bool)
        for value in (compute_iou(h, m, 0.0), compute_cnr(h, m), compute_pointing_game(h, m)):
            self.assertTrue(math.isnan(value))


BAD_FUNCTIONAL = [
    ("list_heatmap", lambda: compute_iou([[0.1]], np.ones((1, 1)), 0.1), TypeError),
    ("3d_heatmap", lambda: compute_cnr(np.zeros((1, 2, 2)), np.ones((1, 2, 2))), ValueError),
    ("shape_mismatch", lambda: compute_dice(np.zeros((2, 2)), np.ones((2, 3)), 0.1), ValueError),
    ("valid_shape", lambda: compute_cnr(np.zeros((2, 2)), np.ones((2, 2)), valid=np.ones((3, 3))), ValueError),
    ("mask_values", lambda: compute_iou(np.zeros((2, 2)), np.full((2, 2), 2), 0.1), ValueError),
    ("mask_nan", lambda: compute_iou(np.zeros((2, 2)), np.full((2, 2), np.nan), 0.1), ValueError),
    (
        "valid_values",
        lambda: compute_pointing_game(np.zeros((2, 2)), np.ones((2, 2)), valid=np.full((2, 2), 0.5)),
        ValueError,
    ),
    ("inf_heatmap", lambda: compute_cnr(np.array([[np.inf, 0.0]]), np.array([[1, 0]])), ValueError),
    ("empty_map", lambda: compute_pointing_game(np.zeros((0, 3)), np.zeros((0, 3))), ValueError),
    ("cnr_overflow", lambda: compute_cnr(np.array([[1e308, -1e308, 1e308]]), np.array([[1, 0, 0]])), ValueError),
    ("bool_heatmap", lambda: compute_cnr(np.ones((2, 2), bool), np.ones((2, 2))), TypeError),
    ("str_threshold", lambda: compute_iou(np.zeros((2, 2)), np.ones((2, 2)), "0.1"), TypeError),
    ("bool_threshold", lambda: compute_iou(np.zeros((2, 2)), np.ones((2, 2)), True), TypeError),
    ("nan_threshold", lambda: compute_dice(np.zeros((2, 2)), np.ones((2, 2)), float("nan")), ValueError),
    ("string_array", lambda: compute_cnr(np.array([["a"]]), np.ones((1, 1))), TypeError),
]


class TestFunctionalBadArgs(unittest.TestCase):
    @parameterized.expand(BAD_FUNCTIONAL)
    def test_ill_arg(self, _, call, error):
        with self.assertRaises(error):
            call()


class TestMetricClasses(unittest.TestCase):
    def _batches(self, seed=0):
        rng = np.random.default_rng(seed)
        cases = [random_case(rng, size=24, nan_frac=0.05) for _ in range(7)]
        cases.append((cases[0][0], np.zeros((24, 24), dtype=bool)))  # empty truth: NaN everywhere
        h = torch.tensor(np.stack([c[0] for c in cases]))
        m = torch.tensor(np.stack([c[1] for c in cases]))
        return h, m

    @parameterized.expand(
        [
            ("iou", lambda: IoUMetric(threshold=0.05), lambda h, m: compute_iou(h, m, 0.05)),
            ("dice", lambda: HeatmapDiceMetric(threshold=0.05), lambda h, m: compute_dice(h, m, 0.05)),
            ("cnr", CNRMetric, compute_cnr),
            ("pointing_game", PointingGameMetric, compute_pointing_game),
        ]
    )
    def test_accumulates_like_functions(self, _, make, fn):
        h, m = self._batches()
        metric = make()
        out1 = metric(h[:3, None], m[:3, None])  # [B, 1, H, W]
        out2 = metric(h[3:], m[3:].to(torch.uint8))  # [B, H, W], numeric mask
        self.assertEqual(tuple(out1.shape), (3, 1))
        self.assertEqual(tuple(out2.shape), (5, 1))
        expected = np.array([fn(h[i].numpy(), m[i].numpy()) for i in range(len(h))])
        got = torch.cat([out1, out2])[:, 0].numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, equal_nan=True)
        self.assertAlmostEqual(float(metric.aggregate()), float(np.nanmean(expected)), places=12)
        metric.get_not_nans = True
        value, not_nans = metric.aggregate()
        self.assertEqual(int(not_nans), int((~np.isnan(expected)).sum()))
        metric.reset()
        with self.assertRaises(ValueError):
            metric.aggregate()

    def test_valid_kwarg_and_channel_first_list(self):
        h, m = self._batches(1)
        valid = torch.ones_like(m)
        valid[:, :3] = False
        metric = CNRMetric()
        got = metric(h, m, valid=valid)[:, 0]
        expected = [compute_cnr(h[i], m[i], valid=valid[i]) for i in range(len(h))]
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12, equal_nan=True)
        listed = PointingGameMetric()
        out = listed([h[i, None] for i in range(3)], [m[i, None] for i in range(3)])
        np.testing.assert_array_equal(out[:, 0].numpy(), [compute_pointing_game(h[i], m[i]) for i in range(3)])

    def test_all_nan_aggregate_is_nan(self):
        metric = IoUMetric(threshold=0.5)
        metric(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4, dtype=torch.bool))
        self.assertTrue(math.isnan(float(metric.aggregate())))

    @parameterized.expand(
        [
            ("threshold_type", lambda: IoUMetric(threshold="0.3"), TypeError),
            ("threshold_inf", lambda: HeatmapDiceMetric(threshold=float("inf")), ValueError),
            ("get_not_nans", lambda: CNRMetric(get_not_nans="yes"), TypeError),
            ("pg_get_not_nans", lambda: PointingGameMetric(get_not_nans=1), TypeError),
        ]
    )
    def test_ill_arg(self, _, make, error):
        with self.assertRaises(error):
            make()

    @parameterized.expand(
        [
            ("no_truth", lambda mt: mt(torch.rand(2, 1, 4, 4)), ValueError),
            ("shape", lambda mt: mt(torch.rand(2, 1, 4, 4), torch.ones(2, 1, 4, 5)), ValueError),
            ("channels", lambda mt: mt(torch.rand(2, 2, 4, 4), torch.ones(2, 2, 4, 4)), ValueError),
            ("2d", lambda mt: mt(torch.rand(4, 4), torch.ones(4, 4)), ValueError),
            ("no_pixels", lambda mt: mt(torch.rand(2, 1, 0, 4), torch.ones(2, 1, 0, 4)), ValueError),
            ("mask_values", lambda mt: mt(torch.rand(2, 4, 4), torch.full((2, 4, 4), 3.0)), ValueError),
            (
                "valid_shape",
                lambda mt: mt(torch.rand(2, 4, 4), torch.ones(2, 4, 4), valid=torch.ones(1, 4, 4)),
                ValueError,
            ),
            ("inf", lambda mt: mt(torch.full((1, 4, 4), float("inf")), torch.ones(1, 4, 4)), ValueError),
        ]
    )
    def test_ill_call(self, _, call, error):
        for metric in (IoUMetric(0.1), HeatmapDiceMetric(0.1), CNRMetric(), PointingGameMetric()):
            with self.assertRaises(error):
                call(metric)


if __name__ == "__main__":
    unittest.main()
