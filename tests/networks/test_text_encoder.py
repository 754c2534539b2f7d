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

import tempfile
import unittest

import torch
from parameterized import parameterized

from monai_afloc.networks.nets import AFLocTextEncoder, pool_words_and_sentences
from monai_afloc.utils.enums import AFLocKeys
from tests.helpers import make_tiny_bert

_TMP = tempfile.TemporaryDirectory()
_BERT = make_tiny_bert(_TMP.name, hidden_size=32, num_hidden_layers=4)


def reference_pool(hidden: torch.Tensor, tokens: list[str], length: int):
    """DESIGN.md §3 written for clarity: a loop over tokens, words and sentences (one sequence)."""
    words, word_tok, bank = [], [], []
    for emb, tok in zip(hidden, tokens):
        if tok == "[SEP]":
            words.append(torch.stack(bank).sum(0))
            words.append(emb)
            word_tok.append(tok)
            break
        if tok.startswith("##"):
            bank.append(emb)
        else:
            if bank:
                words.append(torch.stack(bank).sum(0))
            bank = [emb]
            word_tok.append(tok)
    n = len(words) - 2
    word_seq = torch.zeros(length, hidden.shape[1])
    word_seq[: len(words)] = torch.stack(words)
    delims = [i for i in range(1, n + 1) if word_tok[i] == "." and i != n] + [n + 1]
    sentences, prev = [words[0]], 0
    for d in delims:
        seg = words[prev + 1 : d]
        if seg:
            sentences.append(torch.stack(seg).mean(0))
        prev = d
    sentences.append(words[n + 1])
    sent_seq = torch.zeros(length, hidden.shape[1])
    sent_seq[: len(sentences)] = torch.stack(sentences)
    report = word_seq.sum(0) / length
    return word_seq, n + 1, sent_seq, len(sentences) - 1, report


REPORTS = [
    "small left pneumothorax. no cardiomegaly. mild perihilar haziness",
    "small left pneumothorax. no cardiomegaly.",  # trailing period: the last "." is no delimiter
    "left effusion. . right effusion",  # an empty sentence is skipped
    "",  # empty report: CLS and SEP only
    ". . .",
    "heart size is normal",
    " ".join(["bilateral pleural effusions."] * 40),  # truncated at 97 tokens
]


