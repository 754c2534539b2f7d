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
"""Tests of LocalContrastiveLoss / local_similarities against a plain per-pair Python loop written here."""

from __future__ import annotations

import unittest

import torch
import torch.nn.functional as F
from parameterized import parameterized

from monai_afloc.losses import LocalAggregation, LocalContrastiveLoss, local_similarities


def reference_pair_similarities(v: torch.Tensor, w: torch.Tensor, a: float = 4.0, eps: float = 1e-8) -> torch.Tensor:
    """Word-context cosines of one pair, exactly as DESIGN.md §4 reads: v [D, H, W], w [D, n] -> [n]."""
    v = v.reshape(v.shape[0], -1)  # D x R
    att = v.t() @ w  # R x n
    att = torch.softmax(att, dim=1)  # over the words
    att = torch.softmax(att * a, dim=0)  # over the regions
    context = v @ att  # D x n
    dots = (w * context).sum(dim=0)
    return dots / (w.norm(dim=0) * context.norm(dim=0)).clamp(min=eps)


def reference_logits(regions, texts, lengths, a=4.0, b=5.0, t=10.0, aggregation="sum", eps=1e-8):
    """Z[i, j] by a double Python loop over images and texts (clarity over speed)."""
    rows = []
    for i in range(regions.shape[0]):
        row = []
        for j in range(texts.shape[0]):
            n = int(lengths[j])
            s = reference_pair_similarities(regions[i], texts[j, :, :n], a, eps)
            if aggregation == "sum":
                score = torch.log(torch.exp(b * s).sum())
            elif aggregation == "mean":
                score = torch.log(torch.exp(b * s).mean())
            else:
                score = (b * s).max()
            row.append(t * score)
        rows.append(torch.stack(row))
    return torch.stack(rows)


def reference_loss(regions, texts, lengths, **kwargs) -> torch.Tensor:
    z = reference_logits(regions, texts, lengths, **kwargs)
    labels = torch.arange(z.shape[0])
    return F.cross_entropy(z, labels) + F.cross_entropy(z.t(), labels)


