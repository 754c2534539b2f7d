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
Crash-safe training state: the bundle's training is killed (SIGKILL) in the middle of a checkpoint write, then
resumed; and the resumable checkpoint handler's refusal, clean-up and counters.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import unittest

import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monai_afloc.apps.synthetic import make_synthetic_dataset
from monai_afloc.engines import AFLocModelSaver, ResumableCheckpointHandler, latest_checkpoint, saved_training_settings
from tests.engines._common import make_evaluator, make_trainer, tiny_afloc, tiny_batches
from tests.helpers import make_tiny_bert

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUNDLE = os.path.join(ROOT, "bundles", "afloc_chest_xray_localization")
CONFIGS = os.path.join(BUNDLE, "configs")

# run in a subprocess: the bundle's training, whose second torch.save writes half of its bytes and then the process
# kills itself with SIGKILL (nothing runs after: no finally, no atexit), as a power cut or an OOM killer would
_KILLED_RUN = textwrap.dedent(
    """
    import io, json, os, signal, sys
    import torch
    overrides = json.loads(sys.argv[1])
    real_save, calls = torch.save, []

    def dying_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        out = open(f, "wb") if isinstance(f, (str, os.PathLike)) else f
        out.write(data[: len(data) // 2])
        out.flush()
        os.fsync(out.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = dying_save
    torch.set_num_threads(1)
    from monai.bundle import ConfigWorkflow
    c = os.path.join(overrides.pop("bundle_root"), "configs")
    wf = ConfigWorkflow(config_file=os.path.join(c, "train.json"), meta_file=os.path.join(c, "metadata.json"),
                        workflow_type="train", bundle_root=os.path.dirname(c), **overrides)
    wf.initialize()
    wf.run()
    sys.exit(3)  # not reached: the second checkpoint write kills the process
    """
)


class TestKillDuringCheckpointWrite(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        cls.bert = make_tiny_bert(os.path.join(cls.tmp, "bert"))
        cls.data = os.path.join(cls.tmp, "data")
        make_synthetic_dataset(cls.data, n_train=8, n_val=4, n_test_annotated=2, image_size=64, seed=0)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def overrides(self, out: str, **more) -> dict:
        ov = {
            "bundle_root": BUNDLE,
            "output_dir": out,
            "dataset_dir": self.data,
            "generate_synthetic": False,
            "text_model": self.bert,
            "backbone": "resnet18",
            "image_size": 64,
            "encoder_input_size": None,
            "batch_size": 4,
            "epochs": 3,
            "num_workers": 0,
            "progress_bar": False,
            "tensorboard": False,
        }
        ov.update(more)
        return ov

    def test_sigkill_mid_write_then_resume(self):
        out = os.path.join(self.tmp, "run")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run(
            [sys.executable, "-c", _KILLED_RUN, json.dumps(self.overrides(out))],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
        )
        self.assertEqual(proc.returncode, -signal.SIGKILL, proc.stderr[-3000:])
        ckpt_dir = os.path.join(out, "checkpoints")
        # the epoch-1 checkpoint survived the kill during the epoch-2 write, complete
        epoch1 = os.path.join(ckpt_dir, "checkpoint_epoch=1.pt")
        self.assertEqual(latest_checkpoint(ckpt_dir), epoch1)
        self.assertEqual(torch.load(epoch1, weights_only=True)["trainer"]["iteration"], 2)
        self.assertFalse(os.path.exists(os.path.join(ckpt_dir, "checkpoint_epoch=2.pt")))
        best_before = saved_training_settings(os.path.join(out, "models", "best"))["key_metric_value"]

        # resume in this process: from epoch 1, the interrupted write cleaned up, the better best model kept
        wf = ConfigWorkflow(
            config_file=os.path.join(CONFIGS, "train.json"), meta_file=os.path.join(CONFIGS, "metadata.json"),
            workflow_type="train", **self.overrides(out, resume=True),
        )
        wf.initialize()
        trainer = wf.parser.get_parsed_content("train#trainer")
        evaluator = wf.parser.get_parsed_content("validate#evaluator")
        seen, val_losses = {}, []
        trainer.add_event_handler(Events.STARTED, lambda e: seen.update(iteration=e.state.iteration))
        evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: val_losses.append(e.state.metrics["val_loss"]))
        wf.run()
        wf.finalize()
        self.assertEqual(seen["iteration"], 2)  # restored from the epoch-1 checkpoint, not trained from scratch
        self.assertEqual(trainer.state.epoch, 3)
        self.assertEqual(glob.glob(os.path.join(ckpt_dir, ".*")), [])  # no temporary file left
        self.assertEqual(
            sorted(os.listdir(ckpt_dir)), ["checkpoint_epoch=3.pt", "checkpoint_final.pt"]
        )
        best = saved_training_settings(os.path.join(out, "models", "best"))
        self.assertAlmostEqual(best["key_metric_value"], min([best_before] + val_losses), places=6)
        self.assertGreater(best["iteration"], 1)  # the trainer's iteration, not the evaluator's (1 batch)


