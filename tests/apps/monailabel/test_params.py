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
"""Request checks and app settings of the MONAI Label integration: pure Python, run with or without monailabel."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_afloc.apps.monailabel.app import DEFAULT_FINDINGS, AFLocAppSettings
from monai_afloc.apps.monailabel.infer import finding_prompt_text, is_inside, label_from_boxes, label_from_heatmaps
from monai_afloc.apps.monailabel.params import (
    MAX_PROMPTS,
    AFLocRequestError,
    OutputKind,
    check_request_mapping,
    parse_output_kind,
    parse_params_json,
    parse_prompts,
    parse_threshold,
)

BAD_PARAMS = [
    ("not_json", "not json", 400, "not valid JSON"),
    ("truncated", '{"prompt": "x"', 400, "not valid JSON"),
    ("list", "[1, 2]", 422, "JSON object"),
    ("pairs", '[["prompt", "x"]]', 422, "JSON object"),
    ("number", "3", 422, "JSON object"),
    ("null", "null", 422, "JSON object"),
    ("bytes_type", 12, 400, "JSON object in a string"),
]
BAD_PROMPTS = [
    ("missing", None, "missing 'prompt'"),
    ("empty", "", "empty"),
    ("blank", "  \t ", "empty"),
    ("punctuation", "...", "empty"),
    ("empty_list", [], "empty list"),
    ("number", 5, "string or a list"),
    ("dict", {"a": 1}, "string or a list"),
    ("item_not_str", ["ok", 3], "prompt #1 must be a string"),
    ("item_empty", ["ok", " "], "prompt #1 is empty"),
    ("repeated", ["a b", "a  b"], "repeats"),
    ("too_long", "x" * 1001, "longer than"),
    ("too_many", [f"p{i}" for i in range(MAX_PROMPTS + 1)], "at most"),
]
BAD_THRESHOLDS = [("above", 1.5), ("below", -2), ("nan", float("nan")), ("inf", "inf"), ("bool", True),
                  ("text", "high"), ("list", [0.5]), ("none", None)]


class TestParams(unittest.TestCase):
    def test_params_json(self):
        self.assertEqual(parse_params_json('{"prompt": ["a"], "threshold": 0.2}'), {"prompt": ["a"], "threshold": 0.2})
        self.assertEqual(parse_params_json(""), {})
        self.assertEqual(parse_params_json(None), {})
        self.assertEqual(parse_params_json(b'{"a": 1}'), {"a": 1})

    @parameterized.expand(BAD_PARAMS)
    def test_bad_params_json(self, _, value, status, message):
        with self.assertRaises(AFLocRequestError) as ctx:
            parse_params_json(value)
        self.assertEqual(ctx.exception.status, status)
        self.assertIn(message, str(ctx.exception))

    def test_prompts(self):
        self.assertEqual(parse_prompts("  small   left effusion "), ["small left effusion"])
        self.assertEqual(parse_prompts(["a, b", "c"]), ["a, b", "c"])  # commas are not split
        self.assertEqual(parse_prompts(("x",)), ["x"])
        self.assertEqual(parse_prompts(["pleural EFFUSION", "nodule"], choices=["Pleural Effusion", "Nodule"]),
                         ["Pleural Effusion", "Nodule"])
        with self.assertRaises(AFLocRequestError) as ctx:
            parse_prompts(["Mass"], choices=["Nodule"])
        self.assertEqual(ctx.exception.status, 400)
        self.assertIn("unknown finding", str(ctx.exception))

    @parameterized.expand(BAD_PROMPTS)
    def test_bad_prompts(self, _, value, message):
        with self.assertRaises(AFLocRequestError) as ctx:
            parse_prompts(value)
        self.assertEqual(ctx.exception.status, 400)
        self.assertIn(message, str(ctx.exception))

    def test_threshold_and_output(self):
        self.assertEqual(parse_threshold(0), 0.0)
        self.assertEqual(parse_threshold("-0.25"), -0.25)
        self.assertEqual(parse_threshold(1), 1.0)
        self.assertIs(parse_output_kind(" Boxes "), OutputKind.BOXES)
        for bad in ("png", "", None, 1):
            with self.assertRaises(AFLocRequestError):
                parse_output_kind(bad)
        self.assertEqual(check_request_mapping({"a": 1}), {"a": 1})
        with self.assertRaises(AFLocRequestError):
            check_request_mapping([("a", 1)])

    @parameterized.expand(BAD_THRESHOLDS)
    def test_bad_threshold(self, _, value):
        with self.assertRaises(AFLocRequestError) as ctx:
            parse_threshold(value)
        self.assertEqual(ctx.exception.status, 400)
        self.assertIn("threshold", str(ctx.exception))

    def test_request_error_status(self):
        with self.assertRaises(ValueError):
            AFLocRequestError(500, "server errors are not request errors")
        self.assertIsInstance(AFLocRequestError(404, "x"), ValueError)


class TestLabels(unittest.TestCase):
    def test_label_from_heatmaps(self):
        maps = torch.full((3, 4, 5), -1.0)
        maps[0, 0, 0], maps[1, 0, 0] = 0.6, 0.9  # prompt 1 strongest
        maps[0, 1, 1] = 0.7  # only prompt 0 above
        maps[2, 2, 2] = 0.4  # below the threshold
        maps[2, 3, 3] = float("nan")
        label = label_from_heatmaps(maps, 0.5)
        expected = np.zeros((4, 5), np.uint8)
        expected[0, 0], expected[1, 1] = 2, 1
        np.testing.assert_array_equal(label, expected)
        self.assertEqual(label.dtype, np.uint8)
        with self.assertRaises(ValueError):
            label_from_heatmaps(maps[0], 0.5)
        with self.assertRaises(ValueError):
            label_from_heatmaps(torch.zeros(256, 2, 2), 0.5)

    def test_label_from_boxes(self):
        label = label_from_boxes([[{"box": [1, 2, 3, 1]}], [], [{"box": [0, 0, 2, 2]}]], (4, 6))
        expected = np.zeros((4, 6), np.uint8)
        expected[2, 1:4] = 1
        expected[0:2, 0:2] = 3
        np.testing.assert_array_equal(label, expected)

    def test_finding_prompt_text_and_paths(self):
        self.assertEqual(finding_prompt_text("Pleural Effusion"), "pleural effusion")
        self.assertEqual(finding_prompt_text("Edema"), "pulmonary edema")
        self.assertEqual(finding_prompt_text("Some  New Thing"), "some new thing")
        with self.assertRaises(ValueError):
            finding_prompt_text(" ")
        with tempfile.TemporaryDirectory() as root:
            inner = os.path.join(root, "studies")
            os.makedirs(inner)
            self.assertTrue(is_inside(os.path.join(inner, "a.png"), [inner]))
            self.assertFalse(is_inside(os.path.join(inner, "..", "a.png"), [inner]))
            self.assertFalse(is_inside(inner + "_other/a.png", [inner]))
            os.symlink("/etc", os.path.join(inner, "link"))
            self.assertFalse(is_inside(os.path.join(inner, "link", "passwd"), [inner]))


class TestAppSettings(unittest.TestCase):
    def test_defaults_and_finding_sets(self):
        with tempfile.TemporaryDirectory() as ckpt:
            s = AFLocAppSettings({"checkpoint": ckpt, "findings_lungs": "Edema, Pneumothorax", "free_text": "no"})
            self.assertEqual(s.finding_sets, {"afloc_findings": list(DEFAULT_FINDINGS),
                                              "afloc_lungs": ["Edema", "Pneumothorax"]})
            self.assertEqual((s.free_text, s.threshold, s.sigma, s.image_size), (False, 0.5, None, None))
            self.assertEqual(len(DEFAULT_FINDINGS), 14)
        s = AFLocAppSettings({"network_factory": "tests.helpers:BrightnessAFLoc", "threshold": "0.2", "sigma": "0",
                              "image_size": "256", "device": "cpu", "findings": "Nodule"})
        self.assertEqual((s.threshold, s.sigma, s.image_size, s.device.type), (0.2, 0.0, 256, "cpu"))
        self.assertEqual(s.finding_sets["afloc_findings"], ["Nodule"])
        bundle = os.path.join(os.path.dirname(__file__), "..", "..", "..", "bundles", "afloc_chest_xray_localization")
        s = AFLocAppSettings({"bundle": bundle})
        self.assertEqual((s.finding_sets, s.threshold_given, s.checkpoint), ({}, False, None))
        s = AFLocAppSettings({"bundle": bundle, "findings": "Edema", "threshold": "0.1"})
        self.assertEqual((s.finding_sets, s.threshold_given), ({"afloc_findings": ["Edema"]}, True))

    @parameterized.expand([
        ("no_network", {}, "--conf checkpoint"),
        ("both", {"checkpoint": "/", "network_factory": "a:b"}, "exclude"),
        ("factory_and_bundle", {"bundle": "/", "network_factory": "a:b"}, "exclude"),
        ("not_a_bundle", {"bundle": "/no/such/bundle"}, "configs/inference.json"),
        ("missing_ckpt", {"checkpoint": "/no/such/ckpt"}, "no such file"),
        ("factory_form", {"network_factory": "module_only"}, "module:callable"),
        ("findings_empty", {"network_factory": "a:b", "findings": " , "}, "comma-separated"),
        ("findings_repeat", {"network_factory": "a:b", "findings": "Edema,edema"}, "repeated"),
        ("task_name", {"network_factory": "a:b", "findings_a-b": "Edema"}, "task name"),
        ("free_text", {"network_factory": "a:b", "free_text": "maybe"}, "free_text"),
        ("threshold", {"network_factory": "a:b", "threshold": "2"}, "threshold"),
        ("sigma", {"network_factory": "a:b", "sigma": "-1"}, "sigma"),
        ("sigma_text", {"network_factory": "a:b", "sigma": "wide"}, "sigma"),
        ("image_size", {"network_factory": "a:b", "image_size": "16"}, "image_size"),
        ("device", {"network_factory": "a:b", "device": "toaster"}, "device"),
    ])
    def test_ill_conf(self, _, conf, message):
        with self.assertRaises(ValueError) as ctx:
            AFLocAppSettings(conf)
        self.assertIn(message, str(ctx.exception))
        with self.assertRaises(TypeError):
            AFLocAppSettings([("checkpoint", "x")])


class TestImportIsolation(unittest.TestCase):
    def test_core_import_does_not_import_monailabel(self):
        code = ("import sys, monai_afloc, monai_afloc.apps; "
                "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('monailabel', 'fastapi')); "
                "print(bad); sys.exit(1 if bad else 0)")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)


if __name__ == "__main__":
    unittest.main()
