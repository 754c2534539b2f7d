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
Dictionary-based wrappers of the report text transforms in :mod:`monai_afloc.transforms.text.array`.

Example (the AFLoc training text pipeline)::

    from monai.transforms import Compose
    from monai_afloc.transforms.text import JoinSentencesd, RandSentenceSampled, ReportToSentencesd, TokenizeTextd

    text_pipeline = Compose([
        ReportToSentencesd(keys="report"),
        RandSentenceSampled(keys="report"),
        JoinSentencesd(keys="report", separator=". "),
        TokenizeTextd(keys="report", tokenizer="path/to/bert", local_files_only=True),
    ])
    out = text_pipeline({"report": "1. No pleural effusion. 2. Mild cardiomegaly."})
    # out["input_ids"], out["attention_mask"], out["token_type_ids"]: torch.long tensors shaped [97]
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import ensure_tuple_rep

from monai_afloc.transforms.text.array import (
    LATERALITY_PAIRS,
    JoinSentences,
    NegationFilter,
    RandSentenceSample,
    ReportToSentences,
    SwapLaterality,
    TokenizeText,
    TokenizerLike,
    _check_prob,
    _check_sentences,
)
from monai_afloc.transforms.text.negation import NegationMode

__all__ = [
    "ReportToSentencesd",
    "ReportToSentencesD",
    "ReportToSentencesDict",
    "JoinSentencesd",
    "JoinSentencesD",
    "JoinSentencesDict",
    "RandSentenceSampled",
    "RandSentenceSampleD",
    "RandSentenceSampleDict",
    "TokenizeTextd",
    "TokenizeTextD",
    "TokenizeTextDict",
    "NegationFilterd",
    "NegationFilterD",
    "NegationFilterDict",
    "SwapLateralityd",
    "SwapLateralityD",
    "SwapLateralityDict",
]


