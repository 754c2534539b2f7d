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
import json
import os
import shutil
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch
from ignite.engine import Engine, Events

from monai_afloc.checkpoint import CONFIG_FILENAME, load_afloc_checkpoint
from monai_afloc.engines import (
    AFLocModelSaver,
    AFLocProgressBar,
    ResumableCheckpointHandler,
    CosineLRHandler,
    StepBudgetHandler,
    WallClockBudgetHandler,
    latest_checkpoint,
    saved_training_settings,
    unwrap_network,
)
from tests.engines._common import make_trainer, tiny_afloc, tiny_batches


def setUpModule():
    torch.set_num_threads(1)


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))


def _metric_engine(values):
    """An Ignite engine whose epoch ``e`` reports ``values[e - 1]`` as ``val_loss`` (like an evaluator)."""
    engine = Engine(lambda e, b: None)

    @engine.on(Events.EPOCH_COMPLETED)
    def _set(e):
        e.state.metrics["val_loss"] = values[e.state.epoch - 1]

    return engine


class TestWallClockBudgetHandler(unittest.TestCase):
    def test_terminates_and_completes(self):
        engine = Engine(lambda e, b: None)
        completed = []
        WallClockBudgetHandler(minutes=1e-9).attach(engine)
        engine.add_event_handler(Events.COMPLETED, lambda e: completed.append(e.state.iteration))
        engine.run(range(5), max_epochs=3)
        self.assertEqual(engine.state.iteration, 1)
        self.assertTrue(engine.state.budget_exhausted)
        self.assertEqual(completed, [1])  # savers listening to COMPLETED still run

    def test_check_every(self):
        engine = Engine(lambda e, b: None)
        WallClockBudgetHandler(minutes=1e-9, check_every=3).attach(engine)
        engine.run(range(5), max_epochs=3)
        self.assertEqual(engine.state.iteration, 3)

    def test_no_limit(self):
        engine = Engine(lambda e, b: None)
        WallClockBudgetHandler(minutes=None).attach(engine)
        engine.run(range(5), max_epochs=2)
        self.assertEqual(engine.state.iteration, 10)
        self.assertFalse(engine.state.budget_exhausted)

    def test_large_budget_not_spent(self):
        engine = Engine(lambda e, b: None)
        handler = WallClockBudgetHandler(minutes=60)
        handler.attach(engine)
        engine.run(range(4), max_epochs=2)
        self.assertEqual(engine.state.iteration, 8)
        self.assertLess(handler.elapsed_minutes, 60)
        self.assertGreater(engine.state.budget_progress, 0.0)
        self.assertLess(engine.state.budget_progress, 1e-3)

    def test_budget_progress(self):
        engine = Engine(lambda e, b: None)
        WallClockBudgetHandler(minutes=None).attach(engine)
        self.assertIsNone(engine.state.budget_progress)
        engine = Engine(lambda e, b: None)
        WallClockBudgetHandler(minutes=1e-9).attach(engine)
        engine.run(range(3), max_epochs=1)
        self.assertEqual(engine.state.budget_progress, 1.0)

    def test_ill_arg(self):
        for bad in (0, -1, float("nan"), float("inf"), True, "5"):
            with self.assertRaises(ValueError):
                WallClockBudgetHandler(minutes=bad)
        with self.assertRaises(ValueError):
            WallClockBudgetHandler(minutes=1, check_every=0)


class TestStepBudgetHandler(unittest.TestCase):
    def test_stops_at_the_step_and_drives_the_cosine(self):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        lrs, completed = [], []
        engine = Engine(lambda e, b: lrs.append(opt.param_groups[0]["lr"]))
        StepBudgetHandler(max_steps=4).attach(engine)
        CosineLRHandler(opt, min_lr_ratio=0.0).attach(engine)
        engine.add_event_handler(Events.COMPLETED, lambda e: completed.append(e.state.iteration))
        engine.run(range(3), max_epochs=1000)
        self.assertEqual((engine.state.iteration, completed, engine.state.step_progress), (4, [4], 1.0))
        np.testing.assert_allclose(lrs, 0.5 * (1 + np.cos(np.pi * np.array([0.0, 0.25, 0.5, 0.75]))), atol=1e-12)

    def test_disabled_and_ill_arg(self):
        engine = Engine(lambda e, b: None)
        StepBudgetHandler(None).attach(engine)
        engine.run(range(3), max_epochs=2)
        self.assertEqual(engine.state.iteration, 6)
        for bad in (0, -1, 2.5, "3"):
            with self.assertRaises((TypeError, ValueError)):
                StepBudgetHandler(bad)


