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
Local (region-word and region-sentence) image-text contrastive loss of AFLoc (DESIGN.md §4, "Local").

For image ``i`` with region features ``V_i`` (``D x R``, ``R = H * W``) and text ``j`` with its first ``n_j``
token features ``W_j`` (``D x n_j``):

1. ``A = V_i^T W_j`` (``R x n_j``); softmax over the words; times ``attention_scale``; softmax over the regions.
2. context ``C = V_i A``; ``s_w = cos(W_j[:, w], C[:, w])``.
3. ``score(i, j) = log sum_w exp(similarity_scale * s_w)``; logits ``Z[i, j] = logit_scale * score(i, j)``.
4. ``loss = CE(Z, arange) + CE(Z^T, arange)``.

All image-text pairs are computed at once with padding masks, ``chunk_size`` texts at a time, by a custom
autograd function that keeps only its inputs and recomputes each chunk in the backward pass with hand-written
gradients, so peak memory is bounded by the chunk (not by the batch) and the gradients equal the unchunked ones.

Mixed precision: under ``torch.autocast`` (CPU or CUDA) the four matrix products of each chunk that consume
attention weights or their gradients (the context in the forward pass, three products in the backward pass) run in
the autocast dtype (bfloat16 / float16, accumulating in float32), while the attention logits, both softmaxes, the
norms, the cosines, the log-sum-exp and the cross-entropy stay in float32. Outside autocast everything is float32, exactly
as before (the reference mode).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from monai.utils import StrEnum, look_up_option
from torch.autograd.function import once_differentiable
from torch.nn.modules.loss import _Loss

from monai_afloc.losses import distributed
from monai_afloc.losses._checks import (
    check_float_tensor,
    check_lengths,
    check_positive_int,
    check_positive_number,
    check_rank_world_size,
)

__all__ = ["LocalAggregation", "LocalContrastiveLoss", "local_similarities"]


class LocalAggregation(StrEnum):
    """How the per-word similarities of an image-text pair become one score (before ``logit_scale``)."""

    #: ``log sum_w exp(similarity_scale * s_w)`` (the reference)
    SUM = "sum"
    #: ``log mean_w exp(similarity_scale * s_w)``
    MEAN = "mean"
    #: ``max_w similarity_scale * s_w``
    MAX = "max"


def _plan_chunks(lengths: torch.Tensor, chunk_size: int) -> list[tuple[torch.Tensor, int]]:
    """
    Split the texts into chunks of ``chunk_size``, longest first, so each chunk is padded only to its own longest
    text. Returns ``(text indices, padded length)`` per chunk.
    """
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order].tolist()
    return [(order[s : s + chunk_size], sorted_lengths[s]) for s in range(0, len(sorted_lengths), chunk_size)]