class ReportToSentencesd(MapTransform):
    """
    Dictionary-based version of :class:`monai_afloc.transforms.text.ReportToSentences`: each key's report (str) is
    replaced by its list of cleaned sentences.

    Args:
        keys: keys of the reports to transform. See also: :py:class:`monai.transforms.MapTransform`.
        allow_empty: return ``[]`` for a report that cleans to nothing instead of raising ``ValueError``.
        allow_missing_keys: don't raise an exception if a key is missing.
        keep_unicode: keep non-ASCII characters (for a text model with a Unicode vocabulary).

    Example::

        >>> ReportToSentencesd(keys="report")({"report": "1. No effusion. 2. Mild cardiomegaly."})
        {'report': ['no effusion', 'mild cardiomegaly']}
    """

    def __init__(
        self,
        keys: KeysCollection,
        allow_empty: bool = False,
        allow_missing_keys: bool = False,
        keep_unicode: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.splitter = ReportToSentences(allow_empty=allow_empty, keep_unicode=keep_unicode)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.splitter(d[key])
        return d


class JoinSentencesd(MapTransform):
    """
    Dictionary-based version of :class:`monai_afloc.transforms.text.JoinSentences`: each key's sentence list is
    replaced by one text.

    Args:
        keys: keys of the sentence lists to join. See also: :py:class:`monai.transforms.MapTransform`.
        separator: ``". "`` (AFLoc training, the default) or ``" "`` (an inference prompt); must not be empty.
        allow_empty: return ``""`` for an empty list instead of raising ``ValueError``.
        allow_missing_keys: don't raise an exception if a key is missing.

    Example::

        >>> JoinSentencesd(keys="report")({"report": ["no effusion", "mild cardiomegaly"]})
        {'report': 'no effusion. mild cardiomegaly'}
    """

    def __init__(
        self,
        keys: KeysCollection,
        separator: str = ". ",
        allow_empty: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.joiner = JoinSentences(separator=separator, allow_empty=allow_empty)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.joiner(d[key])
        return d


class RandSentenceSampled(RandomizableTransform, MapTransform):
    """
    Dictionary-based version of :class:`monai_afloc.transforms.text.RandSentenceSample`. The draw is made once per
    call, from the first key present, and applied to every key, so parallel sentence lists (e.g. the raw and the
    negation-marked sentences of one report) stay aligned; all the keys must then hold lists of the same length.

    Args:
        keys: keys of the sentence lists to sample. See also: :py:class:`monai.transforms.MapTransform`.
        prob: probability of sampling; otherwise the lists are returned unchanged. With ``prob=1.0`` no Bernoulli
            draw is taken (the draws are the reference's, see the array version).
        allow_missing_keys: don't raise an exception if a key is missing.

    Example::

        >>> sample = RandSentenceSampled(keys="report").set_random_state(0)
        >>> sample({"report": ["no effusion", "mild cardiomegaly", "no pneumothorax"]})
        {'report': ['no pneumothorax']}
    """

    def __init__(self, keys: KeysCollection, prob: float = 1.0, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, _check_prob(prob))
        self.sampler = RandSentenceSample(prob=1.0)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandSentenceSampled:
        super().set_random_state(seed, state)
        self.sampler.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """The Bernoulli draw for ``prob`` (none when ``prob == 1``); the sentence draw is the sampler's."""
        if self.prob < 1.0:
            super().randomize(None)
        else:
            self._do_transform = True

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Raises:
            TypeError: when a key's value is not a list/tuple of str.
            ValueError: when the keys' lists differ in length.
        """
        d = dict(data)
        self.randomize(None)
        first_key: Hashable = self.first_key(d)
        if not self._do_transform or first_key == ():
            for key in self.key_iterator(d):
                d[key] = _check_sentences(d[key])
            return d
        n = len(_check_sentences(d[first_key]))
        self.sampler.randomize(d[first_key])
        for key in self.key_iterator(d):
            sentences = _check_sentences(d[key])
            if len(sentences) != n:
                raise ValueError(
                    f"all keys share one draw, so their lists must have the same length: key {first_key!r} has {n} "
                    f"sentences, key {key!r} has {len(sentences)}."
                )
            d[key] = self.sampler(sentences, randomize=False)
        return d


class TokenizeTextd(MapTransform):
    """
    Dictionary-based version of :class:`monai_afloc.transforms.text.TokenizeText`: each key's text (or batch of
    texts) is tokenized and the tensors are written to ``f"{prefix}input_ids"``, ``f"{prefix}attention_mask"`` and
    ``f"{prefix}token_type_ids"``; the text itself is kept.

    Args:
        keys: keys of the texts to tokenize. See also: :py:class:`monai.transforms.MapTransform`.
        tokenizer: a ``transformers`` tokenizer object, or the name/path of one for ``AutoTokenizer``.
        max_length: the sequence length ``L`` (>= 2).
        padding: ``"max_length"``, ``"longest"`` or ``"do_not_pad"``.
        truncation: cut texts longer than ``max_length`` tokens.
        local_files_only: forwarded to ``AutoTokenizer.from_pretrained`` for a name/path.
        allow_empty: accept blank texts instead of raising ``ValueError``.
        output_prefix: prefix of the output keys; one per key (a sequence) when several keys are given, since the
            output keys must not collide.
        allow_missing_keys: don't raise an exception if a key is missing.

    Example::

        >>> from transformers import BertTokenizer
        >>> tokenizer = BertTokenizer(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "no": 4, "effusion": 5})
        >>> out = TokenizeTextd("report", tokenizer, max_length=6, output_prefix="report_")({"report": "no effusion"})
        >>> sorted(out), out["report_input_ids"]
        (['report', 'report_attention_mask', 'report_input_ids', 'report_token_type_ids'], tensor([2, 4, 5, 3, 0, 0]))
    """

    def __init__(
        self,
        keys: KeysCollection,
        tokenizer: TokenizerLike,
        max_length: int = 97,
        padding: str = "max_length",
        truncation: bool = True,
        local_files_only: bool = False,
        allow_empty: bool = False,
        output_prefix: str | Sequence[str] = "",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if isinstance(output_prefix, str):
            if len(self.keys) > 1:
                raise ValueError(
                    f"with {len(self.keys)} keys the output keys would collide: give one output_prefix per key, "
                    f"got the single prefix {output_prefix!r}."
                )
            prefixes: tuple = (output_prefix,)
        else:
            prefixes = ensure_tuple_rep(output_prefix, len(self.keys))
        bad = [type(p).__name__ for p in prefixes if not isinstance(p, str)]
        if bad:
            raise TypeError(f"output_prefix must be str (one per key), got {bad[0]}.")
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"output_prefix must differ between keys (output keys would collide), got {prefixes}.")
        self.output_prefix = prefixes
        self.tokenize = TokenizeText(
            tokenizer,
            max_length=max_length,
            padding=padding,
            truncation=truncation,
            local_files_only=local_files_only,
            allow_empty=allow_empty,
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, prefix in self.key_iterator(d, self.output_prefix):
            for name, value in self.tokenize(d[key]).items():
                d[f"{prefix}{name}"] = value
        return d


class NegationFilterd(MapTransform):
    """
    Dictionary-based version of :class:`monai_afloc.transforms.text.NegationFilter`: each key's sentence list is
    filtered (``"drop"``), rewritten (``"mark"``), left as it is (``"keep"``), or handled at the mention level
    (``"drop_mentions"``, ``"mark_mentions"``).

    Args:
        keys: keys of the sentence lists. See also: :py:class:`monai.transforms.MapTransform`.
        mode: one of :class:`~monai_afloc.transforms.text.NegationMode`.
        keep_last: with ``"drop"`` / ``"drop_mentions"``, an all-negated report keeps its last sentence instead of
            becoming empty.
        keep_uncertain: with the mention modes, keep uncertain findings (by default only affirmed ones are kept).
        allow_missing_keys: don't raise an exception if a key is missing.

    Example::

        >>> NegationFilterd(keys="report")({"report": ["pneumothorax is not seen", "mild cardiomegaly"]})
        {'report': ['mild cardiomegaly']}
    """

    def __init__(
        self,
        keys: KeysCollection,
        mode: NegationMode | str = NegationMode.DROP,
        keep_last: bool = False,
        allow_missing_keys: bool = False,
        keep_uncertain: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.filter = NegationFilter(mode=mode, keep_last=keep_last, keep_uncertain=keep_uncertain)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.filter(d[key])
        return d


class SwapLateralityd(MapTransform):
    """
    Dictionary-based version of :class:`monai_afloc.transforms.text.SwapLaterality`: each key's report (str) or
    sentences (list/tuple of str) get their laterality words swapped ("left" <-> "right" by default), keeping the
    type. To flip an image and its report together at random, use
    :class:`~monai_afloc.transforms.multimodal.RandLateralFlipd`.

    Args:
        keys: keys of the reports or sentence lists. See also: :py:class:`monai.transforms.MapTransform`.
        pairs: the word pairs to swap (default ``(("left", "right"),)``); see the array version for the rules.
        allow_missing_keys: don't raise an exception if a key is missing.

    Example::

        >>> SwapLateralityd(keys="report")({"report": ["left-sided effusion", "Right lung clear"]})
        {'report': ['right-sided effusion', 'Left lung clear']}
    """

    def __init__(
        self,
        keys: KeysCollection,
        pairs: Sequence[tuple[str, str]] = LATERALITY_PAIRS,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.swapper = SwapLaterality(pairs=pairs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.swapper(d[key])
        return d


ReportToSentencesD = ReportToSentencesDict = ReportToSentencesd
JoinSentencesD = JoinSentencesDict = JoinSentencesd
RandSentenceSampleD = RandSentenceSampleDict = RandSentenceSampled
TokenizeTextD = TokenizeTextDict = TokenizeTextd
NegationFilterD = NegationFilterDict = NegationFilterd
SwapLateralityD = SwapLateralityDict = SwapLateralityd
