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
Array (plain value) transforms for radiology report text, following the AFLoc reference (DESIGN.md §3):

report (str) -> :class:`ReportToSentences` -> list[str] -> [:class:`NegationFilter`] -> [:class:`RandSentenceSample`]
-> :class:`JoinSentences` -> str -> :class:`TokenizeText` -> {"input_ids", "attention_mask", "token_type_ids"}.

Note on ``monai.transforms.Compose``: on array data it maps a transform over the items of a list or tuple unless
``map_items=False``. The sentence transforms exchange lists, so chain them with ``Compose(..., map_items=False)``, or
use the dictionary versions (:mod:`monai_afloc.transforms.text.dictionary`), which have no such trap.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.transforms import RandomizableTransform, Transform
from monai.utils import look_up_option, optional_import

from monai_afloc.transforms.text.negation import (
    NegationMode,
    canonical_negation,
    is_negated,
    mark_negated_mentions,
    remove_negated_mentions,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    TokenizerLike = PreTrainedTokenizerBase | str | os.PathLike
else:
    TokenizerLike = Any

__all__ = [
    "TOKENIZER_KEYS",
    "clean_report",
    "ReportToSentences",
    "JoinSentences",
    "RandSentenceSample",
    "TokenizeText",
    "NegationFilter",
    "LATERALITY_PAIRS",
    "SwapLaterality",
]

#: keys of the dictionary returned by :class:`TokenizeText` (the Hugging Face names)
TOKENIZER_KEYS: tuple[str, str, str] = ("input_ids", "attention_mask", "token_type_ids")

_NUMBERED_RE = re.compile(r"[0-9]+\.")
_WORD_RE = re.compile(r"\w+")
_PADDING_OPTIONS = ("max_length", "longest", "do_not_pad")
_WORD_EDGES_RE = re.compile(r"\w(?:.*\w)?", re.DOTALL)

#: the default word pairs of :class:`SwapLaterality`
LATERALITY_PAIRS: tuple[tuple[str, str], ...] = (("left", "right"),)
_COMPOSE_HINT = (
    " (inside monai.transforms.Compose on array data, a list is mapped item by item: use Compose(..., map_items=False)"
    " or the dictionary transforms)"
)


def _preview(text: str, width: int = 60) -> str:
    """A ``repr`` of the first ``width`` characters of ``text``, for error messages."""
    return repr(text[:width] + ("..." if len(text) > width else ""))


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}.")
    return bool(value)


def _check_prob(prob: Any) -> float:
    if isinstance(prob, (bool, np.bool_)) or not isinstance(prob, (int, float, np.integer, np.floating)):
        raise TypeError(f"prob must be a number in [0, 1], got {type(prob).__name__}.")
    if not (math.isfinite(prob) and 0.0 <= prob <= 1.0):
        raise ValueError(f"prob must be in [0, 1], got {prob}.")
    return float(prob)


def _check_report(text: Any) -> str:
    if isinstance(text, str):
        return text
    hint = ""
    if isinstance(text, (bytes, bytearray)):
        hint = "; decode it first, e.g. text.decode('utf-8')"
    elif isinstance(text, float) and math.isnan(text):
        hint = "; a missing report (NaN, e.g. an empty CSV cell) has no text"
    elif isinstance(text, (list, tuple)):
        hint = _COMPOSE_HINT
    raise TypeError(f"a report must be a str, got {type(text).__name__}{hint}.")


def _check_sentences(sentences: Any) -> list[str]:
    """Validates a list (or tuple) of str and returns it as a new list."""
    if isinstance(sentences, str):
        raise TypeError(f"expected a list of sentences (list[str]), got str {_preview(sentences)}{_COMPOSE_HINT}.")
    if not isinstance(sentences, (list, tuple)):
        raise TypeError(f"expected a list of sentences (list[str]), got {type(sentences).__name__}.")
    bad = [(i, type(s).__name__) for i, s in enumerate(sentences) if not isinstance(s, str)]
    if bad:
        raise TypeError(f"expected a list of sentences (list[str]); item {bad[0][0]} is a {bad[0][1]}.")
    return list(sentences)


