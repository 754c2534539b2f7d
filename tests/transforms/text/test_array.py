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

import random
import re
import unittest
from collections import Counter

import numpy as np
from monai.transforms import Compose
from parameterized import parameterized

from monai_afloc.transforms.text import JoinSentences, RandSentenceSample, ReportToSentences, clean_report


def reference_clean(text: str) -> list[str]:
    """The reference's cleaning (GLoRIA/AFLoc ``create_path_2_sent_mapping``), written step by step with loops."""
    text = text.replace("\n", " ")
    pieces = []
    for point in re.compile(r"[0-9]+\.").split(text):
        pieces.extend(point.split("."))
    sentences = []
    for piece in pieces:
        if len(piece) == 0:
            continue
        piece = piece.replace("\ufffd\ufffd", " ")
        tokens = re.findall(r"\w+", piece.lower())
        if len(tokens) <= 1:
            continue
        kept = []
        for tok in tokens:
            tok = tok.encode("ascii", "ignore").decode("ascii")
            if len(tok) > 0:
                kept.append(tok)
        sentences.append(" ".join(kept))
    return sentences


# report -> exact expected sentences
CLEAN_CASES = [
    ["numbered", "1. No pleural effusion. 2. Mild cardiomegaly.", ["no pleural effusion", "mild cardiomegaly"]],
    ["multi_digit", "10. Tube in place. 11. No pneumothorax", ["tube in place", "no pneumothorax"]],
    ["no_trailing_period", "No acute cardiopulmonary process", ["no acute cardiopulmonary process"]],
    ["trailing_periods", "Heart size is normal... Lungs are clear.", ["heart size is normal", "lungs are clear"]],
    [
        "newlines",
        "FINDINGS:\nThe lungs are clear\nwithout consolidation.",
        ["findings the lungs are clear without consolidation"],
    ],
    [
        "punctuation",
        "Tip of the right-sided PICC, at the cavoatrial junction; unchanged.",
        ["tip of the right sided picc at the cavoatrial junction unchanged"],
    ],
    ["one_word_pieces", "Stable. Unchanged. No effusion. Normal", ["no effusion"]],
    ["decimal_split", "Effusion measures 2.5 cm wide.", ["effusion measures", "5 cm wide"]],
    ["non_ascii_in_token", "Café-au-lait opacity. Size 3×4 cm.", ["caf au lait opacity", "size 3 4 cm"]],
    ["count_before_ascii_drop", "中文 effusion. é pneumothorax.", ["effusion", "pneumothorax"]],
    ["all_non_ascii_piece", "中文 日本. No effusion.", ["no effusion"]],
    ["replacement_chars", "no\ufffd\ufffdeffusion seen", ["no effusion seen"]],
    ["underscore_is_word", "___ year old with cough.", ["___ year old with cough"]],
    ["tabs_and_spaces", "  no \t effusion  .", ["no effusion"]],
]

EMPTY_CASES = [
    [""],
    ["   "],
    ["..."],
    ["\n\n"],
    ["Normal."],
    ["1. 2. 3."],
    ["中文."],
    ["é. ü."],
    ["Stable. Unchanged."],
    ["中文 日本."],
]

BAD_TYPES = [[None], [b"no effusion"], [3], [3.5], [float("nan")], [["no effusion"]]]


def _random_report(rng: random.Random) -> str:
    vocab = ["no", "effusion", "Pleural", "LEFT", "heart", "é", "中文", "size", "3", "12", "x", "___", "\ufffd"]
    seps = [" ", " ", " ", ". ", ".", "\n", ", ", "1. ", "2.", "-", "\ufffd\ufffd", ";", "  "]
    return "".join(rng.choice(vocab) + rng.choice(seps) for _ in range(rng.randint(0, 12)))


