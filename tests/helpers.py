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
"""Shared test helpers: tiny offline text models and skip decorators (never imported by the package)."""

from __future__ import annotations

import importlib.util
import os
import unittest

import torch

__all__ = ["TINY_VOCAB", "make_tiny_tokenizer", "make_tiny_bert", "SkipIfNoModule"]

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_PUNCT = [".", ",", ":", ";", "-", "/", "(", ")"]
_WORDS = (
    "a an the is are there no not without with and or of in on at to as be seen small large mild moderate severe "
    "left right bilateral upper middle lower lobe lung lungs zone base basal apical apex lateral heart size normal "
    "pleural effusion effusions opacity opacities consolidation nodule edema atelectasis "
    "enlarged clear stable unchanged findings impression suggesting new focal acute "
    "pulmonary vascular congestion silhouette within limits chest radiograph"
).split()
_PIECES = ["pneumo", "##thorax", "cardio", "##me", "##gal", "##y", "##s", "##ing", "##ed", "peri", "##hilar", "hazi", "##ness"]
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]

#: token -> id, the WordPiece vocabulary used by the tests' tiny BERT
TINY_VOCAB: dict[str, int] = {}
for _t in _SPECIAL + _PUNCT + _WORDS + _PIECES + _CHARS:
    TINY_VOCAB.setdefault(_t, len(TINY_VOCAB))


def make_tiny_tokenizer():
    """A WordPiece ``BertTokenizer`` built in memory (transformers 5 ignores ``vocab_file=``; pass ``vocab=``)."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab=dict(TINY_VOCAB), do_lower_case=True)


def make_tiny_bert(path: str, hidden_size: int = 32, num_hidden_layers: int = 4, seed: int = 0) -> str:
    """Write a random tiny BERT + its tokenizer to ``path`` (a folder ``AutoModel``/``AutoTokenizer`` load offline)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    model = BertModel(config).eval()
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    make_tiny_tokenizer().save_pretrained(path)
    return path


class SkipIfNoModule:
    """Decorator: skip a test (class) when ``module_name`` cannot be imported."""

    def __init__(self, module_name: str):
        self.module_name = module_name
        self.missing = importlib.util.find_spec(module_name) is None

    def __call__(self, obj):
        return unittest.skipIf(self.missing, f"optional module not present: {self.module_name}")(obj)