def clean_report(text: str, allow_empty: bool = False, keep_unicode: bool = False) -> list[str]:
    """
    Cleans a report and splits it into sentences exactly as the AFLoc/GLoRIA reference does:

    1. newlines become spaces;
    2. the text is split on the regex ``[0-9]+\\.`` (list numbers such as ``"1."``), then each piece on ``"."``;
    3. each piece is lowercased and tokenized as ``re.findall(r"\\w+")``; a piece with at most one token is dropped
       (tokens are counted *before* non-ASCII characters are removed, as in the reference);
    4. non-ASCII characters are removed from each token (``token.encode("ascii", "ignore")``), tokens that become
       empty are dropped, and the rest are joined with single spaces.

    Step 4 is a quirk of the release, kept for its weights (its vocabulary is ASCII); ``keep_unicode=True`` skips it
    for a text model with a Unicode vocabulary ("Ödem", "épanchement pleural" stay as they are, lowercased).

    One deliberate difference: a piece whose tokens are all non-ASCII (it had >= 2 tokens, so the reference keeps it)
    would become the empty sentence ``""``; it is dropped here, since an empty sentence only adds a stray ``". "``
    to the joined text. (The reference's replacement of ``"\\ufffd\\ufffd"`` by a space is implied: ``\\ufffd`` is
    not a word character.)

    Args:
        text: the report.
        allow_empty: what to do when nothing survives the cleaning (empty text, only punctuation, only non-ASCII,
            only one-word pieces): return ``[]`` if True, raise ``ValueError`` if False (default).
        keep_unicode: keep non-ASCII characters (step 4 skipped); default False, as the reference.

    Returns:
        the cleaned sentences, in order: lowercase ASCII (or, with ``keep_unicode``, Unicode) words separated by
        single spaces, no punctuation.

    Raises:
        TypeError: when ``text`` is not a str (None, bytes, a number, a NaN from an empty CSV cell, ...).
        ValueError: when no sentence survives and ``allow_empty`` is False.

    Example::

        >>> clean_report("1. No pleural effusion.\\n2. Mild cardiomegaly. Stable.")
        ['no pleural effusion', 'mild cardiomegaly']
    """
    text = _check_report(text)
    allow_empty = _check_bool("allow_empty", allow_empty)
    keep_unicode = _check_bool("keep_unicode", keep_unicode)
    pieces = (piece for chunk in _NUMBERED_RE.split(text.replace("\n", " ")) for piece in chunk.split("."))
    token_lists = (_WORD_RE.findall(piece.lower()) for piece in pieces)
    ascii_lists = (
        tokens if keep_unicode else [a for a in (t.encode("ascii", "ignore").decode("ascii") for t in tokens) if a]
        for tokens in token_lists
        if len(tokens) > 1
    )
    sentences = [" ".join(tokens) for tokens in ascii_lists if tokens]
    if not sentences and not allow_empty:
        raise ValueError(
            "the report has no sentence after cleaning (a sentence needs at least 2 word tokens); "
            f"got {_preview(text)}. Pass allow_empty=True to get [] instead."
        )
    return sentences


class ReportToSentences(Transform):
    """
    Report text -> list of cleaned sentences, as the AFLoc reference (see :func:`clean_report`).

    Args:
        allow_empty: return ``[]`` for a report that cleans to nothing instead of raising ``ValueError``.
        keep_unicode: keep non-ASCII characters (for a text model with a Unicode vocabulary; the AFLoc release's
            vocabulary is ASCII, so the default drops them as the reference does).

    Example::

        >>> ReportToSentences()("Heart size is normal. 2. No effusion.")
        ['heart size is normal', 'no effusion']
        >>> ReportToSentences(keep_unicode=True)("Kein Pleuraerguss. Herz normal groß.")
        ['kein pleuraerguss', 'herz normal groß']
    """

    def __init__(self, allow_empty: bool = False, keep_unicode: bool = False) -> None:
        self.allow_empty = _check_bool("allow_empty", allow_empty)
        self.keep_unicode = _check_bool("keep_unicode", keep_unicode)

    def __call__(self, report: str) -> list[str]:
        """
        Args:
            report: the report text.

        Raises:
            TypeError: when ``report`` is not a str.
            ValueError: when it cleans to nothing and ``allow_empty`` is False.
        """
        return clean_report(report, allow_empty=self.allow_empty, keep_unicode=self.keep_unicode)