def _chunk_state(
    regions: torch.Tensor,
    texts: torch.Tensor,
    mask: torch.Tensor,
    attention_scale: float,
    eps: float,
    keep: bool,
    mm_dtype: torch.dtype | None = None,
    regions_mm: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """
    Word-context cosine similarities of every image with a chunk of texts (no autograd).

    Args:
        regions: ``[Bi, D, R]``.
        texts: ``[c, D, Lc]``, zero beyond each text's length.
        mask: ``[c, Lc]`` bool, True for valid words.
        attention_scale: factor between the two softmaxes.
        eps: lower bound of the norm product of the cosine.
        keep: keep the intermediates the backward pass needs (else work in place and return ``s`` only).
        mm_dtype: dtype of the matrix products (``None``: the inputs' dtype); everything else stays in the inputs'
            dtype.
        regions_mm: ``regions`` already cast to ``mm_dtype`` (saves a cast per chunk).

    Returns:
        a dict with ``s`` ``[Bi, c * Lc]`` (index ``k = text * Lc + word``) and, when ``keep``: ``p``
        (softmax over words) and ``q`` (softmax over regions) ``[Bi, R, c * Lc]``, ``context`` ``[Bi, D, c * Lc]``,
        ``w`` ``[D, c * Lc]``, ``norm_context`` ``[Bi, c * Lc]``, ``norm_w`` ``[c * Lc]``, ``norm``, ``denom``.
    """
    n_img, dim, n_reg = regions.shape
    n_txt, _, n_pos = texts.shape
    k = n_txt * n_pos
    w = texts.permute(1, 0, 2).reshape(dim, k)
    # the attention logits stay float32 in every mode: their errors are amplified by the softmax over words
    att = torch.matmul(regions.transpose(1, 2), w)  # [Bi, R, k]
    if mm_dtype is not None and regions_mm is None:
        regions_mm = regions.to(mm_dtype)
    att4 = att.view(n_img, n_reg, n_txt, n_pos)
    att4.masked_fill_(~mask.view(1, 1, n_txt, n_pos), float("-inf"))
    att4.sub_(att4.amax(dim=-1, keepdim=True)).exp_()  # softmax over the words, in place
    att4.div_(att4.sum(dim=-1, keepdim=True))
    q = att * attention_scale if keep else att.mul_(attention_scale)
    q.sub_(q.amax(dim=1, keepdim=True)).exp_()  # softmax over the regions, in place
    q.div_(q.sum(dim=1, keepdim=True))
    if mm_dtype is None:
        context = torch.bmm(regions, q)  # [Bi, D, k]
    else:
        context = torch.bmm(regions_mm, q.to(mm_dtype)).to(regions.dtype)
    norm_context = torch.linalg.vector_norm(context, dim=1)
    norm_w = torch.linalg.vector_norm(w, dim=0)
    norm = norm_context * norm_w
    denom = norm.clamp(min=eps)
    if not keep:
        return {"s": context.mul_(w).sum(dim=1).div_(denom)}
    s = (context * w).sum(dim=1).div_(denom)
    return {
        "s": s,
        "p": att,
        "q": q,
        "context": context,
        "w": w,
        "norm_context": norm_context,
        "norm_w": norm_w,
        "norm": norm,
        "denom": denom,
    }


class _LocalSimilarityFunction(torch.autograd.Function):
    """Chunked all-pairs word-context cosines with recomputation in backward (see :func:`local_similarities`)."""

    @staticmethod
    def forward(ctx, regions, texts, lengths, attention_scale, eps, chunk_size, mm_dtype=None):
        n_img = regions.shape[0]
        n_txt, _, max_len = texts.shape
        plan = _plan_chunks(lengths, chunk_size)
        positions = torch.arange(max_len, device=texts.device)
        out = regions.new_zeros(n_img, n_txt, max_len)
        regions_mm = None if mm_dtype is None else regions.to(mm_dtype)
        for idx, n_pos in plan:
            mask = positions[:n_pos] < lengths[idx, None]
            s = _chunk_state(
                regions, texts[idx, :, :n_pos], mask, attention_scale, eps, keep=False, mm_dtype=mm_dtype,
                regions_mm=regions_mm,
            )["s"]
            out[:, idx, :n_pos] = s.view(n_img, idx.numel(), n_pos).masked_fill_(~mask, 0.0)
        ctx.save_for_backward(regions, texts, lengths)
        ctx.plan, ctx.attention_scale, ctx.eps, ctx.mm_dtype = plan, attention_scale, eps, mm_dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_s):
        regions, texts, lengths = ctx.saved_tensors
        need_regions, need_texts = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        a, eps, mm_dtype = ctx.attention_scale, ctx.eps, ctx.mm_dtype
        n_img, dim, n_reg = regions.shape
        tiny = torch.finfo(regions.dtype).tiny
        positions = torch.arange(texts.shape[2], device=texts.device)
        # the matrix products' operands: float32 (reference) or the autocast dtype (float32 accumulation)
        regions_mm = regions if mm_dtype is None else regions.to(mm_dtype)
        grad_regions = torch.zeros_like(regions) if need_regions else None
        grad_texts = torch.zeros_like(texts) if need_texts else None
        for idx, n_pos in ctx.plan:
            n_txt = idx.numel()
            k = n_txt * n_pos
            mask = positions[:n_pos] < lengths[idx, None]
            st = _chunk_state(regions, texts[idx, :, :n_pos], mask, a, eps, keep=True, mm_dtype=mm_dtype,
                              regions_mm=regions_mm)
            p, q, context, w, s = st["p"], st["q"], st["context"], st["w"], st["s"]
            g = grad_s[:, idx, :n_pos].reshape(n_img, k) * mask.reshape(1, k)
            # cosine s = <w, c> / max(|w| |c|, eps): ds/dc = w / denom - [unclamped] s c / |c|^2 (same for w)
            alpha = g / st["denom"]
            unclamped = st["norm"] > eps
            beta_context = torch.where(unclamped, g * s / st["norm_context"].square().clamp(min=tiny), 0.0)
            beta_w = torch.where(unclamped, g * s / st["norm_w"].square().clamp(min=tiny), 0.0)
            grad_w = None
            if need_texts:
                grad_w = (context * alpha[:, None, :]).sum(dim=0) - w * beta_w.sum(dim=0)
            grad_context = context.mul_(-beta_context[:, None, :]).addcmul_(alpha[:, None, :], w)
            if mm_dtype is not None:
                grad_context = grad_context.to(mm_dtype)
            del context, st
            # context = V q
            if need_regions:
                if mm_dtype is None:
                    grad_regions.baddbmm_(grad_context, q.transpose(1, 2))
                else:
                    grad_regions += torch.bmm(grad_context, q.to(mm_dtype).transpose(1, 2))
            grad_q = torch.bmm(regions_mm.transpose(1, 2), grad_context).to(regions.dtype)  # [Bi, R, k]
            del grad_context
            # q = softmax over regions of (a * p)
            grad_q.mul_(q)
            grad_q.sub_(q.mul_(grad_q.sum(dim=1, keepdim=True))).mul_(a)
            del q
            # p = softmax over the (valid) words of att
            grad_p4, p4 = grad_q.view(n_img, n_reg, n_txt, n_pos), p.view(n_img, n_reg, n_txt, n_pos)
            grad_p4.mul_(p4)
            grad_p4.sub_(p4.mul_(grad_p4.sum(dim=-1, keepdim=True)))
            grad_att = grad_q
            del p, p4, grad_p4, grad_q
            # att = V^T w
            if mm_dtype is None:
                if need_regions:
                    grad_regions.baddbmm_(w.expand(n_img, dim, k), grad_att.transpose(1, 2))
                if need_texts:
                    grad_w += torch.bmm(regions, grad_att).sum(dim=0)
            else:  # one product over the whole image batch: [D, k] @ [k, Bi * R] and [D, Bi * R] @ [Bi * R, k]
                grad_att = grad_att.to(mm_dtype).view(n_img * n_reg, k)
                if need_regions:
                    grad_regions += (w.to(mm_dtype) @ grad_att.t()).view(dim, n_img, n_reg).permute(1, 0, 2)
                if need_texts:
                    grad_w += regions_mm.permute(1, 0, 2).reshape(dim, n_img * n_reg) @ grad_att
            if need_texts:
                grad_texts[idx, :, :n_pos] = grad_w.view(dim, n_txt, n_pos).permute(1, 0, 2)
            del grad_att
        return grad_regions, grad_texts, None, None, None, None, None


