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
"""Tests of MILLocalContrastiveLoss / mil_similarities against a per-pair Python loop written here."""

from __future__ import annotations

import math
import unittest

import torch
import torch.nn.functional as F
from parameterized import parameterized

from monai_afloc.losses import AFLocLoss, MILLocalContrastiveLoss, mil_similarities


def reference_logits(regions, texts, lengths, beta=10.0, scale=10.0, skip_first=True):
    """Z[i, j] by a double loop: mean over the text's positions of (1/beta) log mean_r exp(beta cos)."""
    rows = []
    for i in range(regions.shape[0]):
        v = regions[i].reshape(regions.shape[1], -1)
        row = []
        for j in range(texts.shape[0]):
            scores = []
            for w in range(int(skip_first), int(lengths[j])):
                cos = F.cosine_similarity(v, texts[j, :, w : w + 1], dim=0)  # [R]
                scores.append((torch.logsumexp(beta * cos, 0) - math.log(cos.numel())) / beta)
            row.append(scale * torch.stack(scores).mean() if scores else regions.new_zeros(()))
        rows.append(torch.stack(row))
    return torch.stack(rows)


class TestMILLocalContrastiveLoss(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(0)
        self.regions = torch.randn(4, 8, 3, 5, generator=g, dtype=torch.float64)
        self.texts = torch.randn(4, 8, 7, generator=g, dtype=torch.float64)
        self.lengths = torch.tensor([7, 2, 4, 1])  # the last text holds [CLS] only

    @parameterized.expand([(10.0, True, 2), (3.0, False, 1), (25.0, True, 8)])
    def test_matches_loop(self, beta, skip_first, chunk):
        loss = MILLocalContrastiveLoss(sharpness=beta, skip_first=skip_first, chunk_size=chunk)
        got = loss.logits(self.regions, self.texts, self.lengths)
        torch.testing.assert_close(got, reference_logits(self.regions, self.texts, self.lengths, beta, 10.0, skip_first))
        labels = torch.arange(4)
        expected = F.cross_entropy(got, labels) + F.cross_entropy(got.t(), labels)
        torch.testing.assert_close(loss(self.regions, self.texts, self.lengths), expected)

    def test_gradients(self):
        regions = self.regions.clone().requires_grad_(True)
        texts = self.texts.clone().requires_grad_(True)
        self.assertTrue(torch.autograd.gradcheck(lambda r, t: mil_similarities(r, t, self.lengths, 7.0, 3),
                                                 (regions, texts)))
        loss = MILLocalContrastiveLoss(chunk_size=2)(regions, texts, self.lengths)
        grads = torch.autograd.grad(loss, (regions, texts))
        r2, t2 = self.regions.clone().requires_grad_(True), self.texts.clone().requires_grad_(True)
        logits = reference_logits(r2, t2, self.lengths)
        labels = torch.arange(4)
        ref = F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)
        for a, b in zip(grads, torch.autograd.grad(ref, (r2, t2))):
            torch.testing.assert_close(a, b)

    def test_sharpness_limits(self):
        """Large beta: the best region's cosine; small beta: the mean cosine."""
        v, t = self.regions[:1], self.texts[:1, :, :2]
        cos = F.cosine_similarity(v.reshape(1, 8, -1, 1), t[:, :, None, :], dim=1)[0]  # [R, 2]
        sharp = mil_similarities(v, t, torch.tensor([2]), sharpness=1e4)[0, 0]
        soft = mil_similarities(v, t, torch.tensor([2]), sharpness=1e-4)[0, 0]
        torch.testing.assert_close(sharp, cos.amax(0), atol=1e-3, rtol=0)
        torch.testing.assert_close(soft, cos.mean(0), atol=1e-4, rtol=0)

    def test_localizes_the_right_region(self):
        """A text matched to one region of its image pulls that region, not the others, towards it."""
        regions = torch.zeros(2, 4, 2, 2)
        regions[:, 0] = 1.0  # every region starts alike
        regions[0, 1, 1, 1] = 0.5  # image 0: one region already a little like word 1
        regions.requires_grad_(True)
        texts = torch.zeros(2, 4, 2)
        texts[0, 1, 1] = 1.0
        texts[1, 2, 1] = 1.0
        MILLocalContrastiveLoss(sharpness=20.0)(regions, texts, torch.tensor([2, 2])).backward()
        grad = -regions.grad[0, 1]  # descent direction on the word-1 channel of image 0
        self.assertEqual(int(grad.argmax()), 3)  # the region that matches best gets the largest push
        self.assertGreater(float(grad.flatten()[3]), 5 * float(grad.flatten()[:3].abs().max()))

    def test_autocast_bf16_close_to_float32(self):
        g = torch.Generator().manual_seed(1)
        regions = torch.randn(8, 32, 6, 6, generator=g)
        texts = torch.randn(8, 32, 9, generator=g)
        lengths = torch.tensor([9, 3, 5, 2, 9, 7, 4, 6])
        loss = MILLocalContrastiveLoss()
        r32, r16 = regions.clone().requires_grad_(True), regions.clone().requires_grad_(True)
        l32 = loss(r32, texts, lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            l16 = loss(r16, texts, lengths)
        self.assertEqual(l16.dtype, torch.float32)
        torch.testing.assert_close(l16, l32, atol=0.02 * float(l32), rtol=0)
        l32.backward()
        l16.backward()
        rel = float((r16.grad - r32.grad).norm() / r32.grad.norm())
        self.assertLess(rel, 0.05)

    def test_afloc_loss_local_mode(self):
        out = {
            "image_words": self.regions, "text_words": self.texts, "word_lengths": self.lengths,
            "image_sentences": self.regions[:, :, :2], "text_sentences": self.texts[:, :, :3],
            "sentence_lengths": torch.tensor([3, 2, 2, 1]),
            "image_report": self.regions.mean((2, 3)), "text_report": self.texts.mean(2),
        }
        total = AFLocLoss(local_mode="mil", mil_sharpness=5.0)(**out)
        mil = MILLocalContrastiveLoss(sharpness=5.0)
        torch.testing.assert_close(total["word_loss"], mil(self.regions, self.texts, self.lengths))
        torch.testing.assert_close(total["sentence_loss"], mil(out["image_sentences"], out["text_sentences"],
                                                                out["sentence_lengths"]))
        with self.assertRaises(ValueError):
            AFLocLoss(local_mode="max")

    @parameterized.expand(
        [
            ({"sharpness": 0}, ValueError),
            ({"logit_scale": -1}, ValueError),
            ({"chunk_size": 0}, ValueError),
            ({"skip_first": 1}, TypeError),
            ({"rank": 2, "world_size": 2}, ValueError),
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            MILLocalContrastiveLoss(**kwargs)

    def test_bad_inputs(self):
        loss = MILLocalContrastiveLoss()
        with self.assertRaises(ValueError):
            loss(self.regions, self.texts[:3], self.lengths[:3])  # batch sizes differ
        with self.assertRaises(ValueError):
            loss(self.regions, self.texts[:, :4], self.lengths)  # D differs
        with self.assertRaises(ValueError):
            loss(self.regions, self.texts, torch.tensor([8, 1, 1, 1]))  # a length beyond L
        with self.assertRaises(TypeError):
            loss(self.regions.long(), self.texts, self.lengths)


if __name__ == "__main__":
    unittest.main()