class JoinSentences(Transform):
    """
    List of sentences -> one text. AFLoc training joins with ``". "`` (the default); an inference prompt joins with
    ``" "``.

    Args:
        separator: the string put between sentences; must not be empty.
        allow_empty: return ``""`` for an empty list instead of raising ``ValueError``.

    Example::

        >>> JoinSentences()(["no pleural effusion", "mild cardiomegaly"])
        'no pleural effusion. mild cardiomegaly'
        >>> JoinSentences(separator=" ")(["no pleural effusion", "mild cardiomegaly"])
        'no pleural effusion mild cardiomegaly'
    """

    def __init__(self, separator: str = ". ", allow_empty: bool = False) -> None:
        if not isinstance(separator, str):
            raise TypeError(f"separator must be a str, got {type(separator).__name__}.")
        if not separator:
            raise ValueError("separator must not be empty (the sentences' words would run together), got ''.")
        self.separator = separator
        self.allow_empty = _check_bool("allow_empty", allow_empty)

    def __call__(self, sentences: Sequence[str]) -> str:
        """
        Args:
            sentences: the sentences, a list (or tuple) of non-blank str.

        Raises:
            TypeError: when ``sentences`` is not a list/tuple of str.
            ValueError: when a sentence is blank, or the list is empty and ``allow_empty`` is False.
        """
        sentences = _check_sentences(sentences)
        if not sentences:
            if self.allow_empty:
                return ""
            raise ValueError("expected at least one sentence to join, got []. Pass allow_empty=True to get ''.")
        blank = [i for i, s in enumerate(sentences) if not s.strip()]
        if blank:
            raise ValueError(f"sentence {blank[0]} is blank ({sentences[blank[0]]!r}); expected non-blank sentences.")
        return self.separator.join(sentences)


class RandSentenceSample(RandomizableTransform):
    """
    The AFLoc training augmentation of a report: from ``n >= 2`` sentences keep ``k`` distinct ones, ``k`` drawn
    uniformly from ``1..n-1``, in random order (the first ``k`` of a random permutation); one sentence is kept as
    it is; an empty list stays empty.

    The draws are ``k = R.randint(1, n)`` then ``R.choice(n, k, replace=False)`` on the transform's own
    ``numpy.random.RandomState`` ``R`` (see ``set_random_state``), which are the reference's draws: with
    ``prob=1.0`` no extra Bernoulli draw is taken, so ``RandSentenceSample().set_random_state(s)`` picks the same
    sentences as the reference data set after ``numpy.random.seed(s)``. With ``prob < 1`` a Bernoulli draw comes
    first, as in every MONAI random transform, and a miss returns the sentences unchanged.

    Args:
        prob: probability of sampling; otherwise the list is returned unchanged (as a new list).

    Example::

        >>> sample = RandSentenceSample().set_random_state(0)
        >>> sample(["no effusion", "mild cardiomegaly", "no pneumothorax"])
        ['no pneumothorax']
    """

    def __init__(self, prob: float = 1.0) -> None:
        RandomizableTransform.__init__(self, _check_prob(prob))
        self._indices: np.ndarray | None = None
        self._num_sentences: int | None = None

    def randomize(self, data: Sequence[str]) -> None:
        """Draws the sentence indices for a list of ``len(data)`` sentences."""
        if self.prob < 1.0:
            super().randomize(None)
        else:
            self._do_transform = True
        if not self._do_transform:
            return
        n = len(data)
        if n >= 2:
            k = int(self.R.randint(1, n))
            self._indices = self.R.choice(n, k, replace=False)
        else:
            self._indices = np.arange(n)
        self._num_sentences = n

    def __call__(self, sentences: Sequence[str], randomize: bool = True) -> list[str]:
        """
        Args:
            sentences: the report's sentences, a list (or tuple) of str.
            randomize: draw new indices; False reuses the last draw (the list must have the same length).

        Raises:
            TypeError: when ``sentences`` is not a list/tuple of str.
            ValueError: with ``randomize=False``, when the list length differs from the last draw's.
            RuntimeError: with ``randomize=False`` before any draw.
        """
        sentences = _check_sentences(sentences)
        if randomize:
            self.randomize(sentences)
        if not self._do_transform:
            return sentences
        if self._indices is None:
            raise RuntimeError("please call randomize() first, or call with randomize=True.")
        if len(sentences) != self._num_sentences:
            raise ValueError(
                f"the last draw was for {self._num_sentences} sentences, got {len(sentences)}; "
                "call with randomize=True."
            )
        return [sentences[i] for i in self._indices.tolist()]