def _autocast_dtype(tensor: torch.Tensor) -> torch.dtype | None:
    """The autocast dtype active for ``tensor``'s device type, or ``None`` outside autocast."""
    device_type = tensor.device.type
    if device_type not in ("cpu", "cuda") or not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


def _prepare_inputs(region_features, text_features, lengths, same_batch: bool):
    """Validate; return regions ``[Bi, D, R]``, masked texts ``[Bt, D, L]``, lengths int64 ``[Bt]``, mask."""
    check_float_tensor("region_features", region_features, 4, "[B, D, H, W]")
    check_float_tensor("text_features", text_features, 3, "[B, D, L]")
    if region_features.shape[1] != text_features.shape[1]:
        raise ValueError(
            "region_features [B, D, H, W] and text_features [B, D, L] must share D, got "
            f"{tuple(region_features.shape)} and {tuple(text_features.shape)}."
        )
    if same_batch and region_features.shape[0] != text_features.shape[0]:
        raise ValueError(
            "region_features and text_features must have the same batch size B (pair i is image i with text i), "
            f"got {region_features.shape[0]} and {text_features.shape[0]}."
        )
    if region_features.device != text_features.device:
        raise ValueError(f"inputs must be on one device, got {region_features.device} and {text_features.device}.")
    n_txt, _, max_len = text_features.shape
    lengths = check_lengths("lengths", lengths, n_txt, max_len, text_features.device)
    dtype = torch.promote_types(torch.promote_types(region_features.dtype, text_features.dtype), torch.float32)
    regions = region_features.flatten(2).to(dtype)
    mask = torch.arange(max_len, device=text_features.device) < lengths[:, None]
    texts = torch.where(mask[:, None, :], text_features.to(dtype), 0.0)
    return regions, texts, lengths, mask


