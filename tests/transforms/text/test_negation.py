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

from monai_afloc.transforms.text import (
    NegationFilter,
    NegationFilterd,
    NegationMode,
    canonical_negation,
    clean_report,
    is_negated,
    negated_findings,
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


if __name__ == "__main__":
    unittest.main()
