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

import copy
import math
import shutil
import tempfile
import unittest
from unittest import mock

import torch
from parameterized import parameterized

from monai_afloc.engines import AFLocEvalIteration, AFLocTrainIteration, prepare_afloc_batch
from monai_afloc.losses import AFLocLoss
from tests.engines._common import make_evaluator, make_trainer, tiny_afloc, tiny_batches

LOSS_KEYS = {"loss", "global_loss", "sentence_loss", "word_loss"}


def setUpModule():
    torch.set_num_threads(1)


class TestPrepareAFLocBatch(unittest.TestCase):
    def _batch(self, b=2, length=6):
        return {
            "image": torch.zeros(b, 3, 8, 8),
            "input_ids": torch.ones(b, length, dtype=torch.long),
            "attention_mask": torch.ones(b, length, dtype=torch.long),
        }

    def test_picks_inputs_and_optional_token_types(self):
        out = prepare_afloc_batch(self._batch(), "cpu")
        self.assertEqual(set(out), {"image", "input_ids", "attention_mask"})
        batch = self._batch()
        batch["token_type_ids"] = torch.zeros(2, 6, dtype=torch.long)
        batch["report"] = ["a", "b"]
        self.assertEqual(set(prepare_afloc_batch(batch)), {"image", "input_ids", "attention_mask", "token_type_ids"})

    def test_trim_padding(self):
        batch = self._batch(length=8)
        batch["attention_mask"][0, 3:] = 0
        batch["attention_mask"][1, 5:] = 0
        batch["token_type_ids"] = torch.zeros(2, 8, dtype=torch.long)
        out = prepare_afloc_batch(batch, trim_padding=True)
        self.assertEqual(out["report_length"], 8)
        for k in ("input_ids", "attention_mask", "token_type_ids"):
            self.assertEqual(tuple(out[k].shape), (2, 5), k)
        torch.testing.assert_close(out["attention_mask"], batch["attention_mask"][:, :5])
        full = prepare_afloc_batch(self._batch(length=8), trim_padding=True)  # nothing to cut
        self.assertEqual((tuple(full["input_ids"].shape), full["report_length"]), ((2, 8), 8))
        self.assertNotIn("report_length", prepare_afloc_batch(batch))
        with self.assertRaisesRegex(TypeError, "trim_padding"):
            prepare_afloc_batch(batch, trim_padding=1)

    def test_prefix_and_image_key(self):
        batch = {
            "img": torch.zeros(1, 3, 8, 8),
            "t_input_ids": torch.ones(1, 4, dtype=torch.long),
            "t_attention_mask": torch.ones(1, 4, dtype=torch.long),
        }
        out = prepare_afloc_batch(batch, image_key="img", text_prefix="t_")
        self.assertEqual(tuple(out["input_ids"].shape), (1, 4))

    def test_metatensor_becomes_plain(self):
        from monai.data import MetaTensor

        batch = self._batch()
        batch["image"] = MetaTensor(batch["image"])
        self.assertNotIsInstance(prepare_afloc_batch(batch)["image"], MetaTensor)

    @parameterized.expand(
        [
            ("missing_ids", lambda b: b.pop("input_ids"), KeyError),
            ("missing_image", lambda b: b.pop("image"), KeyError),
            ("image_rank", lambda b: b.update(image=torch.zeros(2, 8, 8)), ValueError),
            ("image_int", lambda b: b.update(image=torch.zeros(2, 3, 8, 8, dtype=torch.long)), ValueError),
            ("ids_float", lambda b: b.update(input_ids=torch.ones(2, 6)), ValueError),
            ("mask_shape", lambda b: b.update(attention_mask=torch.ones(2, 5, dtype=torch.long)), ValueError),
            ("batch_sizes", lambda b: b.update(image=torch.zeros(3, 3, 8, 8)), ValueError),
            ("not_tensor", lambda b: b.update(input_ids=[[1, 2]]), TypeError),
        ]
    )
    def test_bad_batch(self, _, edit, error):
        batch = self._batch()
        edit(batch)
        with self.assertRaises(error):
            prepare_afloc_batch(batch)

    def test_not_a_mapping(self):
        with self.assertRaises(TypeError):
            prepare_afloc_batch([torch.zeros(1)])