class TokenizeText(Transform):
    """
    Text (or a batch of texts) -> token tensors with a Hugging Face tokenizer, as the AFLoc reference
    (``padding="max_length"``, ``max_length=97``, truncation).

    Args:
        tokenizer: a ``transformers`` tokenizer object, or the name/path of one for ``AutoTokenizer.from_pretrained``.
        max_length: the sequence length ``L`` (>= 2: room for ``[CLS]`` and ``[SEP]``).
        padding: ``"max_length"`` (pad to ``L``), ``"longest"`` (pad a batch to its longest text) or
            ``"do_not_pad"`` (a batch must then tokenize to equal lengths).
        truncation: cut texts longer than ``max_length`` tokens (the reference does).
        local_files_only: forwarded to ``AutoTokenizer.from_pretrained`` when ``tokenizer`` is a name/path; set True
            where nothing may be downloaded.
        allow_empty: accept blank texts (tokenized to ``[CLS] [SEP]``) instead of raising ``ValueError``.

    Returns (``__call__``):
        a dict with the keys :data:`TOKENIZER_KEYS` (``"input_ids"``, ``"attention_mask"``, ``"token_type_ids"``), each
        a ``torch.long`` tensor shaped ``[L]`` for a str, ``[N, L]`` for a list of ``N`` str. A tokenizer that gives
        no ``token_type_ids`` gets zeros.

    Example::

        >>> from transformers import BertTokenizer
        >>> tokenizer = BertTokenizer(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "no": 4, "effusion": 5})
        >>> out = TokenizeText(tokenizer, max_length=6)("no effusion")
        >>> out["input_ids"], out["attention_mask"]
        (tensor([2, 4, 5, 3, 0, 0]), tensor([1, 1, 1, 1, 0, 0]))
    """

    def __init__(
        self,
        tokenizer: TokenizerLike,
        max_length: int = 97,
        padding: str = "max_length",
        truncation: bool = True,
        local_files_only: bool = False,
        allow_empty: bool = False,
    ) -> None:
        if isinstance(max_length, (bool, np.bool_)) or not isinstance(max_length, (int, np.integer)):
            raise TypeError(f"max_length must be an int, got {type(max_length).__name__}.")
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {max_length}.")
        if not isinstance(padding, str):
            raise TypeError(f"padding must be a str, one of {_PADDING_OPTIONS}, got {type(padding).__name__}.")
        self.max_length = int(max_length)
        self.padding = look_up_option(padding, _PADDING_OPTIONS)
        self.truncation = _check_bool("truncation", truncation)
        self.local_files_only = _check_bool("local_files_only", local_files_only)
        self.allow_empty = _check_bool("allow_empty", allow_empty)
        self.tokenizer = self._load_tokenizer(tokenizer, self.local_files_only)

    @staticmethod
    def _load_tokenizer(tokenizer: TokenizerLike, local_files_only: bool) -> Any:
        if isinstance(tokenizer, os.PathLike):
            tokenizer = os.fspath(tokenizer)
        if isinstance(tokenizer, str):
            if not tokenizer:
                raise ValueError("tokenizer name/path must not be empty, got ''.")
            auto_tokenizer, has_transformers = optional_import("transformers", name="AutoTokenizer")
            if not has_transformers:
                raise ValueError(f"loading tokenizer {tokenizer!r} by name needs the 'transformers' package.")
            try:
                return auto_tokenizer.from_pretrained(tokenizer, local_files_only=local_files_only)
            except (OSError, ValueError) as e:
                raise ValueError(
                    f"could not load a tokenizer from {tokenizer!r} (local_files_only={local_files_only}): {e}"
                ) from e
        if not callable(tokenizer):
            raise TypeError(
                f"tokenizer must be a transformers tokenizer or a name/path str, got {type(tokenizer).__name__}."
            )
        return tokenizer

    def __call__(self, text: str | Sequence[str]) -> dict[str, torch.Tensor]:
        """
        Args:
            text: one text (str) or a batch (a non-empty list/tuple of str).

        Raises:
            TypeError: when ``text`` is neither a str nor a list/tuple of str.
            ValueError: for an empty batch, a blank text (unless ``allow_empty``), or, without padding, texts that
                tokenize to different lengths.
        """
        single = isinstance(text, str)
        if single:
            texts = [text]
        else:
            if not isinstance(text, (list, tuple)):
                raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}.")
            texts = _check_sentences(text)
            if not texts:
                raise ValueError("expected a str or a non-empty list of str, got an empty list.")
        if not self.allow_empty:
            blank = [i for i, t in enumerate(texts) if not t.strip()]
            if blank:
                where = "" if single else f" (item {blank[0]})"
                raise ValueError(f"expected a non-blank text, got {texts[blank[0]]!r}{where}; see allow_empty.")
        encoded = self.tokenizer(
            texts,
            padding=self.padding,
            truncation=self.truncation,
            max_length=self.max_length,
            return_attention_mask=True,
            return_token_type_ids=True,
        )
        input_ids = encoded["input_ids"]
        lengths = {len(row) for row in input_ids}
        if len(lengths) > 1:
            raise ValueError(
                f"the texts tokenized to different lengths {sorted(lengths)} with padding={self.padding!r}; "
                "use padding='max_length' or 'longest' for a batch."
            )
        ids = torch.as_tensor(input_ids, dtype=torch.long)
        out = {}
        for key in TOKENIZER_KEYS:
            rows = encoded.get(key)
            out[key] = torch.zeros_like(ids) if rows is None else torch.as_tensor(rows, dtype=torch.long)
        return {k: v[0] for k, v in out.items()} if single else out


