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

import importlib.util
import json
import math
import unittest
import warnings

import numpy as np
import torch
from monai.utils import OptionalImportError
from parameterized import parameterized
from scipy.ndimage import gaussian_filter

from monai_afloc.metrics import localization_report, to_dataframe
from tests.helpers import SkipIfNoModule

NAN = float("nan")
KEYS = ("iou", "dice", "cnr", "pointing_game")


# ---- a straightforward re-implementation of the AFLoc evaluation loop (numpy, loops) --------------------------------
def ref_case(h, m, t_list, border, valid=None):
    h = np.asarray(h, dtype=np.float64).copy()
    m = np.asarray(m).astype(bool)
    ok = ~np.isnan(h) if valid is None else (np.asarray(valid).astype(bool) & ~np.isnan(h))
    if border:
        frame = np.zeros_like(ok)
        frame[border:-border, border:-border] = True
        ok &= frame
    hv = h[ok]
    if hv.size and hv.max() > hv.min():
        hv = (hv - hv.min()) / (hv.max() - hv.min()) * 2 - 1
    else:
        hv = np.zeros_like(hv)
    mv = m[ok]
    ious, dices = [], []
    for t in t_list:
        pred = hv > t
        if pred.sum() == 0 or mv.sum() == 0:
            ious.append(NAN)
            dices.append(NAN)
        else:
            inter = np.logical_and(pred, mv).sum()
            ious.append(inter / np.logical_or(pred, mv).sum())
            dices.append(2 * inter / (pred.sum() + mv.sum()))
    inside, outside = hv[mv], hv[~mv]
    if inside.size == 0 or outside.size == 0:
        cnr = NAN
    else:
        var = np.var(inside) + np.var(outside)
        cnr = 0.0 if var == 0 else (inside.mean() - outside.mean()) / math.sqrt(var)
    pg = NAN if mv.sum() == 0 else float(mv[np.argmax(hv)])
    return ious, dices, cnr, pg


def nanmean(values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(np.asarray(values, dtype=np.float64))) if len(values) else NAN


def ref_statistic(cases, cats, n_t):
    """Category-then-mean statistic of per-case results (loops over thresholds, categories and cases)."""
    names = list(dict.fromkeys(cats))
    out = {}
    for key, pick in (("iou", 0), ("dice", 1)):
        per_t = []
        for j in range(n_t):
            per_t.append(
                nanmean([nanmean([cases[i][pick][j] for i in range(len(cases)) if cats[i] == c]) for c in names])
            )
        out[key] = float(np.mean(per_t))
        out[key + "_t"] = per_t
    for key, pick in (("cnr", 2), ("pointing_game", 3)):
        out[key] = nanmean([nanmean([cases[i][pick] for i in range(len(cases)) if cats[i] == c]) for c in names])
    return out