class TestTextEncoder(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.enc = AFLocTextEncoder(_BERT, local_files_only=True).eval()

    def test_matches_reference_loop(self):
        batch = self.enc.tokenize(REPORTS)
        self.assertEqual(batch["input_ids"].shape, (len(REPORTS), 97))
        with torch.no_grad():
            out = self.enc(**batch)
            hs = self.enc.model(**batch, output_hidden_states=True).hidden_states
            hidden = hs[-1] + hs[-2] + hs[-3] + hs[-4]  # sum of the last 4 layers
        for b, ids in enumerate(batch["input_ids"]):
            tokens = self.enc.tokenizer.convert_ids_to_tokens(ids.tolist())
            w, wl, s, sl, r = reference_pool(hidden[b], tokens, 97)
            torch.testing.assert_close(out[AFLocKeys.TEXT_WORDS][b].T, w, atol=1e-5, rtol=1e-5)
            self.assertEqual(int(out[AFLocKeys.WORD_LENGTHS][b]), wl)
            torch.testing.assert_close(out[AFLocKeys.TEXT_SENTENCES][b].T, s, atol=1e-5, rtol=1e-5)
            self.assertEqual(int(out[AFLocKeys.SENTENCE_LENGTHS][b]), sl)
            torch.testing.assert_close(out[AFLocKeys.TEXT_REPORT][b], r, atol=1e-5, rtol=1e-5)
        for v in out.values():
            self.assertFalse(torch.isnan(v.float()).any())

    def test_known_lengths(self):
        out = self.enc(**self.enc.tokenize(REPORTS[:5]))
        # report 0: 10 words -> 11 with CLS; 3 sentences -> 4 with CLS
        self.assertEqual(out[AFLocKeys.WORD_LENGTHS].tolist(), [11, 8, 7, 1, 4])
        self.assertEqual(out[AFLocKeys.SENTENCE_LENGTHS].tolist(), [4, 3, 3, 1, 2])

    def test_batch_independent(self):
        full = self.enc(**self.enc.tokenize(REPORTS))
        one = self.enc(**self.enc.tokenize(REPORTS[2:3]))
        for k in (AFLocKeys.TEXT_SENTENCES, AFLocKeys.TEXT_REPORT):
            torch.testing.assert_close(full[k][2:3], one[k], atol=1e-5, rtol=1e-5)

    def test_word_ids_grouping_equals_wordpiece(self):
        texts = REPORTS[:3]
        tok = self.enc.tokenizer(texts, padding="max_length", max_length=97, truncation=True, return_tensors="pt")
        word_ids = torch.tensor([[-1 if w is None else w for w in tok.word_ids(i)] for i in range(len(texts))])
        a = self.enc(tok["input_ids"], tok["attention_mask"])
        b = self.enc(tok["input_ids"], tok["attention_mask"], word_ids=word_ids)
        for k in a:
            torch.testing.assert_close(a[k], b[k])

    def test_gradients_flow(self):
        enc = AFLocTextEncoder(_BERT, local_files_only=True, projection_dim=8)
        out = enc(**enc.tokenize(REPORTS[:2]))
        self.assertEqual(out[AFLocKeys.TEXT_REPORT].shape, (2, 8))
        out[AFLocKeys.TEXT_SENTENCES].sum().backward()
        self.assertIsNotNone(enc.model.embeddings.word_embeddings.weight.grad)

    def test_mean_aggregation_differs_only_on_pieces(self):
        enc = AFLocTextEncoder(_BERT, local_files_only=True, aggregation="mean").eval()
        batch = enc.tokenize(["heart size is normal", "small left pneumothorax"])
        a, b = self.enc(**batch), enc(**batch)
        torch.testing.assert_close(a[AFLocKeys.TEXT_WORDS][0], b[AFLocKeys.TEXT_WORDS][0])
        self.assertFalse(torch.allclose(a[AFLocKeys.TEXT_WORDS][1], b[AFLocKeys.TEXT_WORDS][1]))
        # "pneumo ##thorax" is word 3 of the second text: the mean is half the sum of its two pieces
        torch.testing.assert_close(b[AFLocKeys.TEXT_WORDS][1, :, 3], a[AFLocKeys.TEXT_WORDS][1, :, 3] / 2)

    def test_report_pooling_words(self):
        enc = AFLocTextEncoder(_BERT, local_files_only=True, report_pooling="words", projection_dim=6).eval()
        batch = enc.tokenize(REPORTS[:4])
        with torch.no_grad():
            out = enc(**batch)
            ref = AFLocTextEncoder(_BERT, local_files_only=True, projection_dim=6).eval()
            ref.load_state_dict(enc.state_dict())
            base = ref(**batch)
        for key in (AFLocKeys.TEXT_WORDS, AFLocKeys.TEXT_SENTENCES):  # only the report vector changes
            torch.testing.assert_close(out[key], base[key])
        for b in range(3):
            n = int(out[AFLocKeys.WORD_LENGTHS][b])  # CLS + n - 1 words: the words are positions 1 .. n - 1
            torch.testing.assert_close(out[AFLocKeys.TEXT_REPORT][b], out[AFLocKeys.TEXT_WORDS][b, :, 1:n].mean(-1),
                                       atol=1e-5, rtol=1e-5)
        # the empty report has no word: the projection of a zero vector (its bias)
        torch.testing.assert_close(out[AFLocKeys.TEXT_REPORT][3], enc.projection.bias)
        # a prompt is pooled like the same words inside a longer text: no dependence on padding or [CLS]/[SEP] weight
        short = enc(**enc.tokenize(["left effusion"]))[AFLocKeys.TEXT_REPORT]
        padded = enc(**enc.tokenize(["left effusion"], max_length=40))[AFLocKeys.TEXT_REPORT]
        torch.testing.assert_close(short, padded)

    def test_center(self):
        torch.manual_seed(0)
        enc = AFLocTextEncoder(_BERT, local_files_only=True, center=True, center_momentum=0.5)
        enc.load_state_dict(self.enc.state_dict(), strict=False)  # same model weights as the reference encoder
        enc.eval()
        batch = enc.tokenize(REPORTS[:3])
        with torch.no_grad():
            torch.testing.assert_close(enc(**batch)[AFLocKeys.TEXT_REPORT], self.enc(**batch)[AFLocKeys.TEXT_REPORT])
            hs = self.enc.model(**batch, output_hidden_states=True).hidden_states
            hidden = hs[-1] + hs[-2] + hs[-3] + hs[-4]
            mask = batch["attention_mask"].bool()
            first = hidden[mask].mean(0)  # the mean of the real tokens of the first training batch
            for m in enc.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.p = 0.0
            enc.train()(**batch)
            torch.testing.assert_close(enc.text_center, first, atol=1e-5, rtol=1e-5)
            enc.train()(**enc.tokenize(REPORTS[3:5]))  # the running mean moves halfway to the new batch's mean
            b2 = enc.tokenize(REPORTS[3:5])
            h2 = sum(self.enc.model(**b2, output_hidden_states=True).hidden_states[-4:])
            second = h2[b2["attention_mask"].bool()].mean(0)
            torch.testing.assert_close(enc.text_center, 0.5 * first + 0.5 * second, atol=1e-5, rtol=1e-5)
            enc.eval()
            centre = enc.text_center.clone()
            out = enc(**batch)
            torch.testing.assert_close(enc.text_center, centre)  # evaluation does not update it
        # centring = the reference pooling of the centred token features
        for b, ids in enumerate(batch["input_ids"]):
            tokens = enc.tokenizer.convert_ids_to_tokens(ids.tolist())
            _, _, _, _, r = reference_pool(hidden[b] - centre, tokens, 97)
            torch.testing.assert_close(out[AFLocKeys.TEXT_REPORT][b], r, atol=1e-4, rtol=1e-4)
        self.assertIn("centering.mean", enc.state_dict())
        self.assertNotIn("centering.mean", self.enc.state_dict())
        # a state dict from before the centring became a block (buffers "text_center", "text_center_initialized")
        old = {k.replace("centering.mean", "text_center").replace("centering.initialized", "text_center_initialized"): v
               for k, v in enc.state_dict().items()}
        fresh = AFLocTextEncoder(_BERT, local_files_only=True, center=True)
        fresh.load_state_dict(old)
        torch.testing.assert_close(fresh.text_center, enc.text_center, rtol=0, atol=0)
        self.assertTrue(bool(fresh.centering.initialized))

    @parameterized.expand(
        [
            ({"center": 1}, TypeError),
            ({"center": True, "center_momentum": 0}, ValueError),
            ({"center_momentum": 1.5}, ValueError),
            ({"last_n_layers": 9}, ValueError),  # 4 layers + embeddings = 5 hidden states
            ({"last_n_layers": 0}, ValueError),
            ({"aggregation": "max"}, ValueError),
            ({"max_length": 1}, ValueError),
            ({"projection_dim": -3}, ValueError),
            ({"projection_dim": 0}, ValueError),
            ({"report_pooling": "cls"}, ValueError),
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            AFLocTextEncoder(_BERT, local_files_only=True, **kwargs)

    def test_bad_inputs(self):
        batch = self.enc.tokenize(["heart size is normal"])
        ids, mask = batch["input_ids"], batch["attention_mask"]
        with self.assertRaises(ValueError):
            self.enc(ids[0], mask[0])  # not batched
        with self.assertRaises(ValueError):
            self.enc(ids[:, 1:], mask[:, 1:])  # no CLS
        with self.assertRaises(ValueError):
            self.enc(ids, torch.ones_like(mask))  # padding attended: last attended token is not SEP
        with self.assertRaises(TypeError):
            self.enc(ids.float(), mask)
        with self.assertRaises(ValueError):
            self.enc(ids.clamp_max(0) + 10_000, mask)
        with self.assertRaises(TypeError):
            self.enc.tokenize(None)


class TestPoolFunction(unittest.TestCase):
    def test_pure_function_shapes(self):
        h = torch.randn(2, 6, 3)
        mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
        starts = torch.tensor([[1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1]]).bool()
        period = torch.zeros(2, 6, dtype=torch.bool)
        period[1, 2] = True
        words, wl, sents, sl, rep = pool_words_and_sentences(h, mask, starts, period)
        self.assertEqual(wl.tolist(), [2, 5])  # [CLS, w(2 pieces), SEP] and [CLS, a, ., b, c, SEP]
        torch.testing.assert_close(words[0, 1], h[0, 1] + h[0, 2])
        self.assertEqual(sl.tolist(), [2, 3])
        torch.testing.assert_close(sents[1, 1], h[1, 1])
        torch.testing.assert_close(sents[1, 2], (h[1, 3] + h[1, 4]) / 2)
        torch.testing.assert_close(sents[1, 3], h[1, 5])
        torch.testing.assert_close(rep[0], (h[0, :4].sum(0)) / 6)


if __name__ == "__main__":
    unittest.main()


class TestDynamicPadding(unittest.TestCase):
    def test_report_length_equals_full_padding(self):
        enc = AFLocTextEncoder(_BERT, local_files_only=True).eval()
        texts = ["small left pneumothorax", "heart size is normal. no effusion"]
        full = enc(**enc.tokenize(texts))
        short = enc.tokenizer(texts, padding="longest", return_tensors="pt")
        dyn = enc(short["input_ids"], short["attention_mask"], short["token_type_ids"], report_length=97)
        torch.testing.assert_close(dyn[AFLocKeys.TEXT_REPORT], full[AFLocKeys.TEXT_REPORT], atol=1e-5, rtol=1e-5)

    def test_prompt_encoder_matches_reference_padding(self):
        from monai_afloc.inferers.localizer import PromptEncoder
        from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder

        net = AFLoc(AFLocImageEncoder("resnet10", embed_dim=32, input_size=None), AFLocTextEncoder(_BERT)).eval()
        prompts = ["small left pleural effusion", "cardiomegaly"]
        got = PromptEncoder(net)(prompts)
        ref = net.encode_text(**net.tokenize(prompts))[AFLocKeys.TEXT_REPORT]  # max_length padding, as the release
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


class TestFeatureCache(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.enc = AFLocTextEncoder(_BERT, local_files_only=True, freeze=True, feature_cache_size=3).eval()
        self.ref = AFLocTextEncoder(_BERT, local_files_only=True, freeze=True).eval()
        self.ref.load_state_dict(self.enc.state_dict())

    def test_same_outputs_and_counts(self):
        batch = self.enc.tokenize(REPORTS[:2])
        with torch.no_grad():
            first, second, expected = self.enc(**batch), self.enc(**batch), self.ref(**batch)
        for key in expected:
            torch.testing.assert_close(first[key], expected[key], rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(second[key], first[key], rtol=0, atol=0)
        self.assertEqual((self.enc.feature_cache_hits, self.enc.feature_cache_misses), (2, 2))

    def test_eviction_and_clear_on_load(self):
        with torch.no_grad():
            for text in REPORTS[:5]:
                self.enc(**self.enc.tokenize([text]))
            self.assertEqual(len(self.enc._feature_cache), 3)
            self.enc(**self.enc.tokenize([REPORTS[0]]))  # evicted: computed again
            self.assertEqual(self.enc.feature_cache_misses, 6)
            self.enc.load_state_dict(self.ref.state_dict())
            self.assertEqual(len(self.enc._feature_cache), 0)

    def test_trainable_model_is_never_cached(self):
        enc = AFLocTextEncoder(_BERT, local_files_only=True, feature_cache_size=8)
        out = enc(**enc.tokenize(REPORTS[:2]))
        self.assertEqual(len(enc._feature_cache), 0)
        out["text_report"].sum().backward()
        self.assertTrue(any(p.grad is not None for p in enc.model.parameters()))

    def test_copies_and_bad_size(self):
        import copy

        with torch.no_grad():
            self.enc(**self.enc.tokenize(REPORTS[:1]))
        clone = copy.deepcopy(self.enc)
        self.assertEqual(len(clone._feature_cache), 0)
        for bad in (-1, 1.5, True):
            with self.assertRaises(ValueError):
                AFLocTextEncoder(_BERT, local_files_only=True, feature_cache_size=bad)