class TestResumableCheckpointHandlerSafety(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        cls.net = tiny_afloc(os.path.join(cls.tmp, "bert"))
        cls.batches = tiny_batches(cls.net, n_batches=2)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _handler(self, ckpt_dir: str, resume: bool) -> ResumableCheckpointHandler:
        return ResumableCheckpointHandler(ckpt_dir, {"model": self.net}, resume=resume)

    def test_resume_refuses_when_no_checkpoint_loads(self):
        ckpt_dir = os.path.join(self.tmp, "broken")
        os.makedirs(ckpt_dir)
        with open(os.path.join(ckpt_dir, "checkpoint_epoch=1.pt"), "wb") as f:
            f.write(b"PK\x03\x04 cut short")
        trainer = make_trainer(self.net, self.batches)
        with self.assertRaisesRegex(RuntimeError, r"none of them loads.*checkpoint_epoch=1\.pt"):
            self._handler(ckpt_dir, resume=True).attach(trainer)
        self.assertTrue(os.path.isfile(os.path.join(ckpt_dir, "checkpoint_epoch=1.pt")))  # nothing deleted

    def test_stale_checkpoints_of_an_older_run_are_removed(self):
        ckpt_dir = os.path.join(self.tmp, "stale")
        os.makedirs(ckpt_dir)
        old = os.path.join(ckpt_dir, "checkpoint_epoch=9.pt")
        torch.save({"trainer": {"iteration": 27, "epoch_length": 3, "max_epochs": 9}, "model": {}}, old)
        tmp_left = os.path.join(ckpt_dir, ".checkpoint_epoch=3.pt.tmp-4242")
        with open(tmp_left, "wb") as f:
            f.write(b"half")
        trainer = make_trainer(self.net, self.batches, max_epochs=1)
        self._handler(ckpt_dir, resume=False).attach(trainer)
        self.assertFalse(os.path.exists(tmp_left))  # interrupted writes are cleaned at attach
        self.assertTrue(os.path.exists(old))  # an older run's checkpoint stays until this run has saved
        trainer.run()
        self.assertEqual(sorted(os.listdir(ckpt_dir)), ["checkpoint_epoch=1.pt", "checkpoint_final.pt"])
        self.assertEqual(torch.load(latest_checkpoint(ckpt_dir), weights_only=True)["trainer"]["iteration"], 2)

    def test_write_is_atomic(self):
        ckpt_dir = os.path.join(self.tmp, "atomic")
        trainer = make_trainer(self.net, self.batches, max_epochs=2)
        self._handler(ckpt_dir, resume=False).attach(trainer)
        sizes = []

        def failing_save(obj, f, *args, **kwargs):
            sizes.append(os.path.getsize(os.path.join(ckpt_dir, "checkpoint_epoch=1.pt")))
            f.write(b"partial")
            raise OSError("disk full")

        trainer.add_event_handler(
            Events.EPOCH_COMPLETED(once=1), lambda e: setattr(torch, "save", failing_save)
        )
        real = torch.save
        try:
            with self.assertRaises(OSError):
                trainer.run()
        finally:
            torch.save = real
        # the epoch-2 write failed: epoch 1 is intact, no partial file, nothing else
        self.assertEqual(os.listdir(ckpt_dir), ["checkpoint_epoch=1.pt"])
        self.assertEqual(torch.load(latest_checkpoint(ckpt_dir), weights_only=True)["trainer"]["iteration"], 2)

    def test_best_model_records_trainer_iteration_and_keeps_better(self):
        models = os.path.join(self.tmp, "models")
        saver = AFLocModelSaver(models, self.net, key_metric_name="val_loss")
        evaluator = make_evaluator(self.net, self.batches[:1], handlers=[saver])
        from monai.handlers import ValidationHandler

        trainer = make_trainer(self.net, self.batches, max_epochs=2, handlers=[ValidationHandler(1, evaluator)])
        ResumableCheckpointHandler(os.path.join(self.tmp, "ck_best"), {"saver": saver}).attach(trainer)
        trainer.run()
        settings = saved_training_settings(os.path.join(models, "best"))
        self.assertEqual(settings["iteration"], 2 * settings["epoch"])  # 2 training batches per epoch
        # a fresh saver (e.g. a restart whose checkpoint was lost) never replaces a better best model
        path = os.path.join(models, "best", "afloc_config.json")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        config["extra"]["key_metric_value"] = -1e9
        with open(path, "w", encoding="utf-8") as f:
            json.dump(config, f)
        fresh = AFLocModelSaver(models, self.net, key_metric_name="val_loss")
        make_evaluator(self.net, self.batches[:1], handlers=[fresh]).run()
        self.assertEqual(saved_training_settings(os.path.join(models, "best"))["key_metric_value"], -1e9)
        self.assertEqual(fresh.best_metric, -1e9)


if __name__ == "__main__":
    unittest.main()
