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
Model-zoo style tests of bundles/afloc_chest_xray_localization: synthetic data and a tiny text model are built in
``setUp``; ``ConfigWorkflow`` runs train (2 short epochs, 64 px, ResNet-18, 32-wide BERT), model selection on an
annotated validation split, a budget stop and resume, inference, evaluation and the multi-GPU configuration with one
process.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import pydoc
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import unittest

import numpy as np
import torch
from ignite.engine import Events
from monai.bundle import ConfigParser, ConfigWorkflow

from monai_afloc.apps.synthetic import make_synthetic_dataset
from monai_afloc.checkpoint import load_afloc_checkpoint
from monai_afloc.engines import saved_training_settings
from tests.helpers import SkipIfNoModule, make_tiny_bert

BUNDLE = os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "bundles", "afloc_chest_xray_localization")
)
CONFIGS = os.path.join(BUNDLE, "configs")
META = os.path.join(CONFIGS, "metadata.json")
LOGGING = os.path.join(CONFIGS, "logging.conf")
SCHEMA = os.path.join(BUNDLE, "docs", "metadata_schema.json")
CONFIG_NAMES = ("train", "inference", "evaluate", "multi_gpu_train")

_TMP: str = ""
_DATA: str = ""
_BERT: str = ""


def setUpModule():
    global _TMP, _DATA, _BERT
    torch.set_num_threads(1)
    _TMP = tempfile.mkdtemp()
    _BERT = make_tiny_bert(os.path.join(_TMP, "bert"))
    _DATA = os.path.join(_TMP, "data")
    make_synthetic_dataset(_DATA, n_train=12, n_val=4, n_test_annotated=4, image_size=64, seed=0)


def tearDownModule():
    shutil.rmtree(_TMP, ignore_errors=True)


def tiny_overrides(output_dir: str, **more) -> dict:
    """Shrink the bundle: 64 px frames, ResNet-18 without the 299 resize, the tiny BERT, 2 epochs of 3 batches."""
    ov = {
        "bundle_root": BUNDLE,
        "output_dir": output_dir,
        "dataset_dir": _DATA,
        "generate_synthetic": False,
        "text_model": _BERT,
        "backbone": "resnet18",
        "image_size": 64,
        "encoder_input_size": None,
        "batch_size": 4,
        "epochs": 2,
        "num_workers": 0,
        "progress_bar": False,
        "log_interval": 1,
    }
    ov.update(more)
    return ov


def train_workflow(output_dir: str, config_file=None, **more) -> ConfigWorkflow:
    wf = ConfigWorkflow(
        config_file=config_file or os.path.join(CONFIGS, "train.json"),
        meta_file=META,
        logging_file=LOGGING,
        workflow_type="train",
        **tiny_overrides(output_dir, **more),
    )
    wf.initialize()
    return wf