def local_similarities(
    region_features: torch.Tensor,
    text_features: torch.Tensor,
    lengths: torch.Tensor,
    attention_scale: float = 4.0,
    eps: float = 1e-8,
    chunk_size: int = 8,
) -> torch.Tensor:
    """
    Cosine ``s[i, j, w]`` between word ``w`` of text ``j`` and its attention-weighted context in image ``i``
    (steps 1-2 of the module docstring), for every image-text pair, differentiable, computed ``chunk_size`` texts at
    a time with backward-pass recomputation (peak memory about ``3 * Bi * R * chunk_size * L`` floats).

    Args:
        region_features: ``[Bi, D, H, W]``.
        text_features: ``[Bt, D, L]``; positions at and beyond ``lengths[j]`` are ignored.
        lengths: ``[Bt]`` integers in ``1..L``.
        attention_scale: factor applied between the softmax over words and the softmax over regions.
        eps: lower bound of the norm product in the cosine.
        chunk_size: texts per chunk.

    Returns:
        ``[Bi, Bt, L]``, zero at ``w >= lengths[j]`` (float32 for half-precision inputs).

    Example::

        >>> s = local_similarities(torch.randn(2, 8, 3, 3), torch.randn(3, 8, 5), torch.tensor([5, 1, 3]))
        >>> s.shape
        torch.Size([2, 3, 5])
    """
    attention_scale = check_positive_number("attention_scale", attention_scale)
    eps = check_positive_number("eps", eps)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    regions, texts, lengths, _ = _prepare_inputs(region_features, text_features, lengths, same_batch=False)
    return _LocalSimilarityFunction.apply(regions, texts, lengths, attention_scale, eps, chunk_size)


def pairwise_cross_entropy(
    logits_fn, region_features: torch.Tensor, text_features: torch.Tensor, lengths, rank: int, world_size: int
) -> torch.Tensor:
    """
    ``CE(Z, labels) + CE(Z^T, labels)`` for pair logits ``Z = logits_fn(regions, texts, lengths)`` (images x texts),
    shared by the local losses. With ``world_size > 1`` the inputs of all ranks are gathered (with gradient):
    this rank's images are scored against all texts and this rank's texts against all images, with labels offset
    by ``rank * B``.
    """
    _, _, lengths, _ = _prepare_inputs(region_features, text_features, lengths, same_batch=True)
    batch = region_features.shape[0]
    labels = torch.arange(batch, device=region_features.device) + rank * batch
    if world_size == 1:
        logits_per_image = logits_fn(region_features, text_features, lengths)
        logits_per_text = logits_per_image.t()
    else:
        all_regions = distributed.gather_features(region_features, rank, world_size)
        all_texts = distributed.gather_features(text_features, rank, world_size)
        all_lengths = distributed.gather_features(lengths, rank, world_size)
        logits_per_image = logits_fn(region_features, all_texts, all_lengths)
        logits_per_text = logits_fn(all_regions, text_features, lengths).t()
    return F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)