class TestCleanReport(unittest.TestCase):
    @parameterized.expand(CLEAN_CASES)
    def test_table(self, _, report, expected):
        self.assertEqual(clean_report(report), expected)
        self.assertEqual(ReportToSentences()(report), expected)

    def test_matches_reference(self):
        """Random reports: same sentences as the reference, except its empty sentences (documented)."""
        rng = random.Random(0)
        for _ in range(500):
            report = _random_report(rng)
            expected = [s for s in reference_clean(report) if s]
            self.assertEqual(clean_report(report, allow_empty=True), expected, msg=repr(report))

    def test_deviation_is_only_empty_sentences(self):
        self.assertEqual(reference_clean("中文 日本. No effusion."), ["", "no effusion"])

    @parameterized.expand(EMPTY_CASES)
    def test_empty(self, report):
        with self.assertRaisesRegex(ValueError, "no sentence after cleaning"):
            clean_report(report)
        with self.assertRaises(ValueError):
            ReportToSentences()(report)
        self.assertEqual(clean_report(report, allow_empty=True), [])
        self.assertEqual(ReportToSentences(allow_empty=True)(report), [])

    def test_error_shows_text_prefix(self):
        with self.assertRaisesRegex(ValueError, re.escape("'" + "." * 60 + "...'")):
            clean_report("." * 500)

    @parameterized.expand(BAD_TYPES)
    def test_bad_type(self, value):
        with self.assertRaisesRegex(TypeError, type(value).__name__):
            clean_report(value)
        with self.assertRaisesRegex(TypeError, "must be a str"):
            ReportToSentences()(value)

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            ReportToSentences(allow_empty="yes")
        with self.assertRaises(TypeError):
            clean_report("no effusion", allow_empty=None)


class TestJoinSentences(unittest.TestCase):
    @parameterized.expand(
        [
            [{}, ["no pleural effusion", "mild cardiomegaly"], "no pleural effusion. mild cardiomegaly"],
            [{"separator": " "}, ["no pleural effusion", "mild cardiomegaly"], "no pleural effusion mild cardiomegaly"],
            [{}, ("no effusion",), "no effusion"],
            [{"allow_empty": True}, [], ""],
        ]
    )
    def test_join(self, kwargs, sentences, expected):
        self.assertEqual(JoinSentences(**kwargs)(sentences), expected)

    def test_empty_list(self):
        with self.assertRaisesRegex(ValueError, "at least one sentence"):
            JoinSentences()([])

    def test_bad_input(self):
        join = JoinSentences()
        with self.assertRaisesRegex(ValueError, "blank"):
            join(["no effusion", "  "])
        with self.assertRaisesRegex(TypeError, "got str"):
            join("no effusion")
        with self.assertRaisesRegex(TypeError, "item 1 is a int"):
            join(["no effusion", 3])
        with self.assertRaisesRegex(TypeError, "NoneType"):
            join(None)

    def test_ill_arg(self):
        with self.assertRaisesRegex(ValueError, "separator"):
            JoinSentences(separator="")
        with self.assertRaisesRegex(TypeError, "separator"):
            JoinSentences(separator=None)
        with self.assertRaises(TypeError):
            JoinSentences(allow_empty=1)


SENTENCES = [f"sentence number {i}" for i in range(6)]


def reference_sample(sentences: list[str]) -> list[str]:
    """The reference's draw (AFLoc ``get_caption``, random_combine mode 1) on numpy's global random state."""
    if len(sentences) < 2:
        return list(sentences)
    sample_num = np.random.randint(1, len(sentences))
    sent_ix = np.random.choice(range(len(sentences)), sample_num, replace=False)
    return [sentences[ix] for ix in sent_ix]


