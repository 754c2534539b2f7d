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

import base64
import json
import logging
import os
import shutil
import sys
import tempfile
import types
import unittest
import zipfile
from unittest import mock

import torch
from parameterized import parameterized

import monai_afloc
import monai_afloc.checkpoint as ckpt_mod
from monai_afloc.checkpoint import (
    CHECKPOINT_FORMAT_VERSION,
    CONFIG_FILENAME,
    TEXT_MODEL_SUBFOLDER,
    WEIGHTS_FILENAME,
    UnsafeCheckpointError,
    convert_release_state_dict,
    load_afloc_checkpoint,
    safe_torch_load,
    save_afloc_checkpoint,
)
from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder
from monai_afloc.utils.enums import AFLocKeys
from tests.helpers import SkipIfNoModule, make_tiny_bert

HIDDEN = 32  # width of the tiny BERT, hence D of the release-format checkpoint


class _Evil:
    """Unpickling this object would create a file (it must never happen)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


class _EvilOsSystem:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _fake_lightning_callback_class():
    """A class that pickles as pytorch_lightning's ModelCheckpoint (Lightning < 1.5 keys callbacks by class)."""
    name = "pytorch_lightning.callbacks.model_checkpoint"
    cls = type("ModelCheckpoint", (), {"__module__": name})
    mods = {}
    for part in ("pytorch_lightning", "pytorch_lightning.callbacks", name):
        mods[part] = types.ModuleType(part)
    mods[name].ModelCheckpoint = cls
    return cls, mods


def _release_hparams(bert_dir: str, **text_overrides):
    from omegaconf import OmegaConf

    text = {
        "bert_type": bert_dir,
        "last_n_layers": 4,
        "aggregate_method": "sum",
        "norm": False,
        "embedding_dim": HIDDEN,
        "freeze_bert": False,
        "agg_tokens": True,
        "take_sent_as_units": True,
    }
    text.update(text_overrides)
    return OmegaConf.create(
        {
            "phase": "pretrain",
            "model": {
                "norm": False,
                "afloc": {"temp1": 4.0, "temp2": 5.0, "temp3": 10.0, "use_local_word_loss": True},
                "vision": {"model_name": "resnet_50", "freeze_cnn": False, "pretrained": True},
                "text": text,
            },
            "data": {"text": {"word_num": 97, "captions_per_image": 5}, "image": {"imsize": 256}},
            "train": {"seeds": [1, 2], "optimizer": {"name": "Adam", "weight_decay": 1e-6}},
        }
    )