class NegationFilter(Transform):
    """
    Handles negated sentences of a report (rules in :mod:`monai_afloc.transforms.text.negation`):

    - ``mode="drop"``: removes the sentences that only state absences (:func:`~monai_afloc.transforms.text.is_negated`);
      sentences that also affirm a finding ("no effusion but a small pneumothorax") are kept;
    - ``mode="mark"``: rewrites each negated sentence to its canonical form ``"no <finding>[ and no <finding>]"``
      (:func:`~monai_afloc.transforms.text.canonical_negation`), e.g. "pneumothorax is not seen" ->
      "no pneumothorax"; other sentences are unchanged;
    - ``mode="keep"``: returns the sentences unchanged;
    - ``mode="drop_mentions"``: mention level: removes each negated finding with its trigger from its sentence and
      keeps the affirmed rest (:func:`~monai_afloc.transforms.text.remove_negated_mentions`): "the lungs are clear
      without effusion or pneumothorax" -> "the lungs are clear"; a sentence left without content is removed;
    - ``mode="mark_mentions"``: mention level: rewrites each negated finding in place to ``"no <finding>"``
      (:func:`~monai_afloc.transforms.text.mark_negated_mentions`).

    The mention modes give lowercase words without punctuation (as :func:`clean_report` does). Uncertain findings
    ("possible pneumonia", "effusion cannot be excluded") are a third state there, removed unless ``keep_uncertain``.

    Measured on the real IU X-ray reports (``benchmarks/negation_real.py``, held-out even-numbered reports): see
    CHANGELOG.md and the bundle docs for the figures.

    Args:
        mode: one of :class:`~monai_afloc.transforms.text.NegationMode` (``"drop"``, ``"mark"``, ``"keep"``,
            ``"drop_mentions"``, ``"mark_mentions"``).
        keep_last: with ``"drop"`` / ``"drop_mentions"``, a report whose sentences are all negations keeps its last
            sentence (typically the impression of a normal study, "no acute cardiopulmonary process") instead of
            becoming empty, so that training never sees an empty text. Default False (an all-negated report gives
            ``[]``).
        keep_uncertain: with the mention modes, keep uncertain findings (by default only affirmed ones are kept).

    Example::

        >>> NegationFilter("drop")(["pneumothorax is not seen", "mild cardiomegaly"])
        ['mild cardiomegaly']
        >>> NegationFilter("mark")(["pneumothorax is not seen", "mild cardiomegaly"])
        ['no pneumothorax', 'mild cardiomegaly']
        >>> NegationFilter("drop_mentions")(["lungs are clear without effusion", "pneumothorax is not seen"])
        ['lungs are clear']
    """

    def __init__(
        self, mode: NegationMode | str = NegationMode.DROP, keep_last: bool = False, keep_uncertain: bool = False
    ) -> None:
        if not isinstance(mode, str):
            raise TypeError(f"mode must be a str, one of {[m.value for m in NegationMode]}, got {type(mode).__name__}.")
        self.mode = NegationMode(look_up_option(mode, NegationMode))
        self.keep_last = _check_bool("keep_last", keep_last)
        self.keep_uncertain = _check_bool("keep_uncertain", keep_uncertain)

    def __call__(self, sentences: Sequence[str]) -> list[str]:
        """
        Args:
            sentences: a list (or tuple) of sentences; the result is a new list (possibly empty with ``"drop"``).

        Raises:
            TypeError: when ``sentences`` is not a list/tuple of str.
        """
        sentences = _check_sentences(sentences)
        if self.mode == NegationMode.DROP:
            kept = [s for s in sentences if not is_negated(s)]
            return kept if kept or not self.keep_last else list(sentences[-1:])
        if self.mode == NegationMode.MARK:
            return [canonical_negation(s) for s in sentences]
        if self.mode in (NegationMode.DROP_MENTIONS, NegationMode.MARK_MENTIONS):
            rewrite = remove_negated_mentions if self.mode == NegationMode.DROP_MENTIONS else mark_negated_mentions
            kept = [t for t in (rewrite(s, self.keep_uncertain) for s in sentences) if t]
            if kept or not self.keep_last or self.mode == NegationMode.MARK_MENTIONS:
                return kept
            return list(sentences[-1:])
        return sentences