class TestAFLocIterations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.bert = f"{cls.tmp}/bert"
        cls.net = tiny_afloc(cls.bert)
        cls.batches = tiny_batches(cls.net)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _net(self):
        return copy.deepcopy(self.net)

    def test_train_step_updates_weights_and_returns_floats(self):
        net = self._net()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        trainer = make_trainer(net, self.batches, max_epochs=2)
        trainer.run()
        out = trainer.state.output
        self.assertEqual(set(out), LOSS_KEYS)
        self.assertTrue(all(isinstance(v, float) and math.isfinite(v) for v in out.values()))
        self.assertEqual(trainer.state.iteration, 4)
        changed = [k for k, v in net.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
        self.assertIn("image_encoder.local_embedder.weight", changed)
        self.assertIn("text_encoder.model.embeddings.word_embeddings.weight", changed)
        self.assertAlmostEqual(out["loss"], out["global_loss"] + out["sentence_loss"] + out["word_loss"], places=4)

    def test_matches_a_hand_written_step(self):
        net_a, net_b = self._net(), self._net()
        loss = AFLocLoss()
        trainer = make_trainer(net_a, self.batches[:1], loss=loss, lr=1e-3)
        torch.manual_seed(0)  # the same dropout masks in both runs
        trainer.run()
        opt = torch.optim.Adam(net_b.parameters(), lr=1e-3)
        net_b.train()
        batch = self.batches[0]
        torch.manual_seed(0)
        losses = loss(**net_b(batch["image"], batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]))
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        self.assertAlmostEqual(trainer.state.output["loss"], float(losses["loss"]), places=5)
        for (k, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
            torch.testing.assert_close(a, b, msg=k)

    def test_ablation_global_only(self):
        trainer = make_trainer(self._net(), self.batches, loss=AFLocLoss(sentence_weight=0.0, word_weight=0.0))
        trainer.run()
        self.assertEqual(trainer.state.output["sentence_loss"], 0.0)
        self.assertEqual(trainer.state.output["word_loss"], 0.0)
        self.assertAlmostEqual(trainer.state.output["loss"], trainer.state.output["global_loss"], places=5)

    def test_grad_clipping_is_applied(self):
        trainer = make_trainer(self._net(), self.batches[:1], iteration=AFLocTrainIteration(max_grad_norm=0.5))
        with mock.patch("torch.nn.utils.clip_grad_norm_", wraps=torch.nn.utils.clip_grad_norm_) as clip:
            trainer.run()
        clip.assert_called_once()
        self.assertEqual(clip.call_args[0][1], 0.5)

    def test_resolve_amp(self):
        from monai_afloc.engines import cpu_has_native_bf16, resolve_amp

        self.assertEqual(resolve_amp(False, "cpu"), (False, {}))
        self.assertEqual(resolve_amp(True, "cpu"), (True, {"dtype": torch.bfloat16}))
        expected = (True, {"dtype": torch.bfloat16}) if cpu_has_native_bf16() else (False, {})
        self.assertEqual(resolve_amp("auto", torch.device("cpu")), expected)
        with mock.patch("monai_afloc.engines.amp.cpu_has_native_bf16", return_value=False):
            self.assertEqual(resolve_amp("auto", "cpu"), (False, {}))
        with mock.patch("torch.cuda.is_bf16_supported", return_value=False):
            self.assertEqual(resolve_amp("auto", "cuda"), (True, {"dtype": torch.float16}))
        self.assertEqual(resolve_amp("auto", "mps"), (False, {}))
        for bad in ("yes", 1, None):
            with self.assertRaises(ValueError):
                resolve_amp(bad, "cpu")
        with self.assertRaises(TypeError):
            resolve_amp("auto", 0)

    def test_amp_on_cpu_bfloat16(self):
        trainer = make_trainer(self._net(), self.batches[:1], amp=True, amp_kwargs={"dtype": torch.bfloat16})
        trainer.run()
        self.assertTrue(all(math.isfinite(v) for v in trainer.state.output.values()))

    def test_nonfinite_loss_raises_before_the_step(self):
        def nan_loss(**outputs):
            x = outputs["image_report"].sum() * float("nan")
            return {"loss": x, "global_loss": x}

        net = self._net()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        trainer = make_trainer(net, self.batches[:1], loss=nan_loss)
        with self.assertRaises(FloatingPointError):
            trainer.run()
        for k, v in net.state_dict().items():
            if v.is_floating_point() and "running" not in k:
                torch.testing.assert_close(v, before[k], msg=k)

    def test_loss_must_return_a_dict(self):
        trainer = make_trainer(self._net(), self.batches[:1], loss=lambda **o: o["image_report"].sum())
        with self.assertRaises(TypeError):
            trainer.run()

    def test_gradient_accumulation_refused(self):
        trainer = make_trainer(self._net(), self.batches[:1], accumulation_steps=2)
        with self.assertRaises(ValueError):
            trainer.run()

    def test_trim_padding_gives_the_same_step(self):
        loss = AFLocLoss()
        batches = tiny_batches(self.net)
        self.assertTrue(bool((batches[0]["attention_mask"][:, -1] == 0).all()))  # padded: there is something to cut
        nets, outputs = [], []
        for trim in (False, True):
            net = self._net()
            for m in net.modules():  # dropout draws depend on the sequence length: switch it off to compare
                if isinstance(m, torch.nn.Dropout):
                    m.p = 0.0
            trainer = make_trainer(net, batches[:1], loss=loss, iteration=AFLocTrainIteration(trim_padding=trim))
            torch.manual_seed(0)
            trainer.run()
            nets.append(net)
            outputs.append(trainer.state.output)
        for k in outputs[0]:
            self.assertAlmostEqual(outputs[0][k], outputs[1][k], places=4, msg=k)
        for (k, a), b in zip(nets[0].named_parameters(), nets[1].parameters()):  # the step's gradients
            self.assertEqual(a.grad is None, b.grad is None, k)
            if a.grad is not None:
                torch.testing.assert_close(a.grad, b.grad, msg=k, atol=1e-5 * float(a.grad.abs().max()) + 1e-8, rtol=1e-3)
        evaluator = make_evaluator(nets[0], batches, loss=loss)
        vals = [AFLocEvalIteration(loss, trim_padding=t)(evaluator, batches[0])["loss"] for t in (False, True)]
        self.assertAlmostEqual(vals[0], vals[1], places=4)

    def test_eval_iteration_computes_loss_without_changing_weights(self):
        net = self._net()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        evaluator = make_evaluator(net, self.batches)
        evaluator.run()
        self.assertFalse(net.training)
        self.assertEqual(set(evaluator.state.output), LOSS_KEYS)
        val = evaluator.state.metrics["val_loss"]
        loss = AFLocLoss()
        with torch.no_grad():
            expected = [
                float(loss(**net(b["image"], b["input_ids"], b["attention_mask"], b["token_type_ids"]))["loss"])
                for b in self.batches
            ]
        self.assertAlmostEqual(val, sum(expected) / len(expected), places=4)
        for k, v in net.state_dict().items():
            torch.testing.assert_close(v, before[k], msg=k)

    def test_ill_arg(self):
        for bad in (0, -1.0, float("nan"), float("inf"), True, "1"):
            with self.assertRaises(ValueError):
                AFLocTrainIteration(max_grad_norm=bad)
        with self.assertRaises(TypeError):
            AFLocTrainIteration(loss_function=3)
        with self.assertRaises(TypeError):
            AFLocTrainIteration(image_key=1)
        with self.assertRaises(TypeError):
            AFLocEvalIteration(loss_function=None)
        with self.assertRaises(TypeError):
            AFLocEvalIteration(AFLocLoss(), text_prefix=None)
        with self.assertRaises(TypeError):
            AFLocTrainIteration(trim_padding="yes")
        with self.assertRaises(TypeError):
            AFLocEvalIteration(AFLocLoss(), trim_padding=None)
        with self.assertRaises(ValueError):
            AFLocTrainIteration()(None, None)


if __name__ == "__main__":
    unittest.main()
