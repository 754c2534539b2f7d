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
"""Tests for LocalizationValidationHandler: scoring, model selection order, train/eval modes, TensorBoard logging."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch
from ignite.engine import Engine, Events
from parameterized import parameterized
from PIL import Image

from monai_afloc.engines import (
    AFLocModelSaver,
    FollowTrainer,
    LocalizationValidationHandler,
    heatmap_overlay,
    localization_key_metric,
    saved_training_settings,
)
from monai_afloc.networks.nets import AFLoc
from tests.engines._common import make_evaluator, make_trainer, tiny_afloc, tiny_batches
from tests.helpers import BrightnessAFLoc, _BrightnessImageEncoder, _ConstantTextEncoder

SIZE = 64  # image and frame size; the report's 14-pixel border leaves [14, 50) of the frame

_TMP = ""


def setUpModule():
    global _TMP
    torch.set_num_threads(1)
    _TMP = tempfile.mkdtemp()


def tearDownModule():
    shutil.rmtree(_TMP, ignore_errors=True)


class _NegatedTextEncoder(_ConstantTextEncoder):
    """Every prompt embeds to -1: the heatmap is the *negated* brightness, so it peaks outside the bright finding."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out["text_report"] = -out["text_report"]
        return out


def wrong_afloc() -> AFLoc:
    return AFLoc(_BrightnessImageEncoder(19), _NegatedTextEncoder()).eval()