class SwapLaterality(Transform):
    """
    Swaps laterality words in a report: "left" <-> "right" by default, so that the report of a horizontally flipped
    image (the patient's left now on the image's left side) stays true. Used by
    :class:`~monai_afloc.transforms.multimodal.RandLateralFlipd`, which flips the image and the text together.

    Rules:

    - whole words only, matched case-insensitively at word boundaries (``\\b``): "left", "Left", "LEFT" and the
      parts of hyphenated forms ("left-sided", "right-hemithorax") are swapped; "bright", "upright", "leftover",
      "copyright", "rightly" and "left_lung" (``_`` is a word character) are not;
    - case follows the matched word: all capitals give all capitals ("LEFT" -> "RIGHT"), a leading capital gives a
      leading capital ("Left" -> "Right"), anything else gives lower case;
    - all the pairs are swapped in one pass, both ways, so "left and right" becomes "right and left";
    - only the listed words: derived forms such as "leftward(s)" / "rightward(s)" are not swapped by default
      (add them as pairs: ``pairs=(("left", "right"), ("leftward", "rightward"), ("leftwards", "rightwards"))``),
      nor are abbreviations ("lt"/"rt", "L"/"R" markers) unless given.

    Known limits (word-level, no parsing): "left" as the past tense of "leave" ("catheter left in place") and "right"
    meaning "correct" are swapped too; findings named by one side without a laterality word ("cardiac apex",
    "aortic knob", "gastric bubble", "dextrocardia") are not changed, so a flipped image shows a mirrored anatomy
    that no text describes.

    Args:
        pairs: the word pairs to swap, each two different words (case-insensitive, each word in one pair only),
            starting and ending with a word character (letters, digits); inner hyphens or spaces are allowed
            ("left-sided"). Default :data:`LATERALITY_PAIRS` (``(("left", "right"),)``). Extra pairs e.g.
            ``(("left", "right"), ("lt", "rt"), ("sinistra", "dextra"))``.

    Example::

        >>> SwapLaterality()("Left-sided effusion. No RIGHT pneumothorax, bright upright film.")
        'Right-sided effusion. No LEFT pneumothorax, bright upright film.'
        >>> SwapLaterality(pairs=(("left", "right"), ("lt", "rt")))(["lt basilar opacity", "right apex clear"])
        ['rt basilar opacity', 'left apex clear']
    """

    def __init__(self, pairs: Sequence[tuple[str, str]] = LATERALITY_PAIRS) -> None:
        self.pairs = self._check_pairs(pairs)
        self._mapping: dict[str, str] = {}
        for a, b in self.pairs:
            self._mapping[a] = b
            self._mapping[b] = a
        # longest first, so that a multi-word term wins over a word it starts with
        words = sorted(self._mapping, key=lambda w: (-len(w), w))
        self._pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)

    @staticmethod
    def _check_pairs(pairs: Any) -> tuple[tuple[str, str], ...]:
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
            raise TypeError(
                "pairs must be a sequence of (word, word) tuples, e.g. (('left', 'right'),), "
                f"got {type(pairs).__name__}."
            )
        if not pairs:
            raise ValueError("pairs must hold at least one (word, word) pair, got an empty sequence.")
        checked: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        for i, pair in enumerate(pairs):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise TypeError(f"pairs[{i}] must be a (word, word) tuple, got {pair!r}.")
            words = []
            for word in pair:
                if not isinstance(word, str):
                    raise TypeError(f"pairs[{i}] must hold two str, got a {type(word).__name__} ({word!r}).")
                if not _WORD_EDGES_RE.fullmatch(word):
                    raise ValueError(
                        f"pairs[{i}]: each word must start and end with a word character (letters, digits), "
                        f"got {word!r}."
                    )
                key = word.lower()
                if key in seen:
                    raise ValueError(
                        f"pairs[{i}]: the word {word!r} is already in pairs[{seen[key]}]; "
                        "each word may appear once (case-insensitive), or its swap would be ambiguous."
                    )
                seen[key] = i
                words.append(key)
            checked.append((words[0], words[1]))
        return tuple(checked)

    def _replace(self, match: re.Match) -> str:
        found = match.group(0)
        swapped = self._mapping[found.lower()]
        if found.isupper() and (len(found) > 1 or len(swapped) == 1):
            return swapped.upper()
        if found[:1].isupper():
            return swapped[:1].upper() + swapped[1:]
        return swapped

    def swap(self, text: str) -> str:
        """Swaps the laterality words of one text (str)."""
        return self._pattern.sub(self._replace, _check_report(text))

    def __call__(self, report: str | Sequence[str]) -> str | list[str] | tuple[str, ...]:
        """
        Args:
            report: a report (str) or its sentences (a list or tuple of str).

        Returns:
            the same type as ``report`` (str, list or tuple) with the words swapped; a new object.

        Raises:
            TypeError: when ``report`` is neither a str nor a list/tuple of str (e.g. token ids: swap before
                tokenizing).
        """
        if isinstance(report, str):
            return self.swap(report)
        if not isinstance(report, (list, tuple)):
            hint = "; swap laterality before tokenizing" if isinstance(report, (torch.Tensor, np.ndarray, dict)) else ""
            raise TypeError(f"report must be a str or a list/tuple of str, got {type(report).__name__}{hint}.")
        swapped = [self.swap(s) for s in _check_sentences(report)]
        return tuple(swapped) if isinstance(report, tuple) else swapped