@SkipIfNoModule("omegaconf")
class TestReleaseCheckpoint(unittest.TestCase):
    """A release-format Lightning checkpoint built in the test: torchvision-named ResNet-50, tiny BERT, OmegaConf."""

    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        cls.bert_dir = make_tiny_bert(os.path.join(cls.tmp, "bert"), hidden_size=HIDDEN)
        torch.manual_seed(0)
        cls.src_image = AFLocImageEncoder("resnet50", embed_dim=HIDDEN).eval()
        with torch.no_grad():  # non-trivial batch-norm statistics, so buffers must load too
            for m in cls.src_image.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        from transformers import BertModel

        bert = BertModel.from_pretrained(cls.bert_dir)
        # checkpoint text weights differ from the folder's: the result must come from the checkpoint
        cls.text_state = {
            k: (v + 0.05 * torch.randn_like(v)) if v.is_floating_point() else v.clone()
            for k, v in bert.state_dict().items()
        }
        sd = {f"afloc.img_encoder.model.{k}": v for k, v in cls.src_image.backbone.state_dict().items()}
        for head in ("global_embedder", "local_embedder", "local2_embedder"):
            for k, v in getattr(cls.src_image, head).state_dict().items():
                sd[f"afloc.img_encoder.{head}.{k}"] = v
        sd["afloc.img_encoder.local_f_embedder.weight"] = torch.randn(HIDDEN, 2048, 1, 1)  # use_ce_loss head
        sd.update({f"afloc.text_encoder.model.{k}": v for k, v in cls.text_state.items()})
        sd["afloc.text_encoder.model.embeddings.position_ids"] = torch.arange(128).unsqueeze(0)  # transformers 4.2
        cls.state_dict = sd
        cls.hparams = _release_hparams(cls.bert_dir)
        callback_cls, fake_modules = _fake_lightning_callback_class()
        ckpt = {
            "epoch": 5,
            "global_step": 1234,
            "pytorch-lightning_version": "1.1.4",
            "state_dict": sd,
            "callbacks": {callback_cls: {"monitor": "val_loss", "best_model_score": torch.tensor(1.5)}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 2e-5, "betas": (0.5, 0.999), "params": [0]}]}],
            "lr_schedulers": [{"step_size": 1, "gamma": 0.9, "base_lrs": [2e-5], "last_epoch": 5}],
            "hparams_name": "kwargs",
            "hyper_parameters": cls.hparams,
            "hparams_type": type(cls.hparams),
        }
        cls.ckpt = ckpt
        cls.path = os.path.join(cls.tmp, "afloc.ckpt")
        with mock.patch.dict(sys.modules, fake_modules):
            torch.save(ckpt, cls.path)
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append
        logger = logging.getLogger("monai_afloc.checkpoint")
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.INFO)
        try:
            cls.net = load_afloc_checkpoint(cls.path)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
        cls.log = " ".join(r.getMessage() for r in records)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _save_variant(self, state_dict=None, hparams=None, name="variant.ckpt"):
        path = os.path.join(self.tmp, name)
        torch.save(
            {
                "state_dict": self.state_dict if state_dict is None else state_dict,
                "hyper_parameters": hparams or self.hparams,
            },
            path,
        )
        return path

    def test_reference_mode(self):
        net = self.net
        self.assertIsInstance(net, AFLoc)
        self.assertFalse(net.training)
        self.assertEqual(net.image_encoder.backbone_name, "resnet50")
        self.assertEqual(net.image_encoder.input_size, 299)
        self.assertEqual(net.embed_dim, HIDDEN)
        self.assertEqual(net.text_encoder.last_n_layers, 4)
        self.assertEqual(net.text_encoder.aggregation, "sum")
        self.assertEqual(net.text_encoder.max_length, 97)
        self.assertIsNone(net.text_encoder.projection)

    def test_release_inference_settings(self):
        from monai_afloc.inference_settings import InferenceSettings
        from monai_afloc.inferers import TextPromptLocalizer

        loc = TextPromptLocalizer.from_checkpoint(self.path)  # the release's: 224 px, sigma 1.5 on its 19x19 grid
        self.assertEqual(loc.settings, InferenceSettings(image_size=224, sigma=1.5, threshold=0.5, max_length=97))
        self.assertEqual(loc.network.image_encoder.feature_grid_sizes(224), ((38, 38), (19, 19)))
        self.assertEqual(TextPromptLocalizer.from_checkpoint(self.path, image_size=320).sigma, 1.5)  # resized to 299

    def test_image_outputs_equal_direct_computation(self):
        x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(3)) * 2 - 1
        with torch.no_grad():
            got = self.net.encode_image(x)
            ref = self.src_image(x)
        for key in (AFLocKeys.IMAGE_WORDS, AFLocKeys.IMAGE_SENTENCES, AFLocKeys.IMAGE_REPORT):
            torch.testing.assert_close(got[key], ref[key], rtol=0, atol=0)
        self.assertEqual(tuple(got[AFLocKeys.IMAGE_SENTENCES].shape), (1, HIDDEN, 19, 19))

    def test_text_outputs_equal_direct_computation(self):
        from transformers import BertConfig, BertModel

        model = BertModel(BertConfig.from_pretrained(self.bert_dir)).eval()
        model.load_state_dict(self.text_state)
        batch = self.net.tokenize(["small left pleural effusion. no pneumothorax", "heart size is normal"])
        with torch.no_grad():
            out = self.net.encode_text(**batch)
            hs = model(**batch, output_hidden_states=True).hidden_states
        summed = torch.stack(hs[-4:]).sum(0)  # [B, T, D]
        mask = batch["attention_mask"].unsqueeze(-1).to(summed.dtype)
        # reference report vector: word pieces summed into words, CLS/words/SEP summed, divided by all 97 positions
        report = (summed * mask).sum(1) / 97
        torch.testing.assert_close(out[AFLocKeys.TEXT_REPORT], report, rtol=1e-5, atol=1e-5)
        # the first word slot is [CLS]
        torch.testing.assert_close(out[AFLocKeys.TEXT_WORDS][:, :, 0], summed[:, 0], rtol=1e-5, atol=1e-5)

    def test_ignored_release_heads_are_logged(self):
        self.assertIn("local_f_embedder", self.log)
        self.assertIn("position_ids", self.log)

    @parameterized.expand(
        [
            (
                "missing",
                "drop",
                "afloc.img_encoder.model.layer3.0.conv1.weight",
                "missing keys 1",
                "layer3.0.conv1.weight",
            ),
            ("unexpected", "add", "afloc.img_encoder.model.fc.weight", "unexpected keys 1", "backbone.fc.weight"),
            ("unknown", "add", "afloc.decoder.weight", "no monai_afloc counterpart 1", "afloc.decoder.weight"),
            (
                "misshapen",
                "shape",
                "afloc.img_encoder.local_embedder.weight",
                "misshapen keys 1",
                "local_embedder.weight",
            ),
        ]
    )
    def test_bad_keys_raise_listing_them(self, _, action, key, phrase, listed):
        sd = dict(self.state_dict)
        if action == "drop":
            del sd[key]
        elif action == "add":
            sd[key] = torch.zeros(3)
        else:
            sd[key] = torch.zeros(HIDDEN, 512, 1, 1)
        path = self._save_variant(state_dict=sd)
        with self.assertRaises(ValueError) as cm:
            load_afloc_checkpoint(path)
        msg = str(cm.exception)
        self.assertIn(phrase, msg)
        self.assertIn(listed, msg)
        self.assertIn("nothing was loaded", msg)

    def test_several_problems_in_one_error(self):
        sd = dict(self.state_dict)
        del sd["afloc.img_encoder.global_embedder.bias"]
        sd["afloc.text_encoder.model.extra.weight"] = torch.zeros(2)
        sd["afloc.img_encoder.local2_embedder.weight"] = torch.zeros(HIDDEN, 256, 1, 1)
        with self.assertRaises(ValueError) as cm:
            load_afloc_checkpoint(self._save_variant(state_dict=sd))
        msg = str(cm.exception)
        for part in ("global_embedder.bias", "text_encoder.model.extra.weight", "local2_embedder.weight"):
            self.assertIn(part, msg)

    @parameterized.expand(
        [
            ("norm", {"norm": True}, "model.text.norm"),
            ("agg_tokens", {"agg_tokens": False}, "agg_tokens"),
            ("last_n_layers", {"last_n_layers": 1}, "last_n_layers"),
            ("aggregate", {"aggregate_method": "max"}, "aggregate_method"),
            ("width", {"embedding_dim": 768}, "embedding_dim"),
            ("interpolation", {"bert_type": "${oc.env:HOME}"}, "interpolation"),
        ]
    )
    def test_unsupported_release_settings(self, _, overrides, phrase):
        # settings are checked before any weight: a small state dict suffices
        small = {"afloc.img_encoder.global_embedder.weight": torch.zeros(HIDDEN, 2048)}
        path = self._save_variant(small, _release_hparams(self.bert_dir, **overrides), name=f"bad_{_}.ckpt")
        with self.assertRaisesRegex(ValueError, phrase):
            load_afloc_checkpoint(path)

    def test_text_model_override_and_missing_name(self):
        from omegaconf import OmegaConf

        hp = OmegaConf.create({"model": {"vision": {"model_name": "resnet_50"}}})
        small = {"afloc.img_encoder.global_embedder.weight": torch.zeros(HIDDEN, 2048)}
        path = self._save_variant(small, hp, name="nobert.ckpt")
        with self.assertRaisesRegex(ValueError, "text_model_name_or_path"):
            load_afloc_checkpoint(path)
        # a text model of another width than the image heads
        other = make_tiny_bert(os.path.join(self.tmp, "bert16"), hidden_size=16)
        with self.assertRaisesRegex(ValueError, "differs from the text model's hidden size"):
            load_afloc_checkpoint(path, text_model_name_or_path=other)
        with self.assertRaisesRegex(ValueError, "resnet_50"):
            load_afloc_checkpoint(
                self._save_variant(small, OmegaConf.create({"model": {"vision": {"model_name": "densenet_121"}}})),
                text_model_name_or_path=self.bert_dir,
            )

    def test_convert_release_state_dict(self):
        conv, ignored, unknown = convert_release_state_dict(
            {
                "afloc.img_encoder.model.conv1.weight": torch.zeros(1),
                "img_encoder.local_embedder.weight": torch.zeros(1),
                "afloc.text_encoder.model.pooler.dense.bias": torch.zeros(1),
                "afloc.img_encoder.local_f_embedder.weight": torch.zeros(1),
                "afloc.something": torch.zeros(1),
            }
        )
        self.assertEqual(
            sorted(conv),
            [
                "image_encoder.backbone.conv1.weight",
                "image_encoder.local_embedder.weight",
                "text_encoder.model.pooler.dense.bias",
            ],
        )
        self.assertEqual(ignored, ["afloc.img_encoder.local_f_embedder.weight"])
        self.assertEqual(unknown, ["afloc.something"])
        with self.assertRaises(TypeError):
            convert_release_state_dict([1, 2])

    def test_bare_state_dict_with_text_model_override(self):
        path = os.path.join(self.tmp, "bare.pt")
        sd = {k: v for k, v in self.state_dict.items() if not k.startswith("afloc.img_encoder.model.layer")}
        torch.save(sd, path)
        with self.assertRaisesRegex(ValueError, "missing keys"):
            load_afloc_checkpoint(path, text_model_name_or_path=self.bert_dir)