class TestCosineLRHandler(unittest.TestCase):
    def _run(self, handler_kwargs, max_epochs=2, epoch_length=5, budget=None, clock=None):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([{"params": [p], "lr": 0.1}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0}])
        lrs = []
        engine = Engine(lambda e, b: lrs.append([g["lr"] for g in opt.param_groups]))
        if budget is not None:
            engine.add_event_handler(
                Events.ITERATION_COMPLETED, lambda e: setattr(e.state, "budget_progress", clock(e))
            )
            engine.state.budget_progress = 0.0
        CosineLRHandler(opt, **handler_kwargs).attach(engine)
        engine.run(range(epoch_length), max_epochs=max_epochs)
        return np.asarray(lrs)

    def test_cosine_over_iterations(self):
        lrs = self._run({"min_lr_ratio": 0.1})
        t = np.arange(10) / 10
        expected = 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t))
        np.testing.assert_allclose(lrs[:, 0], 0.1 * expected, rtol=1e-12)
        np.testing.assert_allclose(lrs[:, 1], 1.0 * expected, rtol=1e-12)  # each group keeps its own base rate
        self.assertTrue(np.all(np.diff(lrs[:, 0]) < 0))

    def test_warmup(self):
        lrs = self._run({"min_lr_ratio": 0.0, "warmup_fraction": 0.2})
        np.testing.assert_allclose(lrs[:3, 1], [0.0, 0.5, 1.0], atol=1e-12)
        self.assertAlmostEqual(lrs[-1, 1], 0.5 * (1 + np.cos(np.pi * 0.7 / 0.8)), places=12)

    def test_budget_drives_the_schedule(self):
        # a budget spent at half the iterations: the rate reaches its floor when the budget says so
        lrs = self._run({"min_lr_ratio": 0.01}, max_epochs=100, budget=True,
                        clock=lambda e: min(1.0, e.state.iteration / 4))
        budget = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
        np.testing.assert_allclose(lrs[:6, 1], 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * budget)), atol=1e-12)
        np.testing.assert_allclose(lrs[6:, 1], 0.01, atol=1e-12)

    def test_with_budget_handler(self):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        lrs = []
        engine = Engine(lambda e, b: lrs.append(opt.param_groups[0]["lr"]))
        WallClockBudgetHandler(minutes=4).attach(engine)
        CosineLRHandler(opt, min_lr_ratio=0.0).attach(engine)
        clock = iter(range(0, 100000, 60))  # each reading of the clock is one minute later
        with mock.patch("monai_afloc.engines.handlers.time.monotonic", lambda: float(next(clock))):
            engine.run(range(3), max_epochs=1000)
        # the 4-minute budget, not the 1000 nominal epochs, sets the pace: the rate decays over 4 iterations
        self.assertEqual(engine.state.iteration, 4)
        np.testing.assert_allclose(lrs, 0.5 * (1 + np.cos(np.pi * np.array([0.0, 0.25, 0.5, 0.75]))), atol=1e-12)

    def test_ill_arg(self):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        with self.assertRaises(TypeError):
            CosineLRHandler("sgd")
        for kwargs in ({"min_lr_ratio": -0.1}, {"min_lr_ratio": 1.5}, {"warmup_fraction": 1.0},
                       {"warmup_fraction": True},
                       {"min_lr_ratio": "0.1"}):
            with self.assertRaises(ValueError):
                CosineLRHandler(opt, **kwargs)


