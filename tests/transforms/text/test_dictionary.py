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

import torch
from monai.transforms import Compose
from parameterized import parameterized

from monai_afloc.transforms import text
from monai_afloc.transforms.text import (
    TOKENIZER_KEYS,
    JoinSentencesd,
    NegationFilterd,
    RandSentenceSample,
    RandSentenceSampled,
    ReportToSentencesd,
    TokenizeText,
    TokenizeTextd,
)
from tests.helpers import make_tiny_tokenizer

TOKENIZER = make_tiny_tokenizer()
REPORT = "1. No pleural effusion. 2. Mild cardiomegaly. 3. Pneumothorax is not seen."
SENTENCES = ["no pleural effusion", "mild cardiomegaly", "pneumothorax is not seen"]


class TestDictTransforms(unittest.TestCase):
    def test_report_to_sentences(self):
        d = {"report": REPORT, "other": 1}
        out = ReportToSentencesd("report")(d)
        self.assertEqual(out, {"report": SENTENCES, "other": 1})
        self.assertEqual(d["report"], REPORT)  # input dict not modified
        self.assertEqual(ReportToSentencesd("report", allow_empty=True)({"report": "..."})["report"], [])
        with self.assertRaises(ValueError):
            ReportToSentencesd("report")({"report": "..."})

    def test_join(self):
        self.assertEqual(JoinSentencesd("s")({"s": SENTENCES[:2]})["s"], "no pleural effusion. mild cardiomegaly")
        out = JoinSentencesd("s", separator=" ")({"s": SENTENCES[:2]})
        self.assertEqual(out["s"], "no pleural effusion mild cardiomegaly")
        self.assertEqual(JoinSentencesd("s", allow_empty=True)({"s": []})["s"], "")

    def test_negation(self):
        self.assertEqual(NegationFilterd("s")({"s": SENTENCES})["s"], ["mild cardiomegaly"])
        self.assertEqual(NegationFilterd("s", mode="mark")({"s": SENTENCES})["s"], SENTENCES[:2] + ["no pneumothorax"])
        self.assertEqual(NegationFilterd("s", mode="keep")({"s": SENTENCES})["s"], SENTENCES)

    def test_rand_sample_matches_array(self):
        array = RandSentenceSample().set_random_state(5)
        dict_t = RandSentenceSampled("s").set_random_state(5)
        for n in (3, 2, 1, 0, 3, 3):
            self.assertEqual(dict_t({"s": SENTENCES[:n]})["s"], array(SENTENCES[:n]))

    def test_rand_sample_shared_draw(self):
        marked = ["no pleural effusion", "mild cardiomegaly", "no pneumothorax"]
        sample = RandSentenceSampled(["s", "marked"]).set_random_state(0)
        for _ in range(20):
            out = sample({"s": SENTENCES, "marked": marked})
            self.assertEqual([SENTENCES.index(s) for s in out["s"]], [marked.index(s) for s in out["marked"]])
        with self.assertRaisesRegex(ValueError, "same length"):
            sample({"s": SENTENCES, "marked": marked[:2]})

    def test_rand_sample_prob_and_missing(self):
        out = RandSentenceSampled("s", prob=0.0)({"s": tuple(SENTENCES)})
        self.assertEqual(out["s"], SENTENCES)
        self.assertEqual(RandSentenceSampled("s", allow_missing_keys=True)({"x": 1}), {"x": 1})
        with self.assertRaises(KeyError):
            RandSentenceSampled("s")({"x": 1})
        with self.assertRaises(TypeError):
            RandSentenceSampled("s")({"s": "no effusion"})

    def test_tokenize(self):
        out = TokenizeTextd("report", TOKENIZER)({"report": "no pleural effusion"})
        self.assertEqual(sorted(out), sorted(["report", *TOKENIZER_KEYS]))
        expected = TokenizeText(TOKENIZER)("no pleural effusion")
        for key in TOKENIZER_KEYS:
            self.assertTrue(torch.equal(out[key], expected[key]))
            self.assertEqual(out[key].shape, (97,))

    def test_tokenize_prefixes(self):
        t = TokenizeTextd(["a", "b"], TOKENIZER, max_length=8, output_prefix=["a_", "b_"])
        out = t({"a": "no edema", "b": ["no edema", "mild cardiomegaly"]})
        self.assertEqual(out["a_input_ids"].shape, (8,))
        self.assertEqual(out["b_input_ids"].shape, (2, 8))
        self.assertTrue(torch.equal(out["a_attention_mask"], out["b_attention_mask"][0]))

    def test_missing_keys(self):
        for t in (
            ReportToSentencesd("r", allow_missing_keys=True),
            JoinSentencesd("r", allow_missing_keys=True),
            NegationFilterd("r", allow_missing_keys=True),
            TokenizeTextd("r", TOKENIZER, allow_missing_keys=True),
        ):
            self.assertEqual(t({"x": 1}), {"x": 1})
        with self.assertRaises(KeyError):
            TokenizeTextd("r", TOKENIZER)({"x": 1})

    def test_pipeline(self):
        pipeline = Compose(
            [
                ReportToSentencesd("report"),
                NegationFilterd("report", mode="mark"),
                RandSentenceSampled("report"),
                JoinSentencesd("report"),
                TokenizeTextd("report", TOKENIZER),
            ]
        ).set_random_state(0)
        out = pipeline({"report": REPORT})
        self.assertIsInstance(out["report"], str)
        allowed = {"no pleural effusion", "mild cardiomegaly", "no pneumothorax"}
        self.assertTrue(set(out["report"].split(". ")) <= allowed)
        self.assertEqual(out["input_ids"].shape, (97,))

    @parameterized.expand(
        [
            ["ReportToSentences", "ReportToSentencesd"],
            ["JoinSentences", "JoinSentencesd"],
            ["RandSentenceSample", "RandSentenceSampled"],
            ["TokenizeText", "TokenizeTextd"],
            ["NegationFilter", "NegationFilterd"],
        ]
    )
    def test_aliases(self, array_name, dict_name):
        self.assertTrue(hasattr(text, array_name))
        cls = getattr(text, dict_name)
        self.assertIs(getattr(text, array_name + "D"), cls)
        self.assertIs(getattr(text, array_name + "Dict"), cls)

    @parameterized.expand(
        [
            [ReportToSentencesd, {"keys": "r", "allow_empty": "no"}, TypeError],
            [ReportToSentencesd, {"keys": []}, ValueError],
            [JoinSentencesd, {"keys": "r", "separator": ""}, ValueError],
            [JoinSentencesd, {"keys": "r", "separator": 1}, TypeError],
            [RandSentenceSampled, {"keys": "r", "prob": 2.0}, ValueError],
            [RandSentenceSampled, {"keys": "r", "prob": None}, TypeError],
            [NegationFilterd, {"keys": "r", "mode": "remove"}, ValueError],
            [TokenizeTextd, {"keys": "r", "tokenizer": TOKENIZER, "max_length": 1}, ValueError],
            [TokenizeTextd, {"keys": ["a", "b"], "tokenizer": TOKENIZER}, ValueError],
            [TokenizeTextd, {"keys": ["a", "b"], "tokenizer": TOKENIZER, "output_prefix": ["p", "p"]}, ValueError],
            [TokenizeTextd, {"keys": ["a", "b"], "tokenizer": TOKENIZER, "output_prefix": ["p", 1]}, TypeError],
            [TokenizeTextd, {"keys": "r", "tokenizer": 3}, TypeError],
        ]
    )
    def test_ill_arg(self, cls, kwargs, error):
        with self.assertRaises(error):
            cls(**kwargs)


if __name__ == "__main__":
    unittest.main()
