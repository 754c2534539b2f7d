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

from parameterized import parameterized

import numpy as np

from monai_afloc.apps.synthetic.report import compose_report, describe_finding
from monai_afloc.transforms.text import (
    MentionState,
    NegationFilter,
    NegationFilterd,
    NegationMode,
    canonical_negation,
    clean_report,
    is_negated,
    mark_negated_mentions,
    mention_states,
    negated_findings,
    remove_negated_mentions,
)

# sentence -> its canonical negated form (it is negated)
NEGATED = [
    ["no pleural effusion", "no pleural effusion"],
    ["No pleural effusion.", "no pleural effusion"],
    ["without evidence of pneumothorax", "no pneumothorax"],
    ["negative for pneumonia", "no pneumonia"],
    ["the study is negative for acute fracture", "no acute fracture"],
    ["pneumothorax is not seen", "no pneumothorax"],
    ["a focal consolidation is not identified", "no focal consolidation"],
    ["the left pleural effusion has resolved", "no left pleural effusion"],
    ["lungs are free of consolidation", "no consolidation"],
    ["lungs are clear of consolidation", "no consolidation"],
    ["no evidence of consolidation", "no consolidation"],
    ["there is no pneumothorax", "no pneumothorax"],
    ["there are no pleural effusions", "no pleural effusions"],
    ["the heart is not enlarged", "no heart enlarged"],
    ["no pleural effusion or pneumothorax", "no pleural effusion or pneumothorax"],
    ["there is no pleural effusion and no pneumothorax", "no pleural effusion and no pneumothorax"],
    ["neither effusion nor pneumothorax", "no effusion and no pneumothorax"],
    ["effusion is no longer seen", "no effusion"],
    ["no acute cardiopulmonary process", "no acute cardiopulmonary process"],
    ["no new consolidation", "no new consolidation"],
    ["pneumothorax ruled out", "no pneumothorax"],
    ["interval resolution of the right pleural effusion", "no right pleural effusion"],
    ["however no pneumothorax", "no pneumothorax"],
    ["impression no acute cardiopulmonary process", "no acute cardiopulmonary process"],
    ["no effusion but no pneumothorax either", "no effusion and no pneumothorax"],
]

# sentences that are not negated (they affirm something, or only look like negations)
AFFIRMED = [
    ["small left pleural effusion"],
    ["lungs are clear"],
    ["heart size is normal"],
    ["heart size is normal and there is no effusion"],
    ["no effusion but a small pneumothorax"],
    ["no effusion however small pneumothorax"],
    ["no effusion and the heart is enlarged"],
    ["heart is enlarged without effusion"],
    ["stable cardiomegaly with no edema"],
    ["no change in the left pleural effusion"],
    ["no significant interval change"],
    ["pneumonia cannot be excluded"],
    ["pneumonia can not be excluded"],
    ["pneumonia is not ruled out"],
    ["not only effusion but also pneumothorax"],
    ["there is no"],
    ["resolved"],
    [""],
    ["..."],
]


class TestNegationRules(unittest.TestCase):
    @parameterized.expand(NEGATED)
    def test_negated(self, sentence, canonical):
        self.assertTrue(is_negated(sentence))
        self.assertEqual(canonical_negation(sentence), canonical)
        self.assertEqual(canonical_negation(canonical), canonical)  # idempotent
        self.assertTrue(is_negated(canonical))

    @parameterized.expand(AFFIRMED)
    def test_affirmed(self, sentence):
        self.assertFalse(is_negated(sentence))
        self.assertEqual(canonical_negation(sentence), sentence)  # unchanged

    @parameterized.expand(NEGATED + [[s[0], None] for s in AFFIRMED])
    def test_cleaned_equals_raw(self, sentence, _):
        cleaned = clean_report(sentence, allow_empty=True)
        if len(cleaned) == 1:
            self.assertEqual(is_negated(cleaned[0]), is_negated(sentence))

    @parameterized.expand(
        [
            ["there is no evidence of pleural effusion or pneumothorax", ["pleural effusion or pneumothorax"]],
            ["no effusion but a small pneumothorax", ["effusion"]],
            ["no effusion no effusion", ["effusion"]],
            ["small left pleural effusion", []],
            ["no change in the effusion", []],
        ]
    )
    def test_findings(self, sentence, expected):
        self.assertEqual(negated_findings(sentence), expected)

    @parameterized.expand([[None], [b"no effusion"], [["no effusion"]], [1]])
    def test_bad_type(self, value):
        for fn in (is_negated, negated_findings, canonical_negation):
            with self.assertRaisesRegex(TypeError, "must be a str"):
                fn(value)


