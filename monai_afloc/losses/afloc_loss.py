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

"""The full AFLoc training loss: global + sentence-level local + word-level local (DESIGN.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from monai.utils import look_up_option
from torch.nn.modules.loss import _Loss

from monai_afloc.losses._checks import check_nonnegative_number
from monai_afloc.losses.global_contrastive import GlobalContrastiveLoss
from monai_afloc.losses.local_contrastive import LocalAggregation, LocalContrastiveLoss
from monai_afloc.losses.local_mil import MILLocalContrastiveLoss
from monai_afloc.utils.enums import AFLocKeys, LossKeys

__all__ = ["AFLocLoss"]

#: local loss term -> (its name in messages, region key, text key, length key)
_LOCAL_TERMS = {
    LossKeys.SENTENCE: ("sentence", AFLocKeys.IMAGE_SENTENCES, AFLocKeys.TEXT_SENTENCES, AFLocKeys.SENTENCE_LENGTHS),
    LossKeys.WORD: ("word", AFLocKeys.IMAGE_WORDS, AFLocKeys.TEXT_WORDS, AFLocKeys.WORD_LENGTHS),
}


class AFLocLoss(_Loss):
    """
    ``loss = global_weight * global(image_report, text_report)
    + sentence_weight * local(image_sentences, text_sentences, sentence_lengths)
    + word_weight * local(image_words, text_words, word_lengths)``, all weights 1 in the reference.

    ``forward`` takes the AFLoc model's output dictionary as keyword arguments (keys of
    :class:`monai_afloc.utils.enums.AFLocKeys`; other keys are ignored), so training is ``loss(**model(batch))``.
    A term whose weight is 0 is not computed (its inputs may be absent) and is reported as 0, which makes
    ablations such as global-only or word + global cheap.

    Args:
        global_weight: weight of the report-level term, >= 0.
        sentence_weight: weight of the sentence-level local term, >= 0.
        word_weight: weight of the word-level local term, >= 0.
        attention_scale: local attention factor (4 in the reference).
        similarity_scale: local word-similarity factor (5 in the reference).
        logit_scale: logit factor of all three terms (10 in the reference).
        aggregation: local word aggregation, ``"sum"`` (reference), ``"mean"`` or ``"max"``.
        chunk_size: texts per chunk in the local terms (bounds their memory; no effect on the result).
        local_mode: ``"attention"`` (reference: :class:`LocalContrastiveLoss`) or ``"mil"``: the multiple-instance
            local terms of :class:`MILLocalContrastiveLoss` (each word / sentence scored by a smooth maximum of its
            cosines over the regions; ``attention_scale``, ``similarity_scale`` and ``aggregation`` then unused).
        mil_sharpness: the smooth maximum's ``beta`` with ``local_mode="mil"``.
        eps: lower bound of the norm products in the cosines.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: the number of ranks sharing negatives (see :func:`monai_afloc.losses.distributed.gather_features`).

    Raises:
        TypeError/ValueError: on invalid arguments, or when every weight is 0.

    Example::

        >>> out = AFLocLoss()(
        ...     image_words=torch.randn(2, 16, 6, 6), text_words=torch.randn(2, 16, 9), word_lengths=[9, 4],
        ...     image_sentences=torch.randn(2, 16, 3, 3), text_sentences=torch.randn(2, 16, 9),
        ...     sentence_lengths=torch.tensor([3, 2]), image_report=torch.randn(2, 16), text_report=torch.randn(2, 16),
        ... )
        >>> sorted(out)
        ['global_loss', 'loss', 'sentence_loss', 'word_loss']
    """

    def __init__(
        self,
        global_weight: float = 1.0,
        sentence_weight: float = 1.0,
        word_weight: float = 1.0,
        attention_scale: float = 4.0,
        similarity_scale: float = 5.0,
        logit_scale: float = 10.0,
        aggregation: LocalAggregation | str = LocalAggregation.SUM,
        chunk_size: int = 8,
        eps: float = 1e-8,
        rank: int = 0,
        world_size: int = 1,
        local_mode: str = "attention",
        mil_sharpness: float = 10.0,
    ) -> None:
        super().__init__()
        self.local_mode = look_up_option(local_mode, ("attention", "mil"))
        self.global_weight = check_nonnegative_number("global_weight", global_weight)
        self.sentence_weight = check_nonnegative_number("sentence_weight", sentence_weight)
        self.word_weight = check_nonnegative_number("word_weight", word_weight)
        if self.global_weight == self.sentence_weight == self.word_weight == 0:
            raise ValueError("at least one of global_weight, sentence_weight, word_weight must be > 0, got all 0.")
        self.global_loss = GlobalContrastiveLoss(logit_scale=logit_scale, eps=eps, rank=rank, world_size=world_size)
        self.local_loss = LocalContrastiveLoss(
            attention_scale=attention_scale,
            similarity_scale=similarity_scale,
            logit_scale=logit_scale,
            aggregation=aggregation,
            chunk_size=chunk_size,
            eps=eps,
            rank=rank,
            world_size=world_size,
        )
        if self.local_mode == "mil":
            self.local_loss = MILLocalContrastiveLoss(
                sharpness=mil_sharpness, logit_scale=logit_scale, chunk_size=chunk_size, eps=eps, rank=rank,
                world_size=world_size,
            )

    @staticmethod
    def _get(outputs: Mapping, key: AFLocKeys, term: str):
        if key.value not in outputs:
            raise KeyError(
                f"AFLocLoss needs the model output '{key.value}' for the {term} term (or set its weight to 0); "
                f"got keys {sorted(map(str, outputs))}."
            )
        return outputs[key.value]

    def forward(self, **model_outputs) -> dict[str, torch.Tensor]:
        """
        Args:
            model_outputs: keyword arguments named by :class:`~monai_afloc.utils.enums.AFLocKeys`:
                ``image_report``/``text_report`` ``[B, D]``; ``image_sentences`` ``[B, D, h3, w3]``,
                ``text_sentences`` ``[B, D, L]``, ``sentence_lengths`` ``[B]``; ``image_words`` ``[B, D, h2, w2]``,
                ``text_words`` ``[B, D, L]``, ``word_lengths`` ``[B]``. Only those of nonzero-weight terms are needed.

        Returns:
            a dict keyed by the values (plain str) of :class:`~monai_afloc.utils.enums.LossKeys`: ``loss`` (the
            weighted total, to backpropagate) and the unweighted terms ``global_loss``, ``sentence_loss``,
            ``word_loss`` (0 when their weight is 0).

        Raises:
            KeyError: a key needed by a nonzero-weight term is missing (the message names it).
            TypeError/ValueError: invalid tensors (see :class:`GlobalContrastiveLoss`, :class:`LocalContrastiveLoss`).
        """
        weights = {
            LossKeys.GLOBAL: self.global_weight,
            LossKeys.SENTENCE: self.sentence_weight,
            LossKeys.WORD: self.word_weight,
        }
        terms: dict[LossKeys, torch.Tensor | None] = dict.fromkeys(weights)
        if self.global_weight > 0:
            terms[LossKeys.GLOBAL] = self.global_loss(
                self._get(model_outputs, AFLocKeys.IMAGE_REPORT, "global"),
                self._get(model_outputs, AFLocKeys.TEXT_REPORT, "global"),
            )
        for term, (name, region_key, text_key, length_key) in _LOCAL_TERMS.items():
            if weights[term] > 0:
                texts = self._get(model_outputs, text_key, name)
                lengths = self._get(model_outputs, length_key, name)
                terms[term] = self.local_loss(self._get(model_outputs, region_key, name), texts, lengths)
        computed = [t for t in terms.values() if t is not None]
        total = sum(weights[key] * value for key, value in terms.items() if value is not None)
        zero = torch.zeros((), dtype=computed[0].dtype, device=computed[0].device)
        out = {LossKeys.LOSS.value: total}
        out.update({key.value: zero if value is None else value for key, value in terms.items()})
        return out