def square_items(folder: str, n: int = 4, seed: int = 0) -> list[dict]:
    """``n`` dark images, each with one bright 10-pixel square, annotated by that square's mask."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        y, x = (int(v) for v in rng.integers(18, 36, size=2))
        image = np.full((SIZE, SIZE), 30, np.uint8)
        image[y : y + 10, x : x + 10] = 220
        mask = np.zeros((SIZE, SIZE), bool)
        mask[y : y + 10, x : x + 10] = True
        path = os.path.join(folder, f"case{i}.png")
        Image.fromarray(image).save(path)
        category = ("Nodule", "Mass")[i % 2]
        items.append({"image": path, "category": category, "prompt_location_free": category.lower(),
                      "prompt": f"left {category.lower()}", "mask": mask, "width": SIZE, "height": SIZE})
    return items


class _FakeWriter:
    def __init__(self):
        self.scalars, self.images, self.flushed = [], [], 0

    def add_scalar(self, tag, value, global_step=None):
        self.scalars.append((tag, value, global_step))

    def add_image(self, tag, img, global_step=None, dataformats="CHW"):
        self.images.append((tag, img, global_step, dataformats))

    def flush(self):
        self.flushed += 1


def _epoch_engine() -> Engine:
    """A one-iteration engine standing in for the evaluator."""
    return Engine(lambda e, b: None)


class TestKeyMetric(unittest.TestCase):
    def test_values(self):
        self.assertAlmostEqual(localization_key_metric(0.25, 0.6), 0.31)
        self.assertAlmostEqual(localization_key_metric(0.25, 3.0), 0.35)  # CNR clipped to 1
        self.assertAlmostEqual(localization_key_metric(0.25, -3.0), 0.15)
        self.assertAlmostEqual(localization_key_metric(0.25, float("nan")), 0.25)  # NaN CNR adds nothing
        self.assertAlmostEqual(localization_key_metric(0.25, 0.6, cnr_weight=0.0), 0.25)
        self.assertTrue(math.isnan(localization_key_metric(float("nan"), 0.6)))
        # a pointing-game lead of more than 0.2 outweighs any CNR; at equal pointing game the CNR decides
        self.assertGreater(localization_key_metric(0.46, -5.0), localization_key_metric(0.25, 5.0))
        self.assertGreater(localization_key_metric(0.25, 0.5), localization_key_metric(0.25, 0.4))
        with self.assertRaises(ValueError):
            localization_key_metric(0.2, 0.3, cnr_weight=-1)


class TestHeatmapOverlay(unittest.TestCase):
    def test_picture(self):
        frame = torch.full((3, 32, 32), -1.0)  # black image
        heat = torch.zeros(32, 32)
        heat[8:16, 8:16] = 1.0
        valid = torch.ones(32, 32, dtype=torch.bool)
        valid[:, 28:] = False  # padding
        mask = torch.zeros(32, 32, dtype=torch.bool)
        mask[20:26, 20:26] = True
        img = heatmap_overlay(frame, heat, mask=mask, valid=valid, alpha=0.5)
        self.assertEqual((tuple(img.shape), img.dtype), ((3, 32, 32), torch.float32))
        self.assertGreaterEqual(float(img.min()), 0.0)
        self.assertLessEqual(float(img.max()), 1.0)
        torch.testing.assert_close(img[:, 10, 10], torch.tensor([0.25, 0.0, 0.0]))  # hot: red over black
        torch.testing.assert_close(img[:, 2, 2], torch.tensor([0.0, 0.0, 0.25]))  # cold: blue
        torch.testing.assert_close(img[:, 2, 30], torch.zeros(3))  # padding: the gray frame only
        torch.testing.assert_close(img[:, 20, 22], torch.tensor([0.0, 1.0, 0.0]))  # the truth's outline in green
        self.assertFalse(torch.equal(img[:, 23, 23], torch.tensor([0.0, 1.0, 0.0])))  # not its inside
        constant = heatmap_overlay(torch.zeros(16, 16), torch.ones(16, 16))  # a flat map: no NaN
        self.assertTrue(torch.isfinite(constant).all())

    @parameterized.expand([
        [{"heatmap": torch.zeros(8, 9)}, ValueError],
        [{"mask": np.zeros((4, 4), bool)}, ValueError],
        [{"valid": torch.ones(2, 2, dtype=torch.bool)}, ValueError],
        [{"alpha": 2.0}, ValueError],
        [{"alpha": "0.5"}, TypeError],
    ])
    def test_ill_arg(self, kwargs, error):
        args = {"frame": torch.zeros(8, 8), "heatmap": torch.zeros(8, 8)}
        args.update(kwargs)
        with self.assertRaises(error):
            heatmap_overlay(**args)


class TestLocalizationValidationHandler(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.items = square_items(os.path.join(_TMP, "squares"))

    def handler(self, net=None, **kwargs):
        args = {"annotations": self.items, "network": net if net is not None else BrightnessAFLoc(),
                "image_size": SIZE}
        args.update(kwargs)
        return LocalizationValidationHandler(**args)

    def test_right_heatmaps_score_higher_than_wrong(self):
        right = self.handler(BrightnessAFLoc()).compute()
        wrong = self.handler(wrong_afloc()).compute()
        self.assertEqual(set(right), {"val_pointing_game", "val_cnr", "val_iou", "val_dice", "val_localization"})
        self.assertEqual(right["val_pointing_game"], 1.0)
        self.assertEqual(wrong["val_pointing_game"], 0.0)
        self.assertGreater(right["val_cnr"], 0)
        self.assertLess(wrong["val_cnr"], 0)
        self.assertGreater(right["val_localization"], wrong["val_localization"] + 0.5)
        self.assertAlmostEqual(right["val_localization"], 1.1)  # pointing game 1 + 0.1 * CNR clipped to 1

    def test_same_numbers_as_the_demo_evaluation(self):
        from monai_afloc.apps.evaluation import evaluate_localization

        net = BrightnessAFLoc()
        for key in ("prompt_location_free", "prompt"):
            handler = self.handler(net, prompt_key=key, metric_names=("iou", "dice", "cnr", "pointing_game"))
            metrics = handler.compute()
            report = evaluate_localization(net, self.items, prompt_keys=(key,), sigma=handler.sigma, frame_size=SIZE,
                                           shuffled=False, n_bootstrap=0)["afloc"]
            self.assertEqual(handler.last_report["mean"], report["mean"])
            for name, value in report["mean"].items():
                self.assertEqual(metrics[f"val_{name}"], value)
        self.assertEqual(handler.sigma, 1.5)  # a network whose grid is unknown: the reference's σ

    def test_default_sigma_is_grid_scaled(self):
        from monai_afloc.inference_settings import grid_scaled_sigma

        net = tiny_afloc(os.path.join(_TMP, "bert"))
        self.assertEqual(self.handler(net).sigma, grid_scaled_sigma(net, SIZE))
        self.assertEqual(self.handler(net, sigma=0.5).sigma, 0.5)

    def test_modes_restored_and_no_grad(self):
        net = tiny_afloc(os.path.join(_TMP, "bert"))
        net.train()
        net.text_encoder.eval()  # e.g. a frozen text model kept in eval mode while the rest trains
        before = {name: m.training for name, m in net.named_modules()}
        seen = []
        hook = net.image_encoder.register_forward_hook(
            lambda m, i, o: seen.append((m.training, torch.is_grad_enabled()))
        )
        try:
            self.handler(net).compute()
        finally:
            hook.remove()
        self.assertTrue(seen)
        self.assertEqual(set(seen), {(False, False)})  # scored in eval mode, without gradients
        self.assertEqual({name: m.training for name, m in net.named_modules()}, before)
        # and a network in eval mode stays so
        net.eval()
        self.handler(net).compute()
        self.assertFalse(any(m.training for m in net.modules()))

    def test_best_model_saver_reads_the_fresh_value(self):
        net = tiny_afloc(os.path.join(_TMP, "bert"))
        save_dir = os.path.join(_TMP, "models_order")
        handler = self.handler(net, n_images=0)
        saver = AFLocModelSaver(save_dir, net, key_metric_name="val_localization", mode="max",
                                extra={"image_size": SIZE})
        evaluator = make_evaluator(net, tiny_batches(net, n_batches=1, size=SIZE), handlers=[handler, saver])
        evaluator.run(global_epoch=1)
        first = evaluator.state.metrics["val_localization"]
        self.assertEqual(saver.best_metric, first)
        settings = saved_training_settings(saver.best_path)
        self.assertEqual((settings["key_metric"], settings["key_metric_value"]), ("val_localization", first))
        self.assertIn("val_loss", evaluator.state.metrics)  # the evaluator's own metrics are kept
        # the saver reads the value of *this* epoch: a better score at epoch 2 is saved at epoch 2
        with mock.patch.object(handler, "compute", return_value={"val_localization": first + 1.0}):
            evaluator.run(global_epoch=2)
        self.assertEqual(saver.best_metric, first + 1.0)
        self.assertEqual(saved_training_settings(saver.best_path)["epoch"], 2)

    def test_saver_before_the_handler_sees_no_value(self):
        # the order matters: attached after the saver, the handler's value does not exist yet when the saver reads
        net = tiny_afloc(os.path.join(_TMP, "bert"))
        saver = AFLocModelSaver(os.path.join(_TMP, "models_wrong_order"), net, key_metric_name="val_localization",
                                mode="max")
        evaluator = make_evaluator(net, tiny_batches(net, n_batches=1, size=SIZE),
                                   handlers=[saver, self.handler(net, n_images=0)])
        with self.assertRaisesRegex(KeyError, "val_localization"):
            evaluator.run(global_epoch=1)

    def test_tensorboard_images_and_scalars(self):
        writer = _FakeWriter()
        net = BrightnessAFLoc()
        handler = self.handler(net, summary_writer=writer, n_images=3, metric_names=("pointing_game",))
        trainer = make_trainer(tiny_afloc(os.path.join(_TMP, "bert")), [])
        FollowTrainer([handler]).attach(trainer)  # the TensorBoard step is the trainer's iteration
        self.assertIs(handler.trainer, trainer)
        self.assertFalse(trainer.has_event_handler(handler, Events.EPOCH_COMPLETED))
        trainer.state.iteration = 42
        engine = _epoch_engine()
        handler.attach(engine)
        engine.run([0], max_epochs=1)
        self.assertEqual(set(engine.state.metrics), {"val_pointing_game", "val_localization"})
        self.assertEqual([t for t, _, _, _ in writer.images], [f"localization/val_heatmap_{i}" for i in range(3)])
        for _, img, step, fmt in writer.images:
            self.assertEqual((tuple(img.shape), step, fmt), ((3, SIZE, SIZE), 42, "CHW"))
            self.assertTrue(0.0 <= float(img.min()) and float(img.max()) <= 1.0)
        self.assertEqual({t: (v, s) for t, v, s in writer.scalars},
                         {f"localization/{k}": (v, 42) for k, v in engine.state.metrics.items()})
        self.assertEqual(writer.flushed, 1)
        # the heatmap shown is the scored one: warm (red) inside the item's square, cold (blue) around it
        img, mask = writer.images[0][1], torch.as_tensor(self.items[0]["mask"])
        warmth = img[0] - img[2]
        self.assertGreater(float(warmth[mask].mean()), float(warmth[~mask].mean()) + 0.1)
        # without a followed trainer the step is the evaluator's epoch; n_images larger than the set is capped
        writer2 = _FakeWriter()
        handler2 = self.handler(net, summary_writer=writer2, n_images=10)
        engine2 = _epoch_engine()
        handler2.attach(engine2)
        engine2.run([0], max_epochs=2)
        self.assertEqual(len(writer2.images), 2 * len(self.items))
        self.assertEqual(sorted({s for _, _, s, _ in writer2.images}), [1, 2])

    def test_log_dir_writes_event_files(self):
        try:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        except ImportError:
            self.skipTest("tensorboard is not installed")
        log_dir = os.path.join(_TMP, "tb")
        handler = self.handler(log_dir=log_dir, n_images=2)
        handler.compute(global_step=7)
        handler.close()
        acc = EventAccumulator(log_dir, size_guidance={"images": 0, "scalars": 0}).Reload()
        self.assertEqual(sorted(acc.Tags()["images"]), ["localization/val_heatmap_0", "localization/val_heatmap_1"])
        self.assertIn("localization/val_localization", acc.Tags()["scalars"])
        image = acc.Images("localization/val_heatmap_0")[0]
        self.assertEqual((image.step, image.width, image.height), (7, SIZE, SIZE))

    def test_interval_and_disabled(self):
        handler = self.handler(interval=2, n_images=0)
        engine = _epoch_engine()
        handler.attach(engine)
        values = iter([{"val_localization": v} for v in (0.1, 0.2, 0.3)])
        with mock.patch.object(handler, "compute", side_effect=lambda global_step=None: next(values)) as compute:
            seen = []
            engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(e.state.metrics["val_localization"]))
            engine.run([0], max_epochs=4)
        # epoch 1 (nothing yet), 2 and 4 are scored; epoch 3 keeps the value of epoch 2
        self.assertEqual(compute.call_count, 3)
        self.assertEqual(seen, [0.1, 0.2, 0.2, 0.3])
        off = self.handler(enabled=False)
        engine = _epoch_engine()
        off.attach(engine)
        self.assertFalse(engine.has_event_handler(off, Events.EPOCH_COMPLETED))
        LocalizationValidationHandler(None, BrightnessAFLoc(), image_size=SIZE, enabled=False)  # no items needed

    def test_annotation_json(self):
        from monai_afloc.apps.synthetic import make_synthetic_dataset

        paths = make_synthetic_dataset(os.path.join(_TMP, "synth"), n_train=2, n_val=0, n_test_annotated=1,
                                       image_size=64, seed=0, n_val_annotated=2)
        handler = LocalizationValidationHandler(paths["annotated_val_json"], BrightnessAFLoc(), image_size=SIZE)
        self.assertGreaterEqual(len(handler.items), 2)  # one item per (image, finding)
        self.assertTrue(all("annotated_val" in it["image"] for it in handler.items))
        metrics = handler.compute()
        self.assertTrue(0.0 <= metrics["val_pointing_game"] <= 1.0)
        with self.assertRaises(FileNotFoundError):
            LocalizationValidationHandler(os.path.join(_TMP, "missing.json"), BrightnessAFLoc(), image_size=SIZE)

    @parameterized.expand([
        [{"network": "net"}, TypeError],
        [{"network": torch.nn.Linear(2, 2)}, TypeError],
        [{"annotations": []}, ValueError],
        [{"annotations": None}, ValueError],
        [{"annotations": [{"image": "a.png", "category": "Nodule"}]}, ValueError],
        [{"annotations": ["a.png"]}, TypeError],
        [{"image_size": 16}, ValueError],
        [{"image_size": 64.0}, TypeError],
        [{"sigma": -1.0}, ValueError],
        [{"prompt_key": ""}, TypeError],
        [{"metric_names": "cnr"}, TypeError],
        [{"metric_names": ("cnr", "auroc")}, ValueError],
        [{"metric_names": ("cnr", "cnr")}, ValueError],
        [{"cnr_weight": -0.1}, ValueError],
        [{"prefix": 1}, TypeError],
        [{"summary_writer": object()}, TypeError],
        [{"summary_writer": _FakeWriter(), "log_dir": "logs"}, ValueError],
        [{"log_dir": ""}, TypeError],
        [{"n_images": -1}, ValueError],
        [{"interval": 0}, ValueError],
        [{"enabled": 1}, TypeError],
    ])
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            self.handler(**kwargs)
        with self.assertRaises(TypeError):
            self.handler().follow_trainer(object())

    def test_follow_trainer_ill_arg(self):
        for bad in ("handler", None, [object()]):
            with self.assertRaises(TypeError):
                FollowTrainer(bad)


if __name__ == "__main__":
    unittest.main()