SENTENCES = ("pneumothorax is not seen", "mild cardiomegaly", "no effusion but a small pneumothorax", "no edema")


class TestNegationFilter(unittest.TestCase):

    @parameterized.expand(
        [
            ["drop", ["mild cardiomegaly", "no effusion but a small pneumothorax"]],
            ["mark", ["no pneumothorax", "mild cardiomegaly", "no effusion but a small pneumothorax", "no edema"]],
            ["keep", list(SENTENCES)],
            [NegationMode.DROP, ["mild cardiomegaly", "no effusion but a small pneumothorax"]],
        ]
    )
    def test_modes(self, mode, expected):
        sentences = list(SENTENCES)
        self.assertEqual(NegationFilter(mode)(sentences), expected)
        self.assertEqual(sentences, list(SENTENCES))  # input not modified

    def test_all_dropped(self):
        self.assertEqual(NegationFilter()(["no effusion", "no pneumothorax"]), [])
        self.assertEqual(NegationFilter()(()), [])
        kept = NegationFilter(keep_last=True)
        self.assertEqual(kept(["no effusion", "no acute cardiopulmonary process"]), ["no acute cardiopulmonary process"])
        self.assertEqual(kept(["no effusion", "mild cardiomegaly"]), ["mild cardiomegaly"])
        self.assertEqual(kept(()), [])
        self.assertEqual(NegationFilterd("r", keep_last=True)({"r": ["no edema", "no effusion"]}), {"r": ["no effusion"]})

    @parameterized.expand([["no effusion"], [None], [["ok", None]]])
    def test_bad_input(self, value):
        with self.assertRaises(TypeError):
            NegationFilter()(value)

    def test_ill_arg(self):
        with self.assertRaisesRegex(ValueError, "remove"):
            NegationFilter("remove")
        with self.assertRaisesRegex(TypeError, "mode"):
            NegationFilter(1)
        with self.assertRaisesRegex(TypeError, "keep_last"):
            NegationFilter("drop", keep_last=1)


# sentence -> (what drop_mentions leaves, what mark_mentions gives); real IU X-ray phrasings among them
MENTIONS = [
    ["the lungs are clear without effusion or pneumothorax", "the lungs are clear",
     "the lungs are clear no effusion or pneumothorax"],
    ["heart size is normal and there is no effusion", "heart size is normal", "heart size is normal and no effusion"],
    ["no effusion but a small right pneumothorax", "a small right pneumothorax",
     "no effusion but a small right pneumothorax"],
    ["there is no pneumothorax", "", "no pneumothorax"],
    ["pneumothorax is not seen", "", "no pneumothorax"],
    ["no xxxx of pleural effusion", "", "no pleural effusion"],
    ["XXXX XXXX no pneumothorax", "", "xxxx xxxx no pneumothorax"],
    ["mild cardiomegaly", "mild cardiomegaly", "mild cardiomegaly"],
    ["no findings to suggest pneumonia", "", "no suggest pneumonia"],
    ["patchy opacity possibly pneumonia no effusion", "patchy opacity", "patchy opacity no effusion"],
    ["left base opacity which may represent atelectasis and or effusion", "left base opacity",
     "left base opacity"],
    ["opacity strongly suggestive of pneumonia", "opacity strongly suggestive of pneumonia",
     "opacity strongly suggestive of pneumonia"],
    ["no interval change in the small left effusion", "no interval change in the small left effusion",
     "no interval change in the small left effusion"],
    ["", "", ""],
]