class LocalContrastiveLoss(_Loss):
    """
    Local AFLoc contrastive loss between region features and word (or sentence) features, both directions summed
    (see the module docstring for the maths; each cross-entropy is averaged over its rows).

    With ``world_size > 1`` the inputs of all ranks are gathered (with gradient) through
    :func:`monai_afloc.losses.distributed.gather_features`; this rank's images are scored against all texts and
    this rank's texts against all images, with labels offset by ``rank * B`` (equal batch sizes on all ranks).

    Args:
        attention_scale: factor between the softmax over words and the softmax over regions (4 in the reference).
        similarity_scale: factor of the word cosines inside the log-sum-exp (5 in the reference).
        logit_scale: factor of the pair scores (10 in the reference).
        aggregation: ``"sum"`` (reference, log-sum-exp), ``"mean"`` (log-mean-exp) or ``"max"`` (see
            :class:`LocalAggregation`).
        chunk_size: texts per chunk; bounds peak memory (about ``3 * B * H * W * chunk_size * L`` floats); the
            result does not depend on it.
        eps: lower bound of the norm product in the cosine.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: the number of ranks sharing negatives.

    Raises:
        TypeError/ValueError: on invalid arguments (see each argument).

    Example::

        >>> loss = LocalContrastiveLoss()
        >>> regions, words = torch.randn(4, 16, 5, 5), torch.randn(4, 16, 12)
        >>> loss(regions, words, torch.tensor([12, 3, 7, 1])).shape
        torch.Size([])
    """

    def __init__(
        self,
        attention_scale: float = 4.0,
        similarity_scale: float = 5.0,
        logit_scale: float = 10.0,
        aggregation: LocalAggregation | str = LocalAggregation.SUM,
        chunk_size: int = 8,
        eps: float = 1e-8,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        self.attention_scale = check_positive_number("attention_scale", attention_scale)
        self.similarity_scale = check_positive_number("similarity_scale", similarity_scale)
        self.logit_scale = check_positive_number("logit_scale", logit_scale)
        if not isinstance(aggregation, str):
            raise TypeError(f"aggregation must be a str, got {type(aggregation).__name__}: {aggregation!r}.")
        self.aggregation = LocalAggregation(look_up_option(aggregation, LocalAggregation))
        self.chunk_size = check_positive_int("chunk_size", chunk_size)
        self.eps = check_positive_number("eps", eps)
        self.rank, self.world_size = check_rank_world_size(rank, world_size)

    def logits(self, region_features: torch.Tensor, text_features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """
        Pair logits ``Z[i, j] = logit_scale * score(i, j)`` for every image ``i`` and text ``j`` (no gathering).

        Args:
            region_features: ``[Bi, D, H, W]``.
            text_features: ``[Bt, D, L]``.
            lengths: ``[Bt]`` integers in ``1..L``.

        Returns:
            ``[Bi, Bt]``.
        """
        mm_dtype = _autocast_dtype(region_features)
        with torch.autocast(region_features.device.type, enabled=False) if mm_dtype is not None else nullcontext():
            regions, texts, lengths, mask = _prepare_inputs(
                region_features, text_features, lengths, same_batch=False
            )
            s = _LocalSimilarityFunction.apply(
                regions, texts, lengths, self.attention_scale, self.eps, self.chunk_size, mm_dtype
            )
            return self._aggregate(s, mask, lengths)

    def _aggregate(self, s: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[Bi, Bt, L]`` word cosines -> ``[Bi, Bt]`` pair logits (float32 like ``s``)."""
        x = (self.similarity_scale * s).masked_fill(~mask[None], float("-inf"))
        if self.aggregation == LocalAggregation.MAX:
            score = x.amax(dim=-1)
        else:
            score = torch.logsumexp(x, dim=-1)
            if self.aggregation == LocalAggregation.MEAN:
                score = score - lengths.to(score.dtype).log()[None, :]
        return self.logit_scale * score

    def forward(
        self, region_features: torch.Tensor, text_features: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """
        Args:
            region_features: ``[B, D, H, W]`` (e.g. ``AFLocKeys.IMAGE_WORDS`` or ``IMAGE_SENTENCES``).
            text_features: ``[B, D, L]`` (e.g. ``AFLocKeys.TEXT_WORDS`` or ``TEXT_SENTENCES``); text ``i`` matches
                image ``i``.
            lengths: ``[B]`` integer tensor (or list of ints) in ``1..L``: the valid positions of each text.

        Returns:
            the scalar loss.

        Raises:
            TypeError: non-tensor or non-floating-point features, non-integer lengths.
            ValueError: wrong ranks, mismatched ``B`` or ``D``, lengths outside ``1..L``, mixed devices.
        """
        return pairwise_cross_entropy(self.logits, region_features, text_features, lengths, self.rank, self.world_size)

    def attention_maps(
        self, region_features: torch.Tensor, text_features: torch.Tensor, lengths: torch.Tensor
    ) -> list[torch.Tensor]:
        """
        Attention of each matched pair ``(i, i)``: the softmax-over-regions ``A`` of step 1, reshaped.

        Args:
            region_features: ``[B, D, H, W]``.
            text_features: ``[B, D, L]``.
            lengths: ``[B]`` integers in ``1..L``.

        Returns:
            a list of ``B`` tensors ``[n_i, H, W]`` (``n_i = lengths[i]``), each map summing to 1 over ``H, W``.
            Gradients flow unless called under ``torch.no_grad()``.

        Example::

            >>> maps = LocalContrastiveLoss().attention_maps(torch.randn(2, 8, 3, 4), torch.randn(2, 8, 5), [5, 2])
            >>> [tuple(m.shape) for m in maps]
            [(5, 3, 4), (2, 3, 4)]
        """
        regions, texts, lengths, mask = _prepare_inputs(region_features, text_features, lengths, same_batch=True)
        att = torch.bmm(regions.transpose(1, 2), texts)  # [B, R, L]
        att = att.masked_fill(~mask[:, None, :], float("-inf")).softmax(dim=-1)
        att = (att * self.attention_scale).softmax(dim=1)
        maps = att.transpose(1, 2).reshape(texts.shape[0], texts.shape[2], *region_features.shape[2:])
        return [m[:n] for m, n in zip(maps.unbind(0), lengths.tolist())]
