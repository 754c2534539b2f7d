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
"""Tests of AFLocLoss (the sum of the global and the two local terms) and of the package's public names."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

import monai_afloc.losses
from monai_afloc.losses import AFLocLoss, GlobalContrastiveLoss, LocalContrastiveLoss
from monai_afloc.utils.enums import AFLocKeys, LossKeys


def make_outputs(batch=4, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)

    def leaf(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True)

    return {
        "image_words": leaf(batch, dim, 6, 6),
        "image_sentences": leaf(batch, dim, 3, 3),
        "image_report": leaf(batch, dim),
        "text_words": leaf(batch, dim, 10),
        "word_lengths": torch.tensor([10, 1, 6, 3])[:batch],
        "text_sentences": leaf(batch, dim, 10),
        "sentence_lengths": torch.tensor([2, 4, 1, 3])[:batch],
        "text_report": leaf(batch, dim),
        "unrelated_key": "ignored",
    }


class TestAFLocLoss(unittest.TestCase):
    def test_total_is_sum_of_terms(self):
        outputs = make_outputs()
        out = AFLocLoss(chunk_size=3)(**outputs)
        self.assertEqual(set(out), {k.value for k in LossKeys})
        expected_global = GlobalContrastiveLoss()(outputs["image_report"], outputs["text_report"])
        expected_sentence = LocalContrastiveLoss()(
            outputs["image_sentences"], outputs["text_sentences"], outputs["sentence_lengths"]
        )
        expected_word = LocalContrastiveLoss()(outputs["image_words"], outputs["text_words"], outputs["word_lengths"])
        torch.testing.assert_close(out[LossKeys.GLOBAL], expected_global)
        torch.testing.assert_close(out["sentence_loss"], expected_sentence)
        torch.testing.assert_close(out["word_loss"], expected_word)
        torch.testing.assert_close(out["loss"], expected_global + expected_sentence + expected_word)
        out["loss"].backward()
        for key in ("image_words", "image_sentences", "image_report", "text_words", "text_sentences", "text_report"):
            self.assertIsNotNone(outputs[key].grad, key)

    def test_weights_and_ablations(self):
        outputs = make_outputs(seed=1)
        full = AFLocLoss()(**outputs)
        weighted = AFLocLoss(global_weight=0.5, sentence_weight=2.0, word_weight=0.25)(**outputs)
        torch.testing.assert_close(
            weighted["loss"], 0.5 * full["global_loss"] + 2.0 * full["sentence_loss"] + 0.25 * full["word_loss"]
        )
        # global only: the local inputs may be absent, their terms are reported as 0
        global_only = {k: outputs[k] for k in (AFLocKeys.IMAGE_REPORT, AFLocKeys.TEXT_REPORT)}
        out = AFLocLoss(sentence_weight=0, word_weight=0)(**global_only)
        torch.testing.assert_close(out["loss"], full["global_loss"])
        self.assertEqual(float(out["sentence_loss"]), 0.0)
        self.assertEqual(float(out["word_loss"]), 0.0)
        # word + global
        out = AFLocLoss(sentence_weight=0.0)(**{k: v for k, v in outputs.items() if "sentence" not in k})
        torch.testing.assert_close(out["loss"], full["global_loss"] + full["word_loss"])



    def test_missing_key(self):
        outputs = make_outputs()
        del outputs["word_lengths"]
        with self.assertRaisesRegex(KeyError, "word_lengths"):
            AFLocLoss()(**outputs)

    @parameterized.expand(
        [
            [{"global_weight": -1.0}, ValueError],
            [{"word_weight": "1"}, TypeError],
            [{"global_weight": 0, "sentence_weight": 0, "word_weight": 0}, ValueError],
            [{"chunk_size": 0}, ValueError],
            [{"aggregation": "avg"}, ValueError],
            [{"logit_scale": -10.0}, ValueError],
            [{"rank": 3, "world_size": 2}, ValueError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            AFLocLoss(**kwargs)

    def test_bad_input_tensor(self):
        outputs = make_outputs()
        outputs["sentence_lengths"] = torch.tensor([2, 4, 11, 3])  # L = 10
        with self.assertRaisesRegex(ValueError, "1..10"):
            AFLocLoss()(**outputs)


class TestPublicNames(unittest.TestCase):
    def test_all(self):
        for name in monai_afloc.losses.__all__:
            self.assertTrue(hasattr(monai_afloc.losses, name), name)


if __name__ == "__main__":
    unittest.main()
