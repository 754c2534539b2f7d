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
A multiple-instance variant of AFLoc's local loss (not in the reference; an option of :class:`AFLocLoss`).

For image ``i`` with regions ``v_r`` and text ``j`` with token (word or sentence) features ``t_w``:

1. ``c[r, w] = cos(v_r, t_w)`` for every region and every valid position ``w`` (``1 <= w < lengths[j]``: the
   ``[CLS]`` slot 0 is skipped by default, and the lengths of :class:`~monai_afloc.networks.nets.AFLocTextEncoder`
   already leave out ``[SEP]``);
2. ``m_w = (1 / beta) · log mean_r exp(beta · c[r, w])``: a smooth maximum over the regions (``beta`` → ∞: the best
   region; ``beta`` → 0: the mean) — each word or sentence must be found *somewhere* in the image;
3. ``score(i, j) = mean_w m_w``; ``Z[i, j] = logit_scale · score(i, j)``; ``loss = CE(Z) + CE(Z^T)``.

Why: in the reference local loss the attention over regions comes from a softmax over the text's words (times 4),
which ``[CLS]`` wins in every region of a freshly initialised model, leaving every other word a uniform attention
and no gradient towards a place (measured on the synthetic demo; see the bundle's docs/experiments.md). Here each
position's gradient goes to the regions that match it best (their softmax weights), which is the classic
multiple-instance route to localization, and the similarity is the one a prompt heatmap shows (with
``normalize_regions`` region embeddings, the heatmap is the cosine up to the prompt's norm).

All pairs are computed ``chunk_size`` texts at a time by a custom autograd function that keeps only its inputs and
recomputes each chunk's similarities in backward (memory bounded by the chunk). Under ``torch.autocast`` the three
matrix products per chunk run in the autocast dtype (float32 accumulation); the log-sum-exp, its softmax and the
cross-entropy stay float32.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.nn.modules.loss import _Loss

from monai_afloc.losses._checks import check_positive_int, check_positive_number, check_rank_world_size
from monai_afloc.losses.local_contrastive import (
    _autocast_dtype,
    _plan_chunks,
    _prepare_inputs,
    pairwise_cross_entropy,
)

__all__ = ["MILLocalContrastiveLoss", "mil_similarities"]


def _chunk_similarities(regions_mm: torch.Tensor, w: torch.Tensor, mm_dtype: torch.dtype | None) -> torch.Tensor:
    """``[Bi, D, R]`` regions (unit norm, in the product dtype) x ``[D, k]`` texts -> cosines ``[Bi, R, k]`` in the
    texts' dtype (float32, or float64 for checks)."""
    if mm_dtype is None:
        return torch.matmul(regions_mm.transpose(1, 2), w)
    return torch.matmul(regions_mm.transpose(1, 2), w.to(mm_dtype)).to(w.dtype)


class _MILSimilarityFunction(torch.autograd.Function):
    """``m[i, j, w] = (1/beta) log mean_r exp(beta cos(v_r^i, t_w^j))`` for unit-norm inputs, chunked."""

    @staticmethod
    def forward(ctx, regions, texts, lengths, beta, chunk_size, mm_dtype=None):
        n_img, dim, n_reg = regions.shape
        n_txt, _, max_len = texts.shape
        plan = _plan_chunks(lengths, chunk_size)
        regions_mm = regions if mm_dtype is None else regions.to(mm_dtype)
        out = regions.new_zeros(n_img, n_txt, max_len)
        offset = math.log(n_reg)
        for idx, n_pos in plan:
            w = texts[idx, :, :n_pos].permute(1, 0, 2).reshape(dim, -1)  # [D, c * n_pos]
            sim = _chunk_similarities(regions_mm, w, mm_dtype)
            m = (torch.logsumexp(sim.mul_(beta), dim=1) - offset) / beta  # [Bi, c * n_pos]
            out[:, idx, :n_pos] = m.view(n_img, idx.numel(), n_pos)
        ctx.save_for_backward(regions, texts)
        ctx.plan, ctx.beta, ctx.mm_dtype = plan, beta, mm_dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        regions, texts = ctx.saved_tensors
        beta, mm_dtype = ctx.beta, ctx.mm_dtype
        n_img, dim, n_reg = regions.shape
        regions_mm = regions if mm_dtype is None else regions.to(mm_dtype)
        grad_regions = torch.zeros_like(regions) if ctx.needs_input_grad[0] else None
        grad_texts = torch.zeros_like(texts) if ctx.needs_input_grad[1] else None
        for idx, n_pos in ctx.plan:
            w = texts[idx, :, :n_pos].permute(1, 0, 2).reshape(dim, -1)
            sim = _chunk_similarities(regions_mm, w, mm_dtype).mul_(beta)
            # d m / d cos = softmax over the regions of beta * cos
            weights = sim.softmax(dim=1).mul_(grad_out[:, idx, :n_pos].reshape(n_img, 1, -1))  # [Bi, R, k]
            del sim
            g_mm = weights if mm_dtype is None else weights.to(mm_dtype)
            if grad_regions is not None:
                w_mm = w if mm_dtype is None else w.to(mm_dtype)
                grad_regions += torch.matmul(w_mm, g_mm.transpose(1, 2)).to(regions.dtype)  # [Bi, D, R]
            if grad_texts is not None:
                gw = regions_mm.permute(1, 0, 2).reshape(dim, n_img * n_reg) @ g_mm.reshape(n_img * n_reg, -1)
                grad_texts[idx, :, :n_pos] = gw.to(texts.dtype).view(dim, idx.numel(), n_pos).permute(1, 0, 2)
        return grad_regions, grad_texts, None, None, None, None


def mil_similarities(
    region_features: torch.Tensor,
    text_features: torch.Tensor,
    lengths: torch.Tensor,
    sharpness: float = 10.0,
    chunk_size: int = 8,
    eps: float = 1e-8,
) -> torch.Tensor:
    """
    ``m[i, j, w] = (1/sharpness) log mean_r exp(sharpness · cos(v_r^i, t_w^j))`` for every image ``i``, text ``j``
    and position ``w < lengths[j]`` (0 elsewhere), differentiable (see the module docstring).

    Args:
        region_features: ``[Bi, D, H, W]``.
        text_features: ``[Bt, D, L]``.
        lengths: ``[Bt]`` integers in ``1..L``.
        sharpness: ``beta`` > 0 of the smooth maximum.
        chunk_size: texts per chunk.
        eps: lower bound of the norms in the cosine.

    Returns:
        ``[Bi, Bt, L]`` float32.

    Example::

        >>> m = mil_similarities(torch.randn(2, 8, 3, 3), torch.randn(3, 8, 5), torch.tensor([5, 1, 3]))
        >>> m.shape
        torch.Size([2, 3, 5])
    """
    sharpness = check_positive_number("sharpness", sharpness)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    eps = check_positive_number("eps", eps)
    mm_dtype = _autocast_dtype(region_features)
    with torch.autocast(region_features.device.type, enabled=False) if mm_dtype is not None else nullcontext():
        regions, texts, lengths, mask = _prepare_inputs(region_features, text_features, lengths, same_batch=False)
        regions = F.normalize(regions, dim=1, eps=eps)
        texts = F.normalize(texts, dim=1, eps=eps)
        m = _MILSimilarityFunction.apply(regions, texts, lengths, sharpness, chunk_size, mm_dtype)
        return m.masked_fill(~mask[None], 0.0)


class MILLocalContrastiveLoss(_Loss):
    """
    Multiple-instance local contrastive loss (module docstring): each word or sentence of a text is matched to its
    best regions of an image by a smooth maximum of cosines; the pair score is their mean; both directions of the
    cross-entropy are summed.

    Args:
        sharpness: ``beta`` of the smooth maximum over regions (10: a cosine 0.1 above another weighs e times more).
        logit_scale: factor of the pair scores (10, as the reference local loss).
        skip_first: leave out position 0 (``[CLS]``) of every text (True): it is the same token in every text, so it
            carries no pair-specific signal.
        chunk_size: texts per chunk (bounds memory; no effect on the result).
        eps: lower bound of the norms in the cosines.
        rank, world_size: as :class:`~monai_afloc.losses.LocalContrastiveLoss` (cross-rank negatives).

    Raises:
        TypeError/ValueError: on invalid arguments or inputs (see :class:`~monai_afloc.losses.LocalContrastiveLoss`).

    Example::

        >>> loss = MILLocalContrastiveLoss()
        >>> loss(torch.randn(4, 16, 5, 5), torch.randn(4, 16, 12), torch.tensor([12, 3, 7, 2])).shape
        torch.Size([])
    """

    def __init__(
        self,
        sharpness: float = 10.0,
        logit_scale: float = 10.0,
        skip_first: bool = True,
        chunk_size: int = 8,
        eps: float = 1e-8,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        self.sharpness = check_positive_number("sharpness", sharpness)
        self.logit_scale = check_positive_number("logit_scale", logit_scale)
        if not isinstance(skip_first, bool):
            raise TypeError(f"skip_first must be a bool, got {type(skip_first).__name__}: {skip_first!r}.")
        self.skip_first = skip_first
        self.chunk_size = check_positive_int("chunk_size", chunk_size)
        self.eps = check_positive_number("eps", eps)
        self.rank, self.world_size = check_rank_world_size(rank, world_size)

    def logits(self, region_features: torch.Tensor, text_features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pair logits ``Z[i, j] = logit_scale · mean_w m_w`` ``[Bi, Bt]`` (no gathering)."""
        m = mil_similarities(region_features, text_features, lengths, self.sharpness, self.chunk_size, self.eps)
        n_pos = m.shape[-1]
        positions = torch.arange(n_pos, device=m.device)
        lengths = torch.as_tensor(lengths, device=m.device)
        valid = (positions[None] < lengths[:, None]) & (positions[None] >= int(self.skip_first))
        weights = valid.to(m.dtype) / valid.sum(1, keepdim=True).clamp_min(1).to(m.dtype)  # [CLS] alone scores 0
        return self.logit_scale * torch.einsum("ijw,jw->ij", m, weights)

    def forward(
        self, region_features: torch.Tensor, text_features: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """
        Args:
            region_features: ``[B, D, H, W]``.
            text_features: ``[B, D, L]``; text ``i`` matches image ``i``.
            lengths: ``[B]`` integers in ``1..L``.

        Returns:
            the scalar loss.
        """
        return pairwise_cross_entropy(self.logits, region_features, text_features, lengths, self.rank, self.world_size)