class TestMentionLevel(unittest.TestCase):
    @parameterized.expand(MENTIONS)
    def test_remove_and_mark(self, sentence, removed, marked):
        self.assertEqual(remove_negated_mentions(sentence), removed)
        self.assertEqual(mark_negated_mentions(sentence), marked)

    def test_states(self):
        runs = mention_states("small effusion pneumonia cannot be excluded no pneumothorax")
        self.assertEqual(
            runs,
            [("small effusion pneumonia cannot be excluded", MentionState.UNCERTAIN),
             ("no pneumothorax", MentionState.NEGATED)],
        )
        self.assertEqual(mention_states("mild cardiomegaly"), [("mild cardiomegaly", MentionState.AFFIRMED)])
        self.assertEqual(mention_states(" . "), [])

    def test_uncertain_third_state(self):
        sentence = "right basilar opacity may represent pneumonia"
        self.assertEqual(remove_negated_mentions(sentence), "right basilar opacity")
        self.assertEqual(remove_negated_mentions(sentence, keep_uncertain=True), sentence)
        self.assertEqual(mark_negated_mentions(sentence, keep_uncertain=True), sentence)
        # the sentence level keeps reading uncertainty as an affirmed statement
        self.assertFalse(is_negated("pneumonia cannot be excluded"))

    def test_filter_modes(self):
        sentences = ["the lungs are clear without effusion", "no pneumothorax", "possible small nodule"]
        self.assertEqual(NegationFilter("drop_mentions")(sentences), ["the lungs are clear"])
        self.assertEqual(
            NegationFilter("drop_mentions", keep_uncertain=True)(sentences),
            ["the lungs are clear", "possible small nodule"],
        )
        self.assertEqual(
            NegationFilter("mark_mentions")(sentences), ["the lungs are clear no effusion", "no pneumothorax"]
        )
        self.assertEqual(NegationFilter("drop_mentions", keep_last=True)(["no effusion", "no edema"]), ["no edema"])
        self.assertEqual(NegationFilter("drop")(sentences), sentences[::2])  # the sentence level is unchanged
        d = NegationFilterd("r", mode="drop_mentions")({"r": sentences})
        self.assertEqual(d["r"], ["the lungs are clear"])

    def test_synthetic_reports(self):
        """On the synthetic reports: negated findings removed, affirmed ones kept, as the sentence level does."""
        specs = [
            {"name": "Consolidation", "laterality": "right", "zone": "upper", "severity": "patchy"},
            {"name": "Nodule", "laterality": "left", "zone": "middle", "severity": "small", "size_mm": 8},
            {"name": "Pleural Effusion", "laterality": "left", "zone": "lower", "severity": "small"},
            {"name": "Pneumothorax", "laterality": "right", "zone": "upper", "severity": "large"},
            {"name": "Cardiomegaly", "laterality": "none", "zone": "none", "severity": "mild"},
            {"name": "Atelectasis", "laterality": "left", "zone": "lower", "severity": ""},
            {"name": "Edema", "laterality": "bilateral", "zone": "middle", "severity": "moderate"},
        ]
        words = {"Consolidation": "consolidation", "Nodule": "nodule", "Pleural Effusion": "effusion",
                 "Pneumothorax": "pneumothorax", "Atelectasis": "atelectasis", "Edema": "edema"}
        mention, sentence = NegationFilter("drop_mentions"), NegationFilter("drop")
        n_negated = 0
        for seed in range(60):
            rng = np.random.default_rng(seed)
            present = [specs[i] for i in rng.choice(len(specs), int(rng.integers(0, 4)), replace=False)]
            findings = []
            for spec in present:
                phrase, _, plural = describe_finding(spec, rng)
                findings.append({"name": spec["name"], "phrase": phrase, "plural": plural})
            absent = [s["name"] for s in specs if s not in present]
            report, _, _ = compose_report(findings, absent, "PA", rng)
            sentences = clean_report(report)
            kept = " . ".join(mention(sentences))
            for f in findings:  # every affirmed finding is still stated
                self.assertIn(" ".join(clean_report(f["phrase"] + " x")[0].split()[:-1]), kept, report)
            for name in absent:
                if name in words and words[name] in report.lower():
                    n_negated += 1
                    if not any(words[name] in f["phrase"].lower() for f in findings):
                        self.assertNotIn(words[name], kept, report)
            self.assertEqual(NegationFilter("drop_mentions", keep_uncertain=True)(sentences), sentence(sentences))
        self.assertGreater(n_negated, 20)

    @parameterized.expand([[None], [1], [["no effusion"]]])
    def test_bad_type(self, value):
        for fn in (mention_states, remove_negated_mentions, mark_negated_mentions):
            with self.assertRaises(TypeError):
                fn(value)

    def test_ill_arg(self):
        with self.assertRaisesRegex(TypeError, "keep_uncertain"):
            NegationFilter("drop_mentions", keep_uncertain="yes")
        with self.assertRaisesRegex(TypeError, "keep_uncertain"):
            remove_negated_mentions("no effusion", keep_uncertain=1)


if __name__ == "__main__":
    unittest.main()
