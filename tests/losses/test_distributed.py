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
"""
Cross-rank negatives, tested on one CPU process: ``distributed.gather_features`` is monkeypatched to return the
concatenation of per-rank leaf tensors, simulating 2 ranks. Rank ``r``'s loss must equal the cross-entropies of
the rows of rank ``r`` in the full-batch logits, and the mean over ranks the full-batch loss (values and gradients).
"""

from __future__ import annotations

import unittest
from unittest import mock

import torch
import torch.nn.functional as F
from parameterized import parameterized

from monai_afloc.losses import (
    AFLocLoss,
    GlobalContrastiveLoss,
    LocalContrastiveLoss,
    MILLocalContrastiveLoss,
    distributed,
    gather_features,
)

WORLD, BATCH = 2, 3


class FakeGather:
    """Stands for ``gather_features``: returns ``cat(parts)`` for the tensor that is ``parts[rank]``."""

    def __init__(self, *groups: list[torch.Tensor]):
        self.groups = groups
        self.calls = 0

    def __call__(self, tensor, rank, world_size):
        assert world_size == WORLD
        self.calls += 1
        for parts in self.groups:
            if parts[rank] is tensor:
                return torch.cat(parts, dim=0)
        raise AssertionError("gather_features called with a tensor that is not a rank's input")


def split(tensor: torch.Tensor) -> list[torch.Tensor]:
    return [part.detach().clone().requires_grad_(tensor.is_floating_point()) for part in tensor.split(BATCH)]


def rows_loss(logits: torch.Tensor, rank: int) -> torch.Tensor:
    """Rank ``rank``'s share of the full-batch loss: its rows of Z and of Z^T."""
    rows = slice(rank * BATCH, (rank + 1) * BATCH)
    labels = torch.arange(rank * BATCH, (rank + 1) * BATCH)
    return F.cross_entropy(logits[rows], labels) + F.cross_entropy(logits.t()[rows], labels)


class TestCrossRankNegatives(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(0)
        n = WORLD * BATCH
        self.images = torch.randn(n, 8, 4, 4, generator=g, dtype=torch.float64)
        self.texts = torch.randn(n, 8, 6, generator=g, dtype=torch.float64)
        self.lengths = torch.tensor([6, 1, 3, 2, 6, 4])
        self.img_vec = torch.randn(n, 8, generator=g, dtype=torch.float64)
        self.txt_vec = torch.randn(n, 8, generator=g, dtype=torch.float64)

    @parameterized.expand([(LocalContrastiveLoss,), (MILLocalContrastiveLoss,)])
    def test_local(self, loss_class):
        full_images = self.images.clone().requires_grad_(True)
        full_texts = self.texts.clone().requires_grad_(True)
        logits = loss_class().logits(full_images, full_texts, self.lengths)
        full_loss = loss_class()(full_images, full_texts, self.lengths)
        full_grads = torch.autograd.grad(full_loss, (full_images, full_texts))
        images, texts, lengths = split(self.images), split(self.texts), split(self.lengths)
        fake = FakeGather(images, texts, lengths)
        total = 0.0
        with mock.patch.object(distributed, "gather_features", fake):
            for rank in range(WORLD):
                loss = loss_class(rank=rank, world_size=WORLD, chunk_size=2)(
                    images[rank], texts[rank], lengths[rank]
                )
                torch.testing.assert_close(loss, rows_loss(logits.detach(), rank))
                total = total + loss
        self.assertEqual(fake.calls, 3 * WORLD)
        torch.testing.assert_close(total / WORLD, full_loss)
        (total / WORLD).backward()  # gradients through the (simulated) gather reach every rank's inputs
        torch.testing.assert_close(torch.cat([p.grad for p in images]), full_grads[0])
        torch.testing.assert_close(torch.cat([p.grad for p in texts]), full_grads[1])

    def test_global(self):
        full_img = self.img_vec.clone().requires_grad_(True)
        full_txt = self.txt_vec.clone().requires_grad_(True)
        full_loss = GlobalContrastiveLoss()(full_img, full_txt)
        full_grads = torch.autograd.grad(full_loss, (full_img, full_txt))
        logits = 10.0 * F.normalize(self.img_vec, dim=1) @ F.normalize(self.txt_vec, dim=1).t()
        img, txt = split(self.img_vec), split(self.txt_vec)
        total = 0.0
        with mock.patch.object(distributed, "gather_features", FakeGather(img, txt)):
            for rank in range(WORLD):
                loss = GlobalContrastiveLoss(rank=rank, world_size=WORLD)(img[rank], txt[rank])
                torch.testing.assert_close(loss, rows_loss(logits, rank))
                total = total + loss
        (total / WORLD).backward()
        torch.testing.assert_close(torch.cat([p.grad for p in img]), full_grads[0])
        torch.testing.assert_close(torch.cat([p.grad for p in txt]), full_grads[1])

    def test_afloc_loss_passes_rank(self):
        parts = {
            "image_words": split(self.images),
            "text_words": split(self.texts),
            "word_lengths": split(self.lengths),
            "image_report": split(self.img_vec),
            "text_report": split(self.txt_vec),
        }
        full = AFLocLoss(sentence_weight=0)(**{k: torch.cat(v) for k, v in parts.items()})
        with mock.patch.object(distributed, "gather_features", FakeGather(*parts.values())):
            losses = [
                AFLocLoss(sentence_weight=0, rank=r, world_size=WORLD)(**{k: v[r] for k, v in parts.items()})
                for r in range(WORLD)
            ]
        for key in ("loss", "global_loss", "word_loss"):
            torch.testing.assert_close(sum(out[key] for out in losses) / WORLD, full[key])


class TestGatherFeatures(unittest.TestCase):
    def test_single_rank_is_identity(self):
        x = torch.randn(2, 3)
        self.assertIs(gather_features(x, 0, 1), x)

    def test_ill_arg(self):
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            self.skipTest("a process group is initialised")
        with self.assertRaisesRegex(RuntimeError, "process group"):
            gather_features(torch.randn(2, 3), 0, 2)


if __name__ == "__main__":
    unittest.main()