def _targets(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "_target_":
                yield v
            else:
                yield from _targets(v)
    elif isinstance(node, list):
        for v in node:
            yield from _targets(v)


class TestBundleFiles(unittest.TestCase):
    def test_layout(self):
        for rel in ("LICENSE", "docs/README.md", "configs/logging.conf", *(f"configs/{n}.json" for n in CONFIG_NAMES)):
            self.assertTrue(os.path.isfile(os.path.join(BUNDLE, rel)), rel)

    def test_targets_are_fully_qualified(self):
        sys.path.insert(0, BUNDLE)  # bundle-local "scripts" as monai.bundle does at run time
        try:
            for name in CONFIG_NAMES:
                with open(os.path.join(CONFIGS, f"{name}.json"), encoding="utf-8") as f:
                    config = json.load(f)
                for target in _targets(config):
                    self.assertIn(".", target, f"{name}.json: short _target_ {target!r}")
                    self.assertIsNotNone(pydoc.locate(target), f"{name}.json: {target!r} does not resolve")
        finally:
            sys.path.remove(BUNDLE)

    @SkipIfNoModule("jsonschema")
    def test_metadata_schema_offline(self):
        import jsonschema

        with open(META, encoding="utf-8") as f:
            meta = json.load(f)
        with open(SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft7Validator.check_schema(schema)
        jsonschema.validate(meta, schema)
        self.assertTrue(meta["schema"].startswith("https://github.com/Project-MONAI/"))  # the official URL stays
        inputs = meta["network_data_format"]["inputs"]
        self.assertEqual(set(inputs), {"image", "input_ids", "attention_mask"})  # the text input is declared
        for broken in ({"network_data_format": {"inputs": {}, "outputs": {}}}, {"version": "one"}):
            with self.assertRaises(jsonschema.ValidationError):
                jsonschema.validate({**meta, **broken}, schema)
        # MONAI's own checker reads the local schema instead of downloading it (the file already exists)
        from monai.bundle import verify_metadata

        verify_metadata(meta_file=META, filepath=SCHEMA)

    def test_ablation_overrides(self):
        for weights in ({"sentence_weight": 0.0, "word_weight": 0.0}, {"sentence_weight": 0.0}):
            parser = ConfigParser()
            parser.read_config(os.path.join(CONFIGS, "train.json"))
            parser.update(tiny_overrides(os.path.join(_TMP, "unused"), **weights))
            loss = parser.get_parsed_content("loss")
            self.assertEqual(loss.sentence_weight, 0.0)
            self.assertEqual(loss.word_weight, weights.get("word_weight", 1.0))
            self.assertEqual(loss.global_weight, 1.0)

    def test_network_matches_metadata(self):
        from monai_afloc.inferers import TextPromptLocalizer

        parser = ConfigParser()
        parser.read_config(os.path.join(CONFIGS, "train.json"))
        parser.read_meta(META)
        parser.update(tiny_overrides(os.path.join(_TMP, "unused")))
        net = parser.get_parsed_content("network_def").eval()
        fmt = parser["_meta_"]["network_data_format"]
        image_fmt, ids_fmt = fmt["inputs"]["image"], fmt["inputs"]["input_ids"]
        image = torch.rand(1, image_fmt["num_channels"], *image_fmt["spatial_shape"]) * 2 - 1
        tokens = net.tokenize(["small left pleural effusion"], max_length=ids_fmt["spatial_shape"][0])
        self.assertEqual(tokens["input_ids"].dtype, getattr(torch, ids_fmt["dtype"]))
        with torch.no_grad():
            out = net(image, tokens["input_ids"], tokens["attention_mask"])
        self.assertEqual(out["text_words"].shape[-1], ids_fmt["spatial_shape"][0])
        pred = fmt["outputs"]["pred"]
        loc = TextPromptLocalizer(net, image_size=image_fmt["spatial_shape"][0])
        maps = loc(image, ["pleural effusion"])["frame_heatmaps"]
        self.assertEqual(tuple(maps.shape), (1, pred["num_channels"], *pred["spatial_shape"]))
        self.assertEqual(maps.dtype, getattr(torch, pred["dtype"]))
        self.assertGreaterEqual(float(maps.min()), pred["value_range"][0])
        self.assertLessEqual(float(maps.max()), pred["value_range"][1])


class TestBundleScripts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, BUNDLE)
        import scripts.evaluate
        import scripts.inference

        cls.inference, cls.evaluate = scripts.inference, scripts.evaluate

    @classmethod
    def tearDownClass(cls):
        sys.path.remove(BUNDLE)

    def test_detection_labels(self):
        items = [
            {"image": "a.png", "category": "Nodule", "prompt_location_free": "nodule"},
            {"image": "a.png", "category": "Edema", "prompt_location_free": "edema"},
            {"image": "b.png", "category": "Nodule", "prompt_location_free": "nodule"},
        ]
        paths, findings, labels, phrases = self.evaluate.detection_labels(items)
        self.assertEqual((paths, findings), (["a.png", "b.png"], ["Edema", "Nodule"]))
        self.assertEqual(labels.tolist(), [[1, 1], [0, 1]])
        self.assertEqual(phrases, {"Nodule": "nodule", "Edema": "edema"})

    def test_generator_from_info(self):
        gen = self.evaluate.synthetic_generator_from_info(os.path.join(_DATA, "synthetic-cxr-info.json"))
        self.assertEqual((tuple(gen.image_size), gen.seed), ((64, 64), 0))
        with self.assertRaises(FileNotFoundError):
            self.evaluate.synthetic_generator_from_info(os.path.join(_DATA, "missing.json"))

    def test_ill_arg(self):
        from monai_afloc.inferers import TextPromptLocalizer
        from tests.helpers import BrightnessAFLoc

        loc = TextPromptLocalizer(BrightnessAFLoc())
        runner = self.inference.PromptLocalizationRunner
        with self.assertRaises(TypeError):
            runner(object(), [], ["nodule"], _TMP)
        for prompts in ([], "nodule", ["  "]):
            with self.assertRaises(ValueError):
                runner(loc, [], prompts, _TMP)
        with self.assertRaises(TypeError):
            runner(loc, [], ["nodule"], None)
        evaluation = self.evaluate.LocalizationEvaluation
        with self.assertRaises(TypeError):
            evaluation("net", [{"image": "a"}], _TMP)
        with self.assertRaises(ValueError):
            evaluation(BrightnessAFLoc(), [], _TMP)
        with self.assertRaises(ValueError):
            evaluation(BrightnessAFLoc(), [{"image": "a"}], _TMP, pretraining_csv="x.csv")

    def test_runner_reports_bad_images_and_goes_on(self):
        from monai_afloc.inferers import TextPromptLocalizer
        from tests.helpers import BrightnessAFLoc

        images = sorted(glob.glob(os.path.join(_DATA, "annotated", "files", "**", "*.png"), recursive=True))[:1]
        out = os.path.join(_TMP, "runner")
        runner = self.inference.PromptLocalizationRunner(
            TextPromptLocalizer(BrightnessAFLoc()),
            [*images, os.path.join(_TMP, "missing.png")],
            ["nodule"],
            out,
            save_overlays=False,
        )
        summary = runner.run()
        self.assertEqual(summary["n_images"], 1)
        self.assertEqual(list(summary["failures"]), [os.path.join(_TMP, "missing.png")])
        self.assertIn("FileNotFoundError", summary["failures"][os.path.join(_TMP, "missing.png")])


class TestBundleTrainInferEvaluate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = os.path.join(_TMP, "run")
        cls.data = os.path.join(_TMP, "generated")  # the train workflow writes its own synthetic set here
        cls.wf = train_workflow(
            cls.out,
            dataset_dir=cls.data,
            generate_synthetic=True,
            **{
                "synthetic#n_train": 12,
                "synthetic#n_val": 4,
                "synthetic#n_test_annotated": 4,
                "synthetic#image_size": 64,
            },
        )
        cls.missing_properties = cls.wf.check_properties()
        cls.wf.run()
        cls.trainer = cls.wf.parser.get_parsed_content("train#trainer")
        cls.wf.finalize()

    def test_training(self):
        self.assertEqual(self.missing_properties, [])
        self.assertEqual(self.trainer.state.epoch, 2)
        self.assertEqual(self.trainer.state.iteration, 6)  # 12 cases / batch 4, 2 epochs
        self.assertEqual(set(self.trainer.state.output), {"loss", "global_loss", "sentence_loss", "word_loss"})
        self.assertTrue(os.path.isfile(os.path.join(self.data, "pretraining", "synthetic-cxr-metadata.csv")))
        self.assertTrue(os.path.isfile(os.path.join(self.out, "checkpoints", "checkpoint_final.pt")))
        for name in ("best", "last"):
            path = os.path.join(self.out, "models", name)
            net = load_afloc_checkpoint(path)
            self.assertEqual(net.image_encoder.backbone_name, "resnet18")
            settings = saved_training_settings(path)
            self.assertEqual(settings["image_size"], 64)
            self.assertEqual(settings["kind"], name)
        self.assertEqual(saved_training_settings(os.path.join(self.out, "models", "last"))["iteration"], 6)
        if self.wf.parser.get_parsed_content("tensorboard"):
            self.assertTrue(glob.glob(os.path.join(self.out, "logs", "events.out.tfevents.*")))

    def test_inference(self):
        out = os.path.join(_TMP, "inference")
        wf = ConfigWorkflow(
            config_file=os.path.join(CONFIGS, "inference.json"),
            meta_file=META,
            logging_file=LOGGING,
            workflow_type="infer",
            bundle_root=BUNDLE,
            checkpoint=os.path.join(self.out, "models", "last"),
            dataset_dir=os.path.join(self.data, "annotated", "files"),
            output_dir=out,
            prompts=["pleural effusion", "left pneumothorax"],
        )
        wf.initialize()
        self.assertEqual(wf.check_properties(), [])
        summary = wf.run()[0]
        wf.finalize()
        self.assertEqual((summary["n_images"], summary["failures"]), (4, {}))
        self.assertEqual(wf.parser.get_parsed_content("inferer").image_size, 64)  # read back from the checkpoint
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            self.assertEqual(len(json.load(f)["results"]), 4)
        first = summary["results"][0]
        self.assertEqual([p["prompt"] for p in first["prompts"]], ["pleural effusion", "left pneumothorax"])
        for entry in first["prompts"]:
            self.assertFalse(os.path.isabs(entry["overlay"]))  # relative to output_dir
            self.assertTrue(os.path.isfile(os.path.join(out, entry["overlay"])))
            self.assertTrue(os.path.isfile(os.path.join(out, entry["mask"])))
        import nibabel as nib

        maps = nib.load(os.path.join(out, first["files"]["heatmaps"])).get_fdata()
        self.assertEqual(maps.shape, (64, 64, 2))
        self.assertLessEqual(maps.max(), 1.0 + 1e-6)

    def test_verify_net_in_out(self):
        from monai.bundle import verify_net_in_out

        # AFLoc itself takes an image *and* tokens and returns a dict, so the check runs on the deployable heatmap
        # head (image + one prompt vector -> one heatmap channel, as metadata "pred" declares)
        verify_net_in_out(
            net_id="heatmap_head",
            meta_file=META,
            config_file=os.path.join(CONFIGS, "inference.json"),
            device="cpu",
            extra_forward_args={"prompt_embeddings": torch.randn(1, 32)},
            bundle_root=BUNDLE,
            checkpoint=os.path.join(self.out, "models", "last"),
        )

    def test_evaluate(self):
        out = os.path.join(_TMP, "evaluate")
        wf = ConfigWorkflow(  # evaluate.json layers over train.json
            config_file=[os.path.join(CONFIGS, "train.json"), os.path.join(CONFIGS, "evaluate.json")],
            meta_file=META,
            logging_file=LOGGING,
            workflow_type="eval",
            bundle_root=BUNDLE,
            checkpoint=os.path.join(self.out, "models", "best"),
            dataset_dir=self.data,
            output_dir=out,
            n_bootstrap=10,
        )
        wf.initialize()
        self.assertEqual(wf.check_properties(), [])
        metrics = wf.run()[0]
        wf.finalize()
        self.assertEqual(set(metrics), {"afloc", "prior", "shuffled", "detection"})
        for name in ("afloc", "prior", "shuffled"):
            self.assertIn("location_bearing", metrics[name])
            self.assertIn("pointing_game", metrics[name]["mean"])
        with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
            self.assertEqual(set(json.load(f)), set(metrics))
        with open(os.path.join(out, "table.md"), encoding="utf-8") as f:
            self.assertIn("| afloc | location-free |", f.read())


class TestBundleLocalizationSelection(unittest.TestCase):
    def test_defaults_select_on_the_loss(self):
        parser = ConfigParser()
        parser.read_config(os.path.join(CONFIGS, "train.json"))
        parser.update(tiny_overrides(os.path.join(_TMP, "unused")))
        self.assertIsNone(parser.get_parsed_content("annotated_val_json"))
        self.assertEqual(parser.get_parsed_content("tensorboard_heatmaps"), 4)
        self.assertEqual(parser.get_parsed_content("synthetic")["n_val_annotated"], 0)
        saver = parser.get_parsed_content("best_model_saver")
        self.assertEqual((saver.key_metric_name, saver.mode), ("val_loss", "min"))
        self.assertFalse(parser.get_parsed_content("validate#localization").enabled)  # no annotated split: off
        parser.update({"validate#localization#cnr_weight": 0.0})  # the documented pointing-game-only selection
        self.assertEqual(parser.get_parsed_content("validate#localization", lazy=False).cnr_weight, 0.0)

    def test_train_selects_on_localization(self):
        out = os.path.join(_TMP, "localization")
        data = os.path.join(_TMP, "generated_val")  # the bundle's synthetic section writes the annotated val split
        wf = train_workflow(
            out,
            dataset_dir=data,
            generate_synthetic=True,
            annotated_val_json=os.path.join(data, "annotated_val", "synthetic-cxr-annotations.json"),
            model_selection_metric="val_localization",
            tensorboard_heatmaps=2,
            **{
                "synthetic#n_train": 12,
                "synthetic#n_val": 4,
                "synthetic#n_test_annotated": 2,
                "synthetic#n_val_annotated": 3,
                "synthetic#image_size": 64,
            },
        )
        handler = wf.parser.get_parsed_content("validate#localization")
        saver = wf.parser.get_parsed_content("best_model_saver")
        evaluator = wf.parser.get_parsed_content("validate#evaluator")
        trainer = wf.parser.get_parsed_content("train#trainer")
        scored = []
        evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: scored.append(e.state.metrics["val_localization"]))
        wf.run()
        wf.finalize()
        self.assertEqual(trainer.state.epoch, 2)
        self.assertIs(handler.trainer, trainer)  # FollowTrainer among the trainer's handlers: steps are iterations
        self.assertEqual((saver.key_metric_name, saver.mode), ("val_localization", "max"))
        self.assertEqual(len(scored), 2)
        for key in ("val_pointing_game", "val_cnr", "val_iou", "val_dice", "val_loss"):
            self.assertIn(key, evaluator.state.metrics)
        settings = saved_training_settings(os.path.join(out, "models", "best"))
        self.assertEqual(settings["key_metric"], "val_localization")
        self.assertEqual(settings["key_metric_value"], max(scored))  # the saver read each epoch's fresh value
        if not wf.parser.get_parsed_content("tensorboard"):
            return
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        images, scalars = {}, {}
        for path in glob.glob(os.path.join(out, "logs", "events.out.tfevents.*")):
            acc = EventAccumulator(path, size_guidance={"images": 0, "scalars": 0}).Reload()
            images.update({tag: acc.Images(tag) for tag in acc.Tags()["images"]})
            scalars.update({tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]})
        self.assertEqual(sorted(images), ["localization/val_heatmap_0", "localization/val_heatmap_1"])
        self.assertEqual([e.step for e in images["localization/val_heatmap_0"]], [3, 6])  # trainer iterations
        self.assertEqual([e.value for e in scalars["localization/val_localization"]], _as_float32(scored))
        self.assertIn("val_localization", scalars)  # the evaluator's stats handler logs it per epoch too