def make_inputs(batch=5, dim=6, h=3, w=4, length=7, lengths=(7, 1, 3, 7, 2), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    regions = torch.randn(batch, dim, h, w, generator=g, dtype=dtype).requires_grad_(True)
    texts = torch.randn(batch, dim, length, generator=g, dtype=dtype).requires_grad_(True)
    return regions, texts, torch.tensor(lengths)


class TestLocalContrastiveLoss(unittest.TestCase):
    @parameterized.expand(
        [
            [{"chunk_size": 1}, "sum"],
            [{"chunk_size": 3}, "sum"],
            [{"chunk_size": 8}, "sum"],
            [{"chunk_size": 2}, "mean"],
            [{"chunk_size": 3}, "max"],
            [{"chunk_size": 2, "attention_scale": 2.5, "similarity_scale": 3.0, "logit_scale": 7.0}, "sum"],
        ]
    )
    def test_parity_with_loop(self, kwargs, aggregation):
        regions, texts, lengths = make_inputs()
        ref_kwargs = {
            "a": kwargs.get("attention_scale", 4.0),
            "b": kwargs.get("similarity_scale", 5.0),
            "t": kwargs.get("logit_scale", 10.0),
            "aggregation": aggregation,
        }
        expected = reference_loss(regions, texts, lengths, **ref_kwargs)
        expected_grads = torch.autograd.grad(expected, (regions, texts))
        loss = LocalContrastiveLoss(aggregation=aggregation, **kwargs)(regions, texts, lengths)
        grads = torch.autograd.grad(loss, (regions, texts))
        torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-10)
        for got, exp in zip(grads, expected_grads):
            torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-10)
        # logits too (not only their cross-entropy)
        logits = LocalContrastiveLoss(aggregation=aggregation, **kwargs).logits(regions, texts, lengths)
        torch.testing.assert_close(logits, reference_logits(regions, texts, lengths, **ref_kwargs))

    def test_parity_float32(self):
        regions, texts, lengths = make_inputs(
            batch=6, dim=16, h=5, w=5, length=9, lengths=(9, 1, 4, 9, 2, 6), dtype=torch.float32, seed=1
        )
        expected = reference_loss(regions, texts, lengths)
        expected_grads = torch.autograd.grad(expected, (regions, texts))
        loss = LocalContrastiveLoss(chunk_size=4)(regions, texts, lengths)
        grads = torch.autograd.grad(loss, (regions, texts))
        self.assertEqual(loss.dtype, torch.float32)
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
        for got, exp in zip(grads, expected_grads):
            torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-5)

    def test_autocast_bfloat16_products_close_to_float32(self):
        # under CPU autocast the attention-weighted products run in bfloat16, the rest in float32
        regions, texts, lengths = make_inputs(
            batch=6, dim=32, h=5, w=5, length=9, lengths=(9, 1, 4, 9, 2, 6), dtype=torch.float32, seed=3
        )
        loss_fn = LocalContrastiveLoss(chunk_size=4)
        expected = reference_loss(regions.double(), texts.double(), lengths)
        expected_grads = torch.autograd.grad(expected, (regions, texts))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn(regions, texts, lengths)
            logits = loss_fn.logits(regions, texts, lengths)
        self.assertEqual((loss.dtype, logits.dtype), (torch.float32, torch.float32))
        grads = torch.autograd.grad(loss, (regions, texts))
        self.assertLess(abs(float(loss) - float(expected)) / abs(float(expected)), 1e-2)
        for got, exp in zip(grads, expected_grads):
            rel = float((got.double() - exp).norm() / exp.norm())
            self.assertLess(rel, 5e-2)
        # the float32 path outside autocast is untouched: bit-identical to itself, exact against the loop
        plain = loss_fn(regions, texts, lengths)
        self.assertNotEqual(float(plain), float(loss))
        torch.testing.assert_close(plain.double(), expected, rtol=1e-5, atol=1e-5)

    def test_chunk_size_invariance(self):
        regions, texts, lengths = make_inputs(batch=7, lengths=(1, 7, 4, 2, 7, 5, 3), seed=2)
        results = []
        for chunk_size in (1, 3, 7, 20):
            loss = LocalContrastiveLoss(chunk_size=chunk_size)(regions, texts, lengths)
            results.append((loss, *torch.autograd.grad(loss, (regions, texts))))
        for other in results[1:]:
            for got, exp in zip(other, results[0]):
                torch.testing.assert_close(got, exp, rtol=1e-12, atol=1e-12)

    def test_padding_is_ignored(self):
        regions, texts, lengths = make_inputs(seed=3)
        loss = LocalContrastiveLoss()(regions, texts, lengths)
        g_regions, g_texts = torch.autograd.grad(loss, (regions, texts))
        padded = torch.arange(texts.shape[2])[None, None, :] >= lengths[:, None, None]
        garbage = texts.detach().masked_fill(padded, float("nan"))
        garbage[:, :3] = garbage[:, :3].masked_fill(padded, 1e6)  # NaN and huge values in the padding
        garbage.requires_grad_(True)
        loss2 = LocalContrastiveLoss()(regions, garbage, lengths)
        g_regions2, g_texts2 = torch.autograd.grad(loss2, (regions, garbage))
        torch.testing.assert_close(loss2, loss)
        torch.testing.assert_close(g_regions2, g_regions)
        torch.testing.assert_close(g_texts2, g_texts)
        self.assertTrue(torch.all(g_texts2[padded.expand_as(g_texts2)] == 0))

    def test_one_input_needs_grad_and_no_grad(self):
        regions, texts, lengths = make_inputs(seed=4)
        full = torch.autograd.grad(LocalContrastiveLoss()(regions, texts, lengths), (regions, texts))
        (only_regions,) = torch.autograd.grad(LocalContrastiveLoss()(regions, texts.detach(), lengths), (regions,))
        (only_texts,) = torch.autograd.grad(LocalContrastiveLoss()(regions.detach(), texts, lengths), (texts,))
        torch.testing.assert_close(only_regions, full[0])
        torch.testing.assert_close(only_texts, full[1])
        with torch.no_grad():
            value = LocalContrastiveLoss()(regions, texts, lengths)
        self.assertFalse(value.requires_grad)

    def test_half_precision_and_list_lengths(self):
        regions, texts, lengths = make_inputs(dtype=torch.float32, seed=5)
        expected = LocalContrastiveLoss()(regions, texts, lengths)
        loss = LocalContrastiveLoss()(regions.bfloat16(), texts.bfloat16(), lengths.tolist())
        self.assertEqual(loss.dtype, torch.float32)
        torch.testing.assert_close(loss, expected, rtol=0.05, atol=0.05)

    def test_zero_features_give_no_nan(self):
        regions, texts, lengths = make_inputs(seed=6)
        zeros_r = torch.zeros_like(regions, requires_grad=True)
        loss = LocalContrastiveLoss()(zeros_r, texts, lengths)
        grads = torch.autograd.grad(loss, (zeros_r, texts))
        self.assertTrue(torch.isfinite(loss))
        self.assertTrue(all(torch.isfinite(g).all() for g in grads))
        # zero context -> every cosine is 0 -> Z[i, j] = 10 log n_j
        torch.testing.assert_close(loss, reference_loss(zeros_r.detach(), texts.detach(), lengths))

    def test_batch_of_one(self):
        regions, texts, lengths = make_inputs(batch=1, lengths=(4,), seed=7)
        loss = LocalContrastiveLoss()(regions, texts, lengths)
        self.assertEqual(loss.detach().item(), 0.0)

    def test_backward_keeps_no_all_pairs_tensor(self):
        """Only O(inputs + B*B*L) is saved for backward, never a B*B*R*L attention tensor."""
        batch, dim, h, w, length = 8, 16, 12, 12, 20
        regions, texts, _ = make_inputs(batch, dim, h, w, length, lengths=(20,) * 8, dtype=torch.float32)
        lengths = torch.tensor([20, 1, 5, 20, 13, 9, 2, 17])
        saved = []

        def pack(x):
            saved.append(x.numel() * x.element_size())
            return x

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            loss = LocalContrastiveLoss(chunk_size=2)(regions, texts, lengths)
        loss.backward()
        pair_attention_bytes = batch * batch * h * w * length * 4
        input_bytes = (regions.numel() + texts.numel()) * 4
        self.assertLess(sum(saved), input_bytes + pair_attention_bytes // 4)

    @parameterized.expand(
        [
            [{"attention_scale": 0.0}, ValueError],
            [{"similarity_scale": -1.0}, ValueError],
            [{"logit_scale": float("inf")}, ValueError],
            [{"logit_scale": "10"}, TypeError],
            [{"aggregation": "median"}, ValueError],
            [{"aggregation": 1}, TypeError],
            [{"chunk_size": 0}, ValueError],
            [{"chunk_size": 2.0}, TypeError],
            [{"eps": 0.0}, ValueError],
            [{"rank": 2, "world_size": 2}, ValueError],
            [{"rank": -1}, ValueError],
            [{"world_size": 0}, ValueError],
            [{"world_size": True}, TypeError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            LocalContrastiveLoss(**kwargs)

    def test_aggregation_enum(self):
        self.assertEqual(LocalContrastiveLoss(aggregation=LocalAggregation.MEAN).aggregation, "mean")

    @parameterized.expand(
        [
            ["length_above_L", (8, 3, 3, 3, 3)],
            ["length_zero", (0, 3, 3, 3, 3)],
            ["length_negative", (3, 3, -1, 3, 3)],
        ]
    )
    def test_bad_lengths_values(self, _, lengths):
        regions, texts, _ = make_inputs()
        with self.assertRaisesRegex(ValueError, "1..7"):
            LocalContrastiveLoss()(regions, texts, torch.tensor(lengths))

    def test_bad_inputs(self):
        regions, texts, lengths = make_inputs()
        loss = LocalContrastiveLoss()
        cases = [
            ((regions, texts, lengths.float()), TypeError),  # float lengths
            ((regions, texts, lengths > 0), TypeError),  # bool lengths
            ((regions, texts, [1.0, 2.0, 3.0, 4.0, 5.0]), TypeError),
            ((regions, texts, "12345"), TypeError),
            ((regions, texts, lengths[:4]), ValueError),  # wrong shape
            ((regions, texts, lengths[None]), ValueError),
            ((regions[:4], texts, lengths), ValueError),  # batch mismatch
            ((regions, texts[:, :5], lengths), ValueError),  # D mismatch
            ((regions.flatten(2), texts, lengths), ValueError),  # 3-D regions
            ((regions, texts[..., None], lengths), ValueError),  # 4-D texts
            ((regions.long(), texts, lengths), TypeError),
            ((regions, texts.detach().numpy(), lengths), TypeError),
            ((regions[:, :, :0], texts, lengths), ValueError),  # empty
        ]
        for args, error in cases:
            with self.subTest(error=error), self.assertRaises(error):
                loss(*args)


class TestLocalSimilarities(unittest.TestCase):
    def test_values_and_padding(self):
        regions, texts, lengths = make_inputs(batch=3, lengths=(7, 1, 4), seed=8)
        other_texts = texts[:2].detach()  # Bi != Bt
        s = local_similarities(regions, other_texts, lengths[:2], chunk_size=1)
        self.assertEqual(tuple(s.shape), (3, 2, 7))
        for i in range(3):
            for j in range(2):
                n = int(lengths[j])
                expected = reference_pair_similarities(regions[i], other_texts[j, :, :n])
                torch.testing.assert_close(s[i, j, :n], expected)
                self.assertTrue(torch.all(s[i, j, n:] == 0))

    def test_ill_arg(self):
        regions, texts, lengths = make_inputs()
        with self.assertRaises(ValueError):
            local_similarities(regions, texts, lengths, chunk_size=0)
        with self.assertRaises(ValueError):
            local_similarities(regions, texts, lengths, attention_scale=-4.0)


class TestAttentionMaps(unittest.TestCase):
    def test_maps(self):
        regions, texts, lengths = make_inputs(seed=9)
        maps = LocalContrastiveLoss(attention_scale=3.0).attention_maps(regions, texts, lengths)
        self.assertEqual(len(maps), 5)
        for i, m in enumerate(maps):
            n = int(lengths[i])
            self.assertEqual(tuple(m.shape), (n, 3, 4))
            torch.testing.assert_close(m.sum(dim=(1, 2)), torch.ones(n, dtype=m.dtype))
            v = regions[i].reshape(6, -1)
            expected = torch.softmax(torch.softmax(v.t() @ texts[i, :, :n], dim=1) * 3.0, dim=0)
            torch.testing.assert_close(m, expected.t().reshape(n, 3, 4))


    def test_ill_arg(self):
        regions, texts, lengths = make_inputs()
        with self.assertRaises(ValueError):
            LocalContrastiveLoss().attention_maps(regions, texts, lengths + 1)
        with self.assertRaises(ValueError):
            LocalContrastiveLoss().attention_maps(regions[:2], texts, lengths)


if __name__ == "__main__":
    unittest.main()