class TestRandSentenceSample(unittest.TestCase):
    def test_reproducible(self):
        a, b = RandSentenceSample().set_random_state(7), RandSentenceSample().set_random_state(7)
        out_a = [a(SENTENCES[:n]) for n in (6, 3, 5, 6, 2)]
        out_b = [b(SENTENCES[:n]) for n in (6, 3, 5, 6, 2)]
        self.assertEqual(out_a, out_b)
        c = RandSentenceSample().set_random_state(8)
        self.assertNotEqual(out_a, [c(SENTENCES[:n]) for n in (6, 3, 5, 6, 2)])

    def test_reference_draws(self):
        for seed in range(20):
            np.random.seed(seed)
            expected = [reference_sample(SENTENCES[:n]) for n in (6, 1, 4, 2, 5)]
            sample = RandSentenceSample().set_random_state(seed)
            self.assertEqual([sample(SENTENCES[:n]) for n in (6, 1, 4, 2, 5)], expected)

    def test_distribution(self):
        n, trials = 5, 4000
        sample = RandSentenceSample().set_random_state(0)
        sizes, orders_sorted = Counter(), 0
        for _ in range(trials):
            out = sample(SENTENCES[:n])
            self.assertEqual(len(set(out)), len(out))  # distinct
            self.assertTrue(set(out) <= set(SENTENCES[:n]))
            sizes[len(out)] += 1
            idx = [SENTENCES.index(s) for s in out]
            orders_sorted += int(idx == sorted(idx))
        self.assertEqual(sorted(sizes), [1, 2, 3, 4])  # k in 1..n-1, never n
        for k in range(1, n):
            self.assertAlmostEqual(sizes[k] / trials, 1 / (n - 1), delta=0.04)
        self.assertLess(orders_sorted, trials * 0.6)  # random order, not sorted

    def test_small_inputs(self):
        sample = RandSentenceSample().set_random_state(0)
        self.assertEqual(sample(["only sentence"]), ["only sentence"])
        self.assertEqual(sample([]), [])
        two = [sample(["first one", "second one"]) for _ in range(50)]
        self.assertTrue(all(len(t) == 1 for t in two))
        self.assertEqual({t[0] for t in two}, {"first one", "second one"})

    def test_prob(self):
        self.assertEqual(RandSentenceSample(prob=0.0).set_random_state(0)(SENTENCES), SENTENCES)
        sample = RandSentenceSample(prob=0.5).set_random_state(0)
        unchanged = sum(sample(SENTENCES) == SENTENCES for _ in range(200))
        self.assertTrue(60 < unchanged < 140, unchanged)

    def test_randomize_false(self):
        sample = RandSentenceSample().set_random_state(1)
        with self.assertRaisesRegex(RuntimeError, "randomize"):
            sample(SENTENCES, randomize=False)
        sample.randomize(SENTENCES)
        other = [s.upper() for s in SENTENCES]
        out, out_other = sample(SENTENCES, randomize=False), sample(other, randomize=False)
        self.assertEqual([s.upper() for s in out], out_other)
        with self.assertRaisesRegex(ValueError, "6 sentences, got 3"):
            sample(SENTENCES[:3], randomize=False)

    def test_input_not_modified(self):
        sentences = list(SENTENCES)
        RandSentenceSample().set_random_state(0)(sentences)
        self.assertEqual(sentences, SENTENCES)

    def test_compose_array_pipeline(self):
        pipeline = Compose(
            [ReportToSentences(), RandSentenceSample(), JoinSentences()], map_items=False
        ).set_random_state(0)
        text = pipeline("1. No pleural effusion. 2. Mild cardiomegaly. 3. No pneumothorax.")
        self.assertIsInstance(text, str)
        parts = text.split(". ")
        self.assertTrue(1 <= len(parts) <= 2)
        self.assertTrue(set(parts) <= {"no pleural effusion", "mild cardiomegaly", "no pneumothorax"})

    def test_compose_map_items_hint(self):
        pipeline = Compose([ReportToSentences(), RandSentenceSample()])  # default map_items=True maps over the list
        with self.assertRaises(RuntimeError) as ctx:
            pipeline("1. No pleural effusion. 2. Mild cardiomegaly.")
        err: BaseException | None = ctx.exception
        while err is not None and not isinstance(err, TypeError):
            err = err.__cause__
        self.assertIsInstance(err, TypeError)
        self.assertIn("map_items=False", str(err))

    @parameterized.expand([["no effusion"], [None], [["ok", 1]], [{"a": 1}]])
    def test_bad_input(self, value):
        with self.assertRaises(TypeError):
            RandSentenceSample()(value)

    @parameterized.expand(
        [
            [{"prob": 1.5}, ValueError],
            [{"prob": -0.1}, ValueError],
            [{"prob": float("nan")}, ValueError],
            [{"prob": "1"}, TypeError],
            [{"prob": True}, TypeError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            RandSentenceSample(**kwargs)


if __name__ == "__main__":
    unittest.main()
