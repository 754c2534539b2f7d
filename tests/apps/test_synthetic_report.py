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
"""Tests for the synthetic report text: phrases, location-free phrases, negations and impressions."""

from __future__ import annotations

import re
import unittest

import numpy as np
from parameterized import parameterized

from monai_afloc.apps.synthetic.report import SYNTHETIC_LOCATION_WORDS, compose_report, describe_finding

SPECS = [
    [{"name": "Consolidation", "laterality": "right", "zone": "upper", "severity": "patchy"}],
    [{"name": "Nodule", "laterality": "left", "zone": "middle", "severity": "small", "size_mm": 8}],
    [{"name": "Pleural Effusion", "laterality": "left", "zone": "lower", "severity": "small"}],
    [{"name": "Pleural Effusion", "laterality": "bilateral", "zone": "lower", "severity": "moderate"}],
    [{"name": "Pneumothorax", "laterality": "right", "zone": "upper", "severity": "large"}],
    [{"name": "Cardiomegaly", "laterality": "none", "zone": "none", "severity": "mild"}],
    [{"name": "Atelectasis", "laterality": "left", "zone": "lower", "severity": ""}],
    [{"name": "Edema", "laterality": "bilateral", "zone": "middle", "severity": "moderate"}],
    [{"name": "Edema", "laterality": "right", "zone": "middle", "severity": "mild"}],
]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


class TestDescribeFinding(unittest.TestCase):
    @parameterized.expand(SPECS)
    def test_phrases(self, spec):
        seen = set()
        for seed in range(12):
            phrase, free, plural = describe_finding(spec, np.random.default_rng(seed))
            seen.add(phrase)
            self.assertIn(free, phrase)
            self.assertFalse(_words(free) & set(SYNTHETIC_LOCATION_WORDS), free)
            self.assertEqual(phrase, phrase.strip())
            self.assertNotIn("  ", phrase)
            if spec["laterality"] in ("left", "right"):
                self.assertIn(spec["laterality"], _words(phrase))
            elif spec["laterality"] == "bilateral":
                self.assertTrue({"bilateral", "bilaterally"} & _words(phrase), phrase)
            self.assertIsInstance(plural, bool)
        self.assertGreaterEqual(len(seen), 2, seen)

    def test_ill_name(self):
        with self.assertRaises(ValueError):
            describe_finding({"name": "Pneumonia", "laterality": "left", "zone": "upper", "severity": ""},
                             np.random.default_rng(0))


class TestComposeReport(unittest.TestCase):
    def test_normal_report(self):
        all_names = [s[0]["name"] for s in SPECS]
        texts = set()
        for seed in range(10):
            report, findings, impression = compose_report([], sorted(set(all_names)), "PA", np.random.default_rng(seed))
            texts.add(report)
            self.assertTrue(report.startswith("FINDINGS: "))
            self.assertIn("\n\nIMPRESSION: ", report)
            self.assertIn(findings, report)
            self.assertIn(impression, report)
            for word in ("effusion", "pneumothorax", "nodule", "consolidation", "atelectasis", "edema"):
                for sentence in report.lower().split("."):
                    if word in sentence:
                        self.assertRegex(sentence, r"\bno\b|\bnot\b", sentence)
        self.assertGreater(len(texts), 5)

    def test_abnormal_report(self):
        rng = np.random.default_rng(3)
        spec = dict(SPECS[2][0])
        phrase, free, plural = describe_finding(spec, rng)
        finding = {"name": spec["name"], "phrase": phrase, "plural": plural}
        report, _, impression = compose_report([finding], ["Pneumothorax"], "AP", rng)
        self.assertIn(phrase.lower(), report.lower())
        self.assertIn(phrase.lower(), impression.lower())
        self.assertNotIn("No acute", impression)


if __name__ == "__main__":
    unittest.main()