def _as_float32(values):
    """The values as TensorBoard stores scalars (float32)."""
    return [float(np.float32(v)) for v in values]


class TestBundleResume(unittest.TestCase):
    def test_budget_stop_then_resume(self):
        out = os.path.join(_TMP, "resume")
        # 1) a wall-clock budget that runs out at once: training stops after its first iteration, mid-epoch
        wf = train_workflow(out, budget_minutes=1e-9)
        wf.run()
        trainer = wf.parser.get_parsed_content("train#trainer")
        wf.finalize()
        self.assertTrue(trainer.state.budget_exhausted)
        self.assertEqual(trainer.state.iteration, 1)
        # a budgeted run decays the learning rate over the budget (per iteration), not over the nominal epochs
        handler_types = {type(h).__name__ for h in wf.parser.get_parsed_content("train#handlers")}
        self.assertIn("CosineLRHandler", handler_types)
        self.assertNotIn("LrScheduleHandler", handler_types)
        final = os.path.join(out, "checkpoints", "checkpoint_final.pt")
        saved = torch.load(final, weights_only=True)
        self.assertEqual(saved["trainer"]["iteration"], 1)
        self.assertEqual(saved_training_settings(os.path.join(out, "models", "last"))["iteration"], 1)

        # 2) resume: weights, optimizer and counters come back before training goes on
        wf = train_workflow(out, resume=True)
        trainer = wf.parser.get_parsed_content("train#trainer")
        net = wf.parser.get_parsed_content("network_def")
        opt = wf.parser.get_parsed_content("optimizer")
        seen = {}

        def probe(engine):
            seen["iteration"] = engine.state.iteration
            seen["model"] = {k: v.clone() for k, v in net.state_dict().items()}
            seen["optimizer"] = copy.deepcopy(opt.state_dict())

        trainer.add_event_handler(Events.STARTED, probe)  # after the checkpoint loader
        handler_types = {type(h).__name__ for h in wf.parser.get_parsed_content("train#handlers")}
        self.assertIn("LrScheduleHandler", handler_types)  # no budget: the epoch-level cosine
        self.assertNotIn("CosineLRHandler", handler_types)
        wf.run()
        wf.finalize()
        self.assertEqual(seen["iteration"], 1)
        for k, v in saved["model"].items():
            torch.testing.assert_close(seen["model"][k], v, msg=k)
        self.assertEqual(set(seen["optimizer"]["state"]), set(saved["optimizer"]["state"]))
        for i, state in saved["optimizer"]["state"].items():
            torch.testing.assert_close(seen["optimizer"]["state"][i]["exp_avg"], state["exp_avg"])
        self.assertEqual(trainer.state.iteration, 6)  # 1 + the 5 iterations left, none repeated
        self.assertEqual(trainer.state.epoch, 2)


