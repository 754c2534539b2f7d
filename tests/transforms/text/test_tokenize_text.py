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

from __future__ import annotations

import pathlib
import tempfile
import unittest

import torch
from parameterized import parameterized

from monai_afloc.transforms.text import TOKENIZER_KEYS, TokenizeText
from tests.helpers import TINY_VOCAB, make_tiny_tokenizer

TOKENIZER = make_tiny_tokenizer()
CLS, SEP, PAD = TINY_VOCAB["[CLS]"], TINY_VOCAB["[SEP]"], TINY_VOCAB["[PAD]"]
TEXT = "no pleural effusion. mild cardiomegaly"
LONG_TEXT = " ".join(["small left pleural effusion"] * 40)  # 160 words


class _NoTypeIdsTokenizer:
    """A tokenizer that, like RoBERTa's, gives no token_type_ids."""

    def __call__(self, texts, **kwargs):
        out = dict(TOKENIZER(texts, **kwargs))
        out.pop("token_type_ids")
        return out


class TestTokenizeText(unittest.TestCase):
    def test_default_length_97(self):
        out = TokenizeText(TOKENIZER)(TEXT)
        self.assertEqual(tuple(out), TOKENIZER_KEYS)
        expected = TOKENIZER(TEXT, padding="max_length", truncation=True, max_length=97)
        for key in TOKENIZER_KEYS:
            self.assertEqual(out[key].shape, (97,))
            self.assertEqual(out[key].dtype, torch.long)
            self.assertEqual(out[key].tolist(), expected[key])
        n = int(out["attention_mask"].sum())
        self.assertEqual(out["input_ids"][0].item(), CLS)
        self.assertEqual(out["input_ids"][n - 1].item(), SEP)
        self.assertTrue(bool((out["input_ids"][n:] == PAD).all()))
        self.assertIn(TINY_VOCAB["##thorax"], TokenizeText(TOKENIZER)("pneumothorax")["input_ids"].tolist())

    def test_batch(self):
        texts = [TEXT, "no edema", "pneumothorax"]
        out = TokenizeText(TOKENIZER)(texts)
        for key in TOKENIZER_KEYS:
            self.assertEqual(out[key].shape, (3, 97))
        single = TokenizeText(TOKENIZER)("no edema")
        for key in TOKENIZER_KEYS:
            self.assertTrue(torch.equal(out[key][1], single[key]))
        self.assertEqual(TokenizeText(TOKENIZER)(("no edema",))["input_ids"].shape, (1, 97))

    def test_truncation(self):
        out = TokenizeText(TOKENIZER)(LONG_TEXT)
        self.assertEqual(out["input_ids"].shape, (97,))
        self.assertEqual(out["input_ids"][-1].item(), SEP)
        self.assertTrue(bool((out["attention_mask"] == 1).all()))
        long = TokenizeText(TOKENIZER, truncation=False)(LONG_TEXT)
        self.assertEqual(long["input_ids"].shape, (162,))

    def test_padding(self):
        out = TokenizeText(TOKENIZER, padding="longest")(["no edema", "no pleural effusion"])
        self.assertEqual(out["input_ids"].shape, (2, 5))
        self.assertEqual(out["attention_mask"].tolist(), [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
        self.assertEqual(TokenizeText(TOKENIZER, padding="do_not_pad")("no edema")["input_ids"].shape, (4,))
        with self.assertRaisesRegex(ValueError, "different lengths"):
            TokenizeText(TOKENIZER, padding="do_not_pad")(["no edema", "no pleural effusion"])

    def test_small_max_length(self):
        out = TokenizeText(TOKENIZER, max_length=2)(TEXT)
        self.assertEqual(out["input_ids"].tolist(), [CLS, SEP])

    def test_load_by_path(self):
        with tempfile.TemporaryDirectory() as tmp:
            TOKENIZER.save_pretrained(tmp)
            expected = TokenizeText(TOKENIZER)(TEXT)
            for name in (tmp, pathlib.Path(tmp)):
                out = TokenizeText(name, local_files_only=True)(TEXT)
                for key in TOKENIZER_KEYS:
                    self.assertTrue(torch.equal(out[key], expected[key]))
            with self.assertRaisesRegex(ValueError, "could not load a tokenizer"):
                TokenizeText(str(pathlib.Path(tmp) / "missing"), local_files_only=True)

    def test_missing_token_type_ids(self):
        out = TokenizeText(_NoTypeIdsTokenizer())([TEXT, "no edema"])
        self.assertEqual(out["token_type_ids"].shape, (2, 97))
        self.assertEqual(int(out["token_type_ids"].abs().sum()), 0)

    def test_empty(self):
        with self.assertRaisesRegex(ValueError, "non-blank"):
            TokenizeText(TOKENIZER)("")
        with self.assertRaisesRegex(ValueError, "item 1"):
            TokenizeText(TOKENIZER)(["no edema", "  "])
        with self.assertRaisesRegex(ValueError, "non-empty list"):
            TokenizeText(TOKENIZER)([])
        out = TokenizeText(TOKENIZER, allow_empty=True)("")
        self.assertEqual(out["input_ids"][:3].tolist(), [CLS, SEP, PAD])

    @parameterized.expand([[None], [b"no edema"], [3], [["no edema", 3]], [{"text": "no edema"}]])
    def test_bad_input(self, value):
        with self.assertRaises(TypeError):
            TokenizeText(TOKENIZER)(value)

    @parameterized.expand(
        [
            [{"max_length": 1}, ValueError],
            [{"max_length": 0}, ValueError],
            [{"max_length": 97.0}, TypeError],
            [{"max_length": True}, TypeError],
            [{"padding": "maximum"}, ValueError],
            [{"padding": True}, TypeError],
            [{"truncation": "yes"}, TypeError],
            [{"local_files_only": None}, TypeError],
            [{"allow_empty": 0}, TypeError],
            [{"tokenizer": 3}, TypeError],
            [{"tokenizer": None}, TypeError],
            [{"tokenizer": ""}, ValueError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        kwargs = {"tokenizer": TOKENIZER, **kwargs}
        with self.assertRaises(error):
            TokenizeText(**kwargs)


if __name__ == "__main__":
    unittest.main()