def make_data(n, size=32, seed=0, n_cats=3, empty_every=0):
    rng = np.random.default_rng(seed)
    heatmaps, masks, cats = [], [], []
    for i in range(n):
        h = gaussian_filter(rng.normal(size=(size, size)), 2.0) * rng.uniform(0.5, 20) + rng.normal()
        m = np.zeros((size, size), dtype=bool)
        y0, x0 = rng.integers(0, size - size // 3, size=2)
        m[y0 : y0 + size // 4, x0 : x0 + size // 3] = True
        if empty_every and i % empty_every == 0:
            m[:] = False
        heatmaps.append(h)
        masks.append(m)
        cats.append(f"cat{rng.integers(0, n_cats)}")
    return heatmaps, masks, cats


def assert_close(testcase, a, b, places=10):
    if math.isnan(b):
        testcase.assertTrue(math.isnan(a), f"expected NaN, got {a}")
    else:
        testcase.assertAlmostEqual(a, b, places=places)


class TestReportHandExample(unittest.TestCase):
    def test_tiny_example(self):
        heatmaps = [np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([[3.0, 2.0], [1.0, 0.0]]), np.full((2, 2), 5.0)]
        masks = [np.array([[0, 0], [0, 1]]), np.array([[0, 0], [0, 1]]), np.array([[1, 0], [0, 0]])]
        report = localization_report(heatmaps, masks, ["x", "x", "y"], thresholds=(0.5, 0.0), border=0, n_bootstrap=0)
        # case 1 rescaled [[-1, -1/3], [1/3, 1]]: IoU 1 / 0.5, Dice 1 / 2/3, CNR sqrt(6), hit
        # case 2 rescaled [[1, 1/3], [-1/3, -1]]: IoU 0 / 0, Dice 0 / 0, CNR -sqrt(6), miss
        # case 3 constant -> zeros: IoU/Dice NaN, CNR 0, the first pixel (row-major) is inside: hit
        x = report["per_category"]["x"]
        self.assertAlmostEqual(x["iou"], (0.5 + 0.25) / 2)
        self.assertAlmostEqual(x["dice"], (0.5 + 1 / 3) / 2)
        self.assertAlmostEqual(x["cnr"], 0.0)
        self.assertEqual((x["pointing_game"], x["n"]), (0.5, 2))
        y = report["per_category"]["y"]
        self.assertTrue(math.isnan(y["iou"]) and math.isnan(y["dice"]))
        self.assertEqual((y["cnr"], y["pointing_game"], y["n"]), (0.0, 1.0, 1))
        self.assertAlmostEqual(report["per_threshold"]["0.5"]["iou"], 0.5)
        self.assertAlmostEqual(report["per_threshold"]["0"]["iou"], 0.25)
        self.assertAlmostEqual(report["mean"]["iou"], 0.375)
        self.assertAlmostEqual(report["mean"]["dice"], 5 / 12)
        self.assertAlmostEqual(report["mean"]["cnr"], 0.0)
        self.assertAlmostEqual(report["mean"]["pointing_game"], 0.75)
        self.assertTrue(all(math.isnan(v) for pair in report["ci95"].values() for v in pair))
        self.assertEqual(report["n"], 3)

    def test_category_mean_is_not_case_mean(self):
        # three cases of "a" with IoU 1 and one of "b" with IoU 0: category-then-mean gives 0.5, not 0.75
        good = np.array([[0.0, 1.0]])
        heatmaps = [good, good, good, good]
        masks = [np.array([[0, 1]])] * 3 + [np.array([[1, 0]])]
        report = localization_report(heatmaps, masks, ["a", "a", "a", "b"], thresholds=(0.5,), border=0, n_bootstrap=0)
        self.assertAlmostEqual(report["mean"]["iou"], 0.5)
        self.assertAlmostEqual(report["mean"]["pointing_game"], 0.5)


class TestReportParity(unittest.TestCase):
    @parameterized.expand([("plain", 40, 32, 2, 0), ("chunked_with_empty_truths", 300, 16, 1, 7)])
    def test_matches_reference_loop(self, _, n, size, border, empty_every):
        heatmaps, masks, cats = make_data(n, size=size, seed=n, empty_every=empty_every)
        heatmaps[1][3:6, 3:6] = np.nan
        thresholds = (0.1, 0.2, 0.3, 0.4, 0.5)
        report = localization_report(heatmaps, masks, cats, thresholds=thresholds, border=border, n_bootstrap=0)
        ref = ref_statistic(
            [ref_case(h, m, thresholds, border) for h, m in zip(heatmaps, masks)], cats, len(thresholds)
        )
        for key in KEYS:
            assert_close(self, report["mean"][key], ref[key])
        for j, t in enumerate(thresholds):
            assert_close(self, report["per_threshold"][f"{t:g}"]["iou"], ref["iou_t"][j])
            assert_close(self, report["per_threshold"][f"{t:g}"]["dice"], ref["dice_t"][j])
        for name in set(cats):
            sub = [i for i, c in enumerate(cats) if c == name]
            ref_c = ref_statistic(
                [ref_case(heatmaps[i], masks[i], thresholds, border) for i in sub], [name] * len(sub), 5
            )
            for key in ("cnr", "pointing_game"):
                assert_close(self, report["per_category"][name][key], ref_c[key])
            assert_close(self, report["per_category"][name]["iou"], nanmean(ref_c["iou_t"]))
            self.assertEqual(report["per_category"][name]["n"], len(sub))

    def test_mixed_sizes_torch_and_valid(self):
        heatmaps, masks, cats = make_data(6, size=24, seed=5)
        big, big_masks, big_cats = make_data(5, size=40, seed=6)
        heatmaps = heatmaps + [torch.from_numpy(h).float() for h in big]
        masks = masks + [torch.from_numpy(m) for m in big_masks]
        cats = cats + big_cats
        valid = [None] * len(heatmaps)
        valid[2] = np.ones((24, 24), dtype=bool)
        valid[2][:, :8] = False  # padding on the left
        report = localization_report(heatmaps, masks, cats, border=3, n_bootstrap=0, valid=valid)
        cases = [
            ref_case(np.asarray(h, dtype=np.float64), np.asarray(m), (0.1, 0.2, 0.3, 0.4, 0.5), 3, v)
            for h, m, v in zip(heatmaps, masks, valid)
        ]
        ref = ref_statistic(cases, cats, 5)
        for key in KEYS:
            assert_close(self, report["mean"][key], ref[key], places=6)  # float32 maps: float32 round-off

    def test_stacked_array_equals_list(self):
        heatmaps, masks, cats = make_data(9, size=20, seed=9)
        a = localization_report(heatmaps, masks, cats, border=1, n_bootstrap=30)
        b = localization_report(
            torch.tensor(np.stack(heatmaps)), np.stack(masks).astype(np.uint8), cats, border=1, n_bootstrap=30
        )
        self.assertEqual(json.dumps(a), json.dumps(b))

    def test_border_is_ignored(self):
        heatmaps, masks, cats = make_data(8, size=20, seed=7)
        spiked = [h.copy() for h in heatmaps]
        for h in spiked:
            h[0, 0] = 1e6  # inside the border: must change nothing (also not the min-max rescale)
            h[-1, 5] = -1e6
        a = localization_report(heatmaps, masks, cats, border=2, n_bootstrap=0)
        b = localization_report(spiked, masks, cats, border=2, n_bootstrap=0)
        self.assertEqual(json.dumps(a), json.dumps(b))
        c = localization_report(spiked, masks, cats, border=0, n_bootstrap=0)
        self.assertNotEqual(json.dumps(a), json.dumps(c))
        # the border equals NaN pixels
        nanned = []
        for h in heatmaps:
            h = h.copy()
            h[:2], h[-2:], h[:, :2], h[:, -2:] = np.nan, np.nan, np.nan, np.nan
            nanned.append(h)
        d = localization_report(nanned, masks, cats, border=0, n_bootstrap=0)
        for key in ("mean", "per_threshold", "per_category"):
            self.assertEqual(json.dumps(a[key]), json.dumps(d[key]))

    def test_scale_invariance(self):
        heatmaps, masks, cats = make_data(10, size=20, seed=8)
        a = localization_report(heatmaps, masks, cats, border=1, n_bootstrap=0)
        b = localization_report([3.0 * h - 7.0 for h in heatmaps], masks, cats, border=1, n_bootstrap=0)
        for key in KEYS:
            self.assertAlmostEqual(a["mean"][key], b["mean"][key], places=9)


class TestReportBootstrap(unittest.TestCase):
    def setUp(self):
        self.data = make_data(40, size=24, seed=11)

    def test_ci_contains_point_and_is_deterministic(self):
        a = localization_report(*self.data, border=2, n_bootstrap=300, seed=3)
        b = localization_report(*self.data, border=2, n_bootstrap=300, seed=3)
        c = localization_report(*self.data, border=2, n_bootstrap=300, seed=4)
        self.assertEqual(json.dumps(a), json.dumps(b))
        self.assertNotEqual(a["ci95"], c["ci95"])
        self.assertEqual(a["mean"], c["mean"])
        for key in KEYS:
            lo, hi = a["ci95"][key]
            self.assertLess(lo, hi)
            self.assertLessEqual(lo, a["mean"][key])
            self.assertGreaterEqual(hi, a["mean"][key])

    def test_matches_reference_resampling(self):
        heatmaps, masks, cats = self.data
        n_boot, seed, thresholds = 60, 5, (0.1, 0.3, 0.5)
        report = localization_report(
            heatmaps, masks, cats, thresholds=thresholds, border=2, n_bootstrap=n_boot, seed=seed
        )
        cases = [ref_case(h, m, thresholds, 2) for h, m in zip(heatmaps, masks)]
        draws = np.random.default_rng(seed).integers(0, len(cases), size=(n_boot, len(cases)))  # one chunk
        stats = {key: [] for key in KEYS}
        for row in draws:
            ref = ref_statistic([cases[i] for i in row], [cats[i] for i in row], len(thresholds))
            for key in KEYS:
                stats[key].append(ref[key])
        for key in KEYS:
            s = np.array(stats[key])
            lo, hi = np.percentile(s[~np.isnan(s)], [2.5, 97.5])
            self.assertAlmostEqual(report["ci95"][key][0], lo, places=9)
            self.assertAlmostEqual(report["ci95"][key][1], hi, places=9)

    def test_json_serialisable_plain_types(self):
        report = localization_report(*self.data, border=2, n_bootstrap=20)
        text = json.dumps(report)
        self.assertEqual(json.loads(text)["n"], 40)

        def walk(obj):
            if isinstance(obj, dict):
                for k, v in obj.items():
                    self.assertIsInstance(k, str)
                    walk(v)
            elif isinstance(obj, list):
                for v in obj:
                    walk(v)
            else:
                self.assertIn(type(obj), (float, int, str, type(None)))

        walk(report)


@SkipIfNoModule("pandas")
class TestToDataFrame(unittest.TestCase):
    def test_frame(self):
        report = localization_report(*make_data(6, size=20), border=1, n_bootstrap=10)
        frame = to_dataframe(report)
        self.assertEqual(list(frame.index)[-1], "mean")
        self.assertEqual(len(frame), len(report["per_category"]) + 1)
        self.assertAlmostEqual(frame.loc["mean", "iou"], report["mean"]["iou"])
        with self.assertRaises(ValueError):
            to_dataframe({"mean": {}})


class TestToDataFrameWithoutPandas(unittest.TestCase):
    @unittest.skipIf(importlib.util.find_spec("pandas") is not None, "pandas is installed")
    def test_needs_pandas(self):
        report = localization_report(*make_data(3, size=8), border=0, n_bootstrap=0)
        with self.assertRaises(OptionalImportError):
            to_dataframe(report)


def _data(n=3, size=8):
    return make_data(n, size=size)


BAD_REPORT = [
    ("lengths", lambda h, m, c: localization_report(h, m[:2], c), ValueError),
    ("categories_len", lambda h, m, c: localization_report(h, m, c + ["x"]), ValueError),
    ("empty", lambda h, m, c: localization_report([], [], []), ValueError),
    ("categories_str", lambda h, m, c: localization_report(h, m, "cat0"), TypeError),
    ("category_type", lambda h, m, c: localization_report(h, m, [0, 1, 2]), TypeError),
    ("heatmaps_type", lambda h, m, c: localization_report(h[0], m, c), ValueError),
    ("heatmaps_scalar", lambda h, m, c: localization_report(3.0, m, c), TypeError),
    ("map_3d", lambda h, m, c: localization_report([h[0][None]] + h[1:], [m[0][None]] + m[1:], c), ValueError),
    ("shape", lambda h, m, c: localization_report(h, [m[0][:-1]] + m[1:], c), ValueError),
    ("mask_values", lambda h, m, c: localization_report(h, [m[0] * 2.0 + 0.5] + m[1:], c, border=0), ValueError),
    ("inf", lambda h, m, c: localization_report([np.full((8, 8), np.inf)] + h[1:], m, c, border=0), ValueError),
    (
        "inf_in_border",
        lambda h, m, c: localization_report(
            [np.pad(h[0][1:-1, 1:-1], 1, constant_values=-np.inf)] + h[1:], m, c, border=1
        ),
        ValueError,
    ),
    (
        "range_overflow",
        lambda h, m, c: localization_report([np.where(np.eye(8) > 0, 1.7e308, -1.7e308)] + h[1:], m, c, border=0),
        ValueError,
    ),
    ("bool_heatmap", lambda h, m, c: localization_report([m[0]] + h[1:], m, c, border=0), TypeError),
    ("border_too_big", lambda h, m, c: localization_report(h, m, c, border=4), ValueError),
    ("border_negative", lambda h, m, c: localization_report(h, m, c, border=-1), ValueError),
    ("border_float", lambda h, m, c: localization_report(h, m, c, border=1.5), TypeError),
    ("thresholds_empty", lambda h, m, c: localization_report(h, m, c, thresholds=(), border=0), ValueError),
    ("thresholds_dup", lambda h, m, c: localization_report(h, m, c, thresholds=(0.1, 0.1), border=0), ValueError),
    ("thresholds_nan", lambda h, m, c: localization_report(h, m, c, thresholds=(NAN,), border=0), ValueError),
    ("thresholds_scalar", lambda h, m, c: localization_report(h, m, c, thresholds=0.1, border=0), TypeError),
    ("n_bootstrap", lambda h, m, c: localization_report(h, m, c, border=0, n_bootstrap=-5), ValueError),
    ("seed", lambda h, m, c: localization_report(h, m, c, border=0, seed="0"), TypeError),
    ("valid_len", lambda h, m, c: localization_report(h, m, c, border=0, valid=[None]), ValueError),
    ("valid_shape", lambda h, m, c: localization_report(h, m, c, border=0, valid=[np.ones((2, 2))] * 3), ValueError),
    (
        "valid_values",
        lambda h, m, c: localization_report(h, m, c, border=0, valid=[np.full((8, 8), 0.5)] * 3),
        ValueError,
    ),
]


class TestReportBadArgs(unittest.TestCase):
    @parameterized.expand(BAD_REPORT)
    def test_ill_arg(self, _, call, error):
        h, m, c = _data()
        with self.assertRaises(error):
            call(h, m, c)


if __name__ == "__main__":
    unittest.main()