class TestMultiGPUConfig(unittest.TestCase):
    def test_single_process_group(self):
        import torch.distributed as dist

        if not dist.is_available():
            self.skipTest("torch.distributed is not available")
        out = os.path.join(_TMP, "multi")
        dist.init_process_group("gloo", init_method=f"file://{_TMP}/pg", rank=0, world_size=1)
        try:
            wf = train_workflow(
                out,
                config_file=[os.path.join(CONFIGS, "train.json"), os.path.join(CONFIGS, "multi_gpu_train.json")],
                epochs=1,
            )
            wf.run()
            network = wf.parser.get_parsed_content("network")
            loss = wf.parser.get_parsed_content("loss")
            trainer = wf.parser.get_parsed_content("train#trainer")
            wf.finalize()  # destroys the process group and resets ignite.distributed
            self.assertFalse(dist.is_initialized())
            import ignite.distributed as idist

            self.assertEqual(idist.model_name(), "serial")
        finally:  # leave no process group, and no stale ignite.distributed state, to the tests that follow
            import ignite.distributed as idist

            if idist.model_name() != "serial":
                try:
                    idist.finalize()
                except (RuntimeError, ValueError):
                    pass
            if dist.is_initialized():
                dist.destroy_process_group()
        self.assertIsInstance(network, torch.nn.parallel.DistributedDataParallel)
        self.assertEqual((loss.global_loss.rank, loss.global_loss.world_size), (0, 1))
        self.assertEqual(trainer.state.iteration, 3)
        self.assertTrue(os.path.isdir(os.path.join(out, "models", "last")))

    @unittest.skipUnless(
        os.environ.get("MONAI_AFLOC_TEST_DDP") == "1", "2-process gloo run (~20 s): set MONAI_AFLOC_TEST_DDP=1"
    )
    def test_two_processes_gloo(self):
        out = os.path.join(_TMP, "ddp")
        script = os.path.join(_TMP, "ddp_run.py")
        configs = [os.path.join(CONFIGS, "train.json"), os.path.join(CONFIGS, "multi_gpu_train.json")]
        with open(script, "w", encoding="utf-8") as f:
            f.write(
                textwrap.dedent(
                    f"""
                    import json, sys, torch
                    sys.path.insert(0, {os.path.dirname(os.path.dirname(BUNDLE))!r})
                    from monai.bundle import ConfigWorkflow
                    from tests.bundles.test_afloc_bundle import tiny_overrides
                    import tests.bundles.test_afloc_bundle as t
                    t._DATA, t._BERT = {_DATA!r}, {_BERT!r}
                    torch.set_num_threads(1)
                    wf = ConfigWorkflow(config_file={configs!r},
                                        meta_file={META!r}, logging_file=False, workflow_type="train",
                                        **tiny_overrides({out!r}, batch_size=2))
                    wf.initialize()
                    wf.run()
                    loss = wf.parser.get_parsed_content("loss")
                    trainer = wf.parser.get_parsed_content("train#trainer")
                    rank, world = torch.distributed.get_rank(), loss.global_loss.world_size
                    print("RESULT", json.dumps([rank, world, trainer.state.iteration]))
                    wf.finalize()
                    """
                )
            )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(port),
            script,
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, check=False, cwd=os.path.dirname(os.path.dirname(BUNDLE))
        )
        self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])
        results = sorted(
            json.loads(line.split("RESULT", 1)[1]) for line in proc.stdout.splitlines() if "RESULT" in line
        )
        self.assertEqual(results, [[0, 2, 6], [1, 2, 6]])  # 12 cases / 2 ranks / batch 2 = 3 iterations per epoch
        self.assertTrue(os.path.isdir(os.path.join(out, "models", "best")))


if __name__ == "__main__":
    unittest.main()
