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
"""Tests of GlobalContrastiveLoss against a per-pair Python loop written here."""

from __future__ import annotations

import unittest

import torch
import torch.nn.functional as F
from parameterized import parameterized

from monai_afloc.losses import GlobalContrastiveLoss, cosine_similarity_matrix


def reference_global_loss(images, texts, scale=10.0, eps=1e-8):
    batch = images.shape[0]
    s = torch.stack(
        [
            torch.stack(
                [
                    scale * (images[i] @ texts[j]) / (images[i].norm() * texts[j].norm()).clamp(min=eps)
                    for j in range(batch)
                ]
            )
            for i in range(batch)
        ]
    )
    labels = torch.arange(batch)
    return F.cross_entropy(s, labels) + F.cross_entropy(s.t(), labels)


class TestGlobalContrastiveLoss(unittest.TestCase):
    @parameterized.expand([[{}, torch.float64], [{"logit_scale": 3.5}, torch.float64], [{}, torch.float32]])
    def test_parity_with_loop(self, kwargs, dtype):
        g = torch.Generator().manual_seed(0)
        images = torch.randn(6, 8, generator=g, dtype=dtype).requires_grad_(True)
        texts = torch.randn(6, 8, generator=g, dtype=dtype).requires_grad_(True)
        expected = reference_global_loss(images, texts, kwargs.get("logit_scale", 10.0))
        expected_grads = torch.autograd.grad(expected, (images, texts))
        loss = GlobalContrastiveLoss(**kwargs)(images, texts)
        grads = torch.autograd.grad(loss, (images, texts))
        tol = 1e-10 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(loss, expected, rtol=tol, atol=tol)
        for got, exp in zip(grads, expected_grads):
            torch.testing.assert_close(got, exp, rtol=tol, atol=tol)

    def test_zero_vector_and_half(self):
        images = torch.randn(3, 4)
        images[1] = 0
        loss = GlobalContrastiveLoss()(images.half(), torch.randn(3, 4).half())
        self.assertEqual(loss.dtype, torch.float32)
        self.assertTrue(torch.isfinite(loss))
        self.assertTrue(torch.all(cosine_similarity_matrix(images, torch.randn(2, 4))[1] == 0))

    @parameterized.expand(
        [
            [{"logit_scale": 0}, ValueError],
            [{"logit_scale": None}, TypeError],
            [{"eps": -1e-8}, ValueError],
            [{"rank": 1}, ValueError],
            [{"rank": 0, "world_size": 0}, ValueError],
            [{"rank": 0.0}, TypeError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            GlobalContrastiveLoss(**kwargs)

    def test_bad_inputs(self):
        loss = GlobalContrastiveLoss()
        x = torch.randn(4, 8)
        cases = [
            ((x, torch.randn(3, 8)), ValueError),
            ((x, torch.randn(4, 7)), ValueError),
            ((x[None], x[None]), ValueError),
            ((x, x.long()), TypeError),
            ((x, x.tolist()), TypeError),
            ((x[:0], x[:0]), ValueError),
        ]
        for args, error in cases:
            with self.subTest(error=error), self.assertRaises(error):
                loss(*args)


if __name__ == "__main__":
    unittest.main()


class TestGlobalUnderAutocast(unittest.TestCase):
    def test_float32_inside_autocast(self):
        g = torch.Generator().manual_seed(0)
        img, txt = torch.randn(5, 16, generator=g), torch.randn(5, 16, generator=g)
        expected = GlobalContrastiveLoss()(img, txt)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = GlobalContrastiveLoss()(img, txt)
        self.assertEqual(got.dtype, torch.float32)
        torch.testing.assert_close(got, expected)