class TestLatestCheckpoint(unittest.TestCase):
    def test_picks_highest_iteration_and_skips_broken_files(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertIsNone(latest_checkpoint(os.path.join(d, "missing")))
            self.assertIsNone(latest_checkpoint(d))
            for name, it in (("a.pt", 6), ("b.pt", 3)):
                torch.save({"trainer": {"iteration": it, "epoch_length": 3}, "model": {}}, os.path.join(d, name))
            torch.save({"model": {}}, os.path.join(d, "no_trainer.pt"))
            with open(os.path.join(d, "z.pt"), "wb") as f:
                f.write(b"not a checkpoint")  # e.g. cut short by a crash
            with self.assertLogs("monai_afloc.engines.handlers", "WARNING"):
                self.assertEqual(latest_checkpoint(d), os.path.join(d, "a.pt"))

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            latest_checkpoint(None)
        with self.assertRaises(TypeError):
            latest_checkpoint("x", pattern="")


class TestResumableCheckpointHandler(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.net = tiny_afloc(f"{cls.tmp}/bert")
        cls.batches = tiny_batches(cls.net, n_batches=2)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _trainer(self, net, ckpt_dir, resume, max_epochs, extra_handlers=()):
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        handler = ResumableCheckpointHandler(
            ckpt_dir, {"model": net, "optimizer": opt, "lr_scheduler": sched}, resume=resume
        )
        from monai.engines import SupervisedTrainer
        from monai.handlers import LrScheduleHandler

        from monai_afloc.engines import AFLocTrainIteration
        from monai_afloc.losses import AFLocLoss

        trainer = SupervisedTrainer(
            device=torch.device("cpu"),
            max_epochs=max_epochs,
            train_data_loader=self.batches,
            network=net,
            optimizer=opt,
            loss_function=AFLocLoss(),
            iteration_update=AFLocTrainIteration(),
            decollate=False,
            train_handlers=[handler, LrScheduleHandler(sched, print_lr=False), *extra_handlers],
        )
        return trainer, opt, sched, handler

    def test_stop_and_resume(self):
        ckpt_dir = os.path.join(self.tmp, "ckpt_resume")
        net1 = copy.deepcopy(self.net)
        trainer1, opt1, _, _ = self._trainer(net1, ckpt_dir, resume=False, max_epochs=1)
        trainer1.run()
        saved = latest_checkpoint(ckpt_dir)
        self.assertIsNotNone(saved)
        ckpt = torch.load(saved, weights_only=True)
        self.assertEqual(ckpt["trainer"]["iteration"], 2)

        net2 = copy.deepcopy(self.net)  # fresh weights: the resume must restore them
        seen = {}

        class _Probe:
            def attach(self, engine):
                engine.add_event_handler(Events.STARTED, self)

            def __call__(self, engine):
                seen["iteration"], seen["epoch"] = engine.state.iteration, engine.state.epoch
                seen["weights"] = {k: v.clone() for k, v in net2.state_dict().items()}
                seen["optimizer"] = copy.deepcopy(opt2.state_dict())
                seen["lr"] = opt2.param_groups[0]["lr"]

        trainer2, opt2, _, handler2 = self._trainer(
            net2, ckpt_dir, resume=True, max_epochs=2, extra_handlers=[_Probe()]
        )
        trainer2.run()
        self.assertEqual(handler2.resumed_from, saved)
        self.assertEqual((seen["iteration"], seen["epoch"]), (2, 1))  # restored before training continues
        for k, v in net1.state_dict().items():
            torch.testing.assert_close(seen["weights"][k], v, msg=k)
        state1, state2 = opt1.state_dict()["state"], seen["optimizer"]["state"]
        self.assertEqual(set(state1), set(state2))
        for i in state1:
            torch.testing.assert_close(state2[i]["exp_avg"], state1[i]["exp_avg"])
            self.assertEqual(float(state2[i]["step"]), float(state1[i]["step"]))
        self.assertAlmostEqual(seen["lr"], opt1.param_groups[0]["lr"])
        self.assertEqual(trainer2.state.iteration, 4)  # the count went on, nothing repeated
        self.assertEqual(trainer2.state.epoch, 2)

    def test_resume_without_checkpoint_starts_fresh(self):
        ckpt_dir = os.path.join(self.tmp, "ckpt_fresh")
        trainer, _, _, handler = self._trainer(copy.deepcopy(self.net), ckpt_dir, resume=True, max_epochs=1)
        trainer.run()
        self.assertIsNone(handler.resumed_from)
        self.assertEqual(trainer.state.iteration, 2)
        self.assertTrue(os.path.isfile(os.path.join(ckpt_dir, "checkpoint_final.pt")))

    def test_ill_arg(self):
        net = _Net()
        with self.assertRaises(TypeError):
            ResumableCheckpointHandler("d", {})
        with self.assertRaises(ValueError):
            ResumableCheckpointHandler("d", {"model": net, "trainer": net})
        with self.assertRaises(TypeError):
            ResumableCheckpointHandler("d", {"model": object()})
        with self.assertRaises(TypeError):
            ResumableCheckpointHandler("d", {"model": net}, resume="yes")
        with self.assertRaises(ValueError):
            ResumableCheckpointHandler("d", {"model": net}, save_interval=-1)
        with self.assertRaises(ValueError):
            ResumableCheckpointHandler("d", {"model": net}, final_filename=os.path.join("a", "b.pt"))
        with self.assertRaises(TypeError):
            ResumableCheckpointHandler(None, {"model": net})


class TestAFLocModelSaver(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.net = tiny_afloc(f"{cls.tmp}/bert")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _extra(self, path):
        with open(os.path.join(path, CONFIG_FILENAME), encoding="utf-8") as f:
            return json.load(f)["extra"]

    def test_best_min_and_max(self):
        for mode, values, best in (("min", [3.0, 2.0, 4.0], 2.0), ("max", [3.0, 2.0, 4.0], 4.0)):
            d = os.path.join(self.tmp, f"best_{mode}")
            saver = AFLocModelSaver(d, self.net, key_metric_name="val_loss", mode=mode, extra={"image_size": 32})
            engine = _metric_engine(values)
            saver.attach(engine)
            engine.run([0], max_epochs=3)
            extra = self._extra(saver.best_path)
            self.assertEqual(extra["key_metric_value"], best)
            self.assertEqual(extra["epoch"], values.index(best) + 1)
            self.assertEqual(extra["image_size"], 32)
            self.assertEqual(saver.state_dict(), {"best_metric": best, "best_epoch": values.index(best) + 1})
            self.assertEqual(sorted(os.listdir(d)), ["best"])  # no temporary folders left

    def test_best_state_survives_a_resume(self):
        d = os.path.join(self.tmp, "best_resume")
        saver = AFLocModelSaver(d, self.net, key_metric_name="val_loss")
        saver.load_state_dict({"best_metric": 1.0, "best_epoch": 4})
        engine = _metric_engine([2.0])
        saver.attach(engine)
        engine.run([0], max_epochs=1)
        self.assertFalse(os.path.exists(saver.best_path))  # 2.0 is worse than the restored 1.0

    def test_final_model_loads_back(self):
        d = os.path.join(self.tmp, "final")
        net = copy.deepcopy(self.net)
        batches = tiny_batches(net, n_batches=1)
        saver = AFLocModelSaver(d, torch.nn.DataParallel(net), save_final=True, extra={"image_size": 32})
        trainer = make_trainer(net, batches, handlers=[saver])
        trainer.run()
        loaded = load_afloc_checkpoint(saver.final_path)
        for k, v in net.state_dict().items():
            torch.testing.assert_close(loaded.state_dict()[k], v, msg=k)
        self.assertEqual(saved_training_settings(saver.final_path)["image_size"], 32)
        self.assertEqual(saved_training_settings(saver.final_path)["iteration"], 1)
        trainer.run()  # a second save replaces the first in place
        self.assertEqual(sorted(os.listdir(d)), ["last"])

    def test_metric_missing(self):
        saver = AFLocModelSaver(os.path.join(self.tmp, "missing"), self.net, key_metric_name="val_dice")
        engine = _metric_engine([1.0])
        saver.attach(engine)
        with self.assertRaises(KeyError):
            engine.run([0], max_epochs=1)

    def test_disabled_writes_nothing(self):
        d = os.path.join(self.tmp, "disabled")
        saver = AFLocModelSaver(d, self.net, save_final=True, enabled=False)
        engine = Engine(lambda e, b: None)
        saver.attach(engine)
        engine.run([0], max_epochs=1)
        self.assertFalse(os.path.exists(d))

    def test_ill_arg(self):
        net = self.net
        with self.assertRaises(ValueError):
            AFLocModelSaver("d", net)  # nothing to save
        with self.assertRaises(TypeError):
            AFLocModelSaver("d", "net", save_final=True)
        with self.assertRaises(ValueError):
            AFLocModelSaver("d", net, key_metric_name="")
        with self.assertRaises(ValueError):
            AFLocModelSaver("d", net, key_metric_name="val_loss", mode="lowest")
        with self.assertRaises(ValueError):
            AFLocModelSaver("d", net, save_final=True, final_name="a/b")
        with self.assertRaises(TypeError):
            AFLocModelSaver("d", net, save_final=True, extra=[1])
        with self.assertRaises(TypeError):
            AFLocModelSaver("d", net, save_final="yes")


class TestSmallHelpers(unittest.TestCase):
    def test_saved_training_settings_of_other_paths(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(saved_training_settings(d), {})
            self.assertEqual(saved_training_settings(os.path.join(d, "release.ckpt")), {})
        with self.assertRaises(TypeError):
            saved_training_settings(3)

    def test_unwrap_network(self):
        net = _Net()
        self.assertIs(unwrap_network(torch.nn.DataParallel(net)), net)
        self.assertIs(unwrap_network(net), net)

    def test_progress_bar(self):
        engine = Engine(lambda e, b: {"loss": 1.0, "global_loss": 0.5})
        AFLocProgressBar(persist=False).attach(engine)
        engine.run(range(3), max_epochs=1)
        self.assertEqual(engine.state.iteration, 3)
        AFLocProgressBar(enabled=False).attach(Engine(lambda e, b: None))

    def test_progress_bar_ill_arg(self):
        with self.assertRaises(TypeError):
            AFLocProgressBar(output_keys="loss")
        with self.assertRaises(TypeError):
            AFLocProgressBar(persist=1)
        with self.assertRaises(TypeError):
            AFLocProgressBar(desc=None)


if __name__ == "__main__":
    unittest.main()