class TestSafety(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    @parameterized.expand(
        [
            ("exec", _Evil, "builtins.exec", True),
            ("os_system", _EvilOsSystem, "system", True),
            ("exec_legacy_format", _Evil, "exec", False),
        ]
    )
    def test_malicious_pickle_is_refused(self, _, evil_cls, global_name, zip_format):
        target = os.path.join(self.tmp, "pwned.txt")
        path = os.path.join(self.tmp, "evil.ckpt")
        payload = {
            "state_dict": {"afloc.img_encoder.local_embedder.weight": torch.zeros(2)},
            "hyper_parameters": evil_cls(target),
        }
        torch.save(payload, path, _use_new_zipfile_serialization=zip_format)
        self.assertFalse(os.path.exists(target))
        with self.assertRaises(UnsafeCheckpointError) as cm:
            load_afloc_checkpoint(path, text_model_name_or_path=self.tmp)
        self.assertIn(global_name, str(cm.exception))
        self.assertIsInstance(cm.exception, ValueError)
        with self.assertRaises(UnsafeCheckpointError):
            safe_torch_load(path)
        self.assertFalse(os.path.exists(target), "unpickling ran code from the checkpoint")

    def test_plain_files_load_without_omegaconf(self):
        path = os.path.join(self.tmp, "plain.ckpt")
        torch.save(
            {"state_dict": {"a": torch.ones(2)}, "hyper_parameters": {"model": {"text": {"bert_type": "x"}}}}, path
        )
        with mock.patch.object(ckpt_mod, "_has_omegaconf", False):
            out = safe_torch_load(path)
        self.assertEqual(out["hyper_parameters"]["model"]["text"]["bert_type"], "x")
        torch.testing.assert_close(out["state_dict"]["a"], torch.ones(2))

    @SkipIfNoModule("omegaconf")
    def test_omegaconf_files_need_omegaconf(self):
        from omegaconf import OmegaConf

        path = os.path.join(self.tmp, "oc.ckpt")
        torch.save({"hyper_parameters": OmegaConf.create({"a": [1, {"b": None}]})}, path)
        out = safe_torch_load(path)
        self.assertEqual(OmegaConf.to_container(out["hyper_parameters"]), {"a": [1, {"b": None}]})
        with mock.patch.object(ckpt_mod, "_has_omegaconf", False):
            with self.assertRaisesRegex(UnsafeCheckpointError, "install omegaconf"):
                safe_torch_load(path)

    @SkipIfNoModule("omegaconf")
    def test_omegaconf_2_0_pickles_load(self):
        """Hyper-parameters pickled by OmegaConf 2.0.6 (the release's generation) read with today's OmegaConf."""
        from omegaconf import OmegaConf

        data = base64.b64decode(_OMEGACONF_20_B64)
        path = os.path.join(self.tmp, "oc20.ckpt")
        torch.save({"x": 1}, path)  # a torch zip archive; its data.pkl is replaced by the OmegaConf 2.0.6 pickle
        with zipfile.ZipFile(path) as zin:
            entries = {n: zin.read(n) for n in zin.namelist()}
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zout:
            for name, blob in entries.items():
                zout.writestr(name, data if name.endswith("/data.pkl") else blob)
        out = safe_torch_load(path)
        self.assertEqual(
            OmegaConf.to_container(out["hyper_parameters"]),
            {"model": {"text": {"bert_type": "BERT_DIR", "last_n_layers": 4}}},
        )

    def test_safe_torch_load_bad_input(self):
        with self.assertRaises(FileNotFoundError):
            safe_torch_load(os.path.join(self.tmp, "absent.ckpt"))
        path = os.path.join(self.tmp, "garbage.ckpt")
        with open(path, "wb") as f:
            f.write(b"not a torch file")
        with self.assertRaises(ValueError):
            safe_torch_load(path)


class TestOwnFormat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        bert = make_tiny_bert(os.path.join(cls.tmp, "bert"), hidden_size=HIDDEN)
        torch.manual_seed(0)
        text = AFLocTextEncoder(
            bert, last_n_layers=3, aggregation="mean", projection_dim=24, max_length=40, local_files_only=True,
            center=True, center_momentum=0.2,
        )
        with torch.no_grad():  # one training-mode pass sets the running text centre (a buffer saved with the weights)
            text.train()(**text.tokenize(["heart size is normal", "small left pleural effusion"]))
        image = AFLocImageEncoder("resnet18", embed_dim=24, input_size=96)
        cls.net = AFLoc(image, text).eval()
        cls.dir = save_afloc_checkpoint(cls.net, os.path.join(cls.tmp, "saved"), extra={"epochs": 3, "note": "test"})
        # the saved folder must be self-contained: remove the source text model
        shutil.rmtree(bert)
        cls.loaded = load_afloc_checkpoint(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_files_and_config(self):
        self.assertTrue(os.path.isfile(os.path.join(self.dir, WEIGHTS_FILENAME)))
        self.assertTrue(os.path.isfile(os.path.join(self.dir, TEXT_MODEL_SUBFOLDER, "config.json")))
        self.assertFalse(
            any(f.endswith((".bin", ".safetensors")) for f in os.listdir(os.path.join(self.dir, TEXT_MODEL_SUBFOLDER)))
        )
        with open(os.path.join(self.dir, CONFIG_FILENAME)) as f:
            cfg = json.load(f)
        self.assertEqual(cfg["format_version"], CHECKPOINT_FORMAT_VERSION)
        self.assertEqual(cfg["monai_afloc_version"], monai_afloc.__version__)
        self.assertEqual(
            cfg["image_encoder"],
            {"backbone": "resnet18", "embed_dim": 24, "in_channels": 3, "input_size": 96, "stem_pool": True,
             "layer3_stride": 2, "position_encoding": 0, "normalize_regions": False},
        )
        self.assertEqual(cfg["text_encoder"]["report_pooling"], "reference")
        self.assertEqual(cfg["text_encoder"]["projection_dim"], 24)
        self.assertEqual(cfg["text_encoder"]["last_n_layers"], 3)
        self.assertEqual((cfg["text_encoder"]["center"], cfg["text_encoder"]["center_momentum"]), (True, 0.2))
        self.assertEqual(cfg["extra"], {"epochs": 3, "note": "test"})
        self.assertEqual(len(cfg["weights"]["sha256"]), 64)

    def test_round_trip_identical_outputs(self):
        net, loaded = self.net, self.loaded
        self.assertEqual(loaded.text_encoder.aggregation, "mean")
        self.assertEqual(loaded.text_encoder.max_length, 40)
        self.assertTrue(bool(loaded.text_encoder.text_center.abs().sum() > 0))
        torch.testing.assert_close(loaded.text_encoder.text_center, net.text_encoder.text_center, rtol=0, atol=0)
        x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
        batch = net.tokenize(["small left pleural effusion. no pneumothorax", "heart size is normal"])
        self.assertEqual(
            {k: v.tolist() for k, v in batch.items()},
            {
                k: v.tolist()
                for k, v in loaded.tokenize(
                    ["small left pleural effusion. no pneumothorax", "heart size is normal"]
                ).items()
            },
        )
        with torch.no_grad():
            a, b = net(x, **batch), loaded(x, **batch)
        self.assertEqual(set(a), set(b))
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)

    def test_tampered_weights_and_versions(self):
        d = os.path.join(self.tmp, "tampered")
        shutil.copytree(self.dir, d)
        with open(os.path.join(d, WEIGHTS_FILENAME), "r+b") as f:
            f.seek(-4, os.SEEK_END)
            f.write(b"\x00\x01\x02\x03")
        with self.assertRaisesRegex(ValueError, "sha256"):
            load_afloc_checkpoint(d)
        cfg_path = os.path.join(d, CONFIG_FILENAME)
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["format_version"] = CHECKPOINT_FORMAT_VERSION + 1
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        with self.assertRaisesRegex(ValueError, "format_version"):
            load_afloc_checkpoint(cfg_path)

    def test_save_bad_args(self):
        with self.assertRaises(TypeError):
            save_afloc_checkpoint(torch.nn.Linear(2, 2), os.path.join(self.tmp, "x"))
        with self.assertRaises(TypeError):
            save_afloc_checkpoint(self.net, os.path.join(self.tmp, "y"), extra={"t": torch.ones(1)})
        with self.assertRaises(TypeError):
            save_afloc_checkpoint(self.net, os.path.join(self.tmp, "z"), extra=[1])
        with self.assertRaisesRegex(ValueError, "not empty"):
            save_afloc_checkpoint(self.net, self.dir)

    def test_load_bad_args(self):
        with self.assertRaises(TypeError):
            load_afloc_checkpoint(123)
        with self.assertRaises(TypeError):
            load_afloc_checkpoint(self.dir, text_model_name_or_path=5)
        with self.assertRaises(TypeError):
            load_afloc_checkpoint(self.dir, local_files_only="yes")
        with self.assertRaises(FileNotFoundError):
            load_afloc_checkpoint(os.path.join(self.tmp, "absent.ckpt"))
        with self.assertRaisesRegex(ValueError, CONFIG_FILENAME):
            load_afloc_checkpoint(self.tmp)


# pickle (protocol 2) of {"hyper_parameters": OmegaConf.create({"model": {"text": {"bert_type": "BERT_DIR",
# "last_n_layers": 4}}})} written by OmegaConf 2.0.6, the OmegaConf generation of the AFLoc release's era
_OMEGACONF_20_B64 = (
    "gAJ9cQBYEAAAAGh5cGVyX3BhcmFtZXRlcnNxAWNvbWVnYWNvbmYuZGljdGNvbmZpZwpEaWN0Q29uZmlnCnECKYFxA31xBChYCQAA"
    "AF9tZXRhZGF0YXEFY29tZWdhY29uZi5iYXNlCkNvbnRhaW5lck1ldGFkYXRhCnEGKYFxB31xCChYCAAAAHJlZl90eXBlcQljX19i"
    "dWlsdGluX18KZGljdApxClgLAAAAb2JqZWN0X3R5cGVxC05YCAAAAG9wdGlvbmFscQyIWAMAAABrZXlxDU5YBQAAAGZsYWdzcQ59"
    "cQ9YDgAAAHJlc29sdmVyX2NhY2hlcRBjY29sbGVjdGlvbnMKZGVmYXVsdGRpY3QKcRFoCoVxElJxE1gIAAAAa2V5X3R5cGVxFE5Y"
    "DAAAAGVsZW1lbnRfdHlwZXEVTnViWAcAAABfcGFyZW50cRZOWAgAAABfY29udGVudHEXfXEYWAUAAABtb2RlbHEZaAIpgXEafXEb"
    "KGgFaAYpgXEcfXEdKGgJY3R5cGluZwpBbnkKcR5oC05oDIhoDWgZaA59cR9oEGgRaAqFcSBScSFoFE5oFU51YmgWaANoF31xIlgE"
    "AAAAdGV4dHEjaAIpgXEkfXElKGgFaAYpgXEmfXEnKGgJaB5oC05oDIhoDWgjaA59cShoEGgRaAqFcSlScSpoFE5oFU51YmgWaBpo"
    "F31xKyhYCQAAAGJlcnRfdHlwZXEsY29tZWdhY29uZi5ub2RlcwpBbnlOb2RlCnEtKYFxLn1xLyhoBWNvbWVnYWNvbmYuYmFzZQpN"
    "ZXRhZGF0YQpxMCmBcTF9cTIoaAloHmgLTmgMiGgNaCxoDn1xM2gQaBFoCoVxNFJxNXViaBZoJFgEAAAAX3ZhbHE2WAgAAABCRVJU"
    "X0RJUnE3dWJYDQAAAGxhc3Rfbl9sYXllcnNxOGgtKYFxOX1xOihoBWgwKYFxO31xPChoCWgeaAtOaAyIaA1oOGgOfXE9aBBoEWgK"
    "hXE+UnE/dWJoFmgkaDZLBHVidXVic3Vic3Vicy4="
)

if __name__ == "__main__":
    unittest.main()
