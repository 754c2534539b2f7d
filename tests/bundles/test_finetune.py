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
"""Fine-tuning on a new modality: ``train.json`` + ``finetune.json`` from a checkpoint on synthetic fundus pairs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import torch
from monai.bundle import ConfigWorkflow

from monai_afloc.apps.synthetic import SyntheticFundusGenerator, write_fundus_dataset
from monai_afloc.checkpoint import load_afloc_checkpoint, save_afloc_checkpoint
from monai_afloc.engines import prepare_finetune
from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder
from tests.helpers import make_tiny_bert

BUNDLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "bundles", "afloc_chest_xray_localization"))
CONFIGS = os.path.join(BUNDLE, "configs")


class TestFinetune(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        cls.bert = bert = make_tiny_bert(os.path.join(cls.tmp, "bert"))
        net = AFLoc(AFLocImageEncoder("resnet10", embed_dim=32, input_size=None), AFLocTextEncoder(bert))
        cls.ckpt = save_afloc_checkpoint(net, os.path.join(cls.tmp, "ckpt"))
        cls.data = os.path.join(cls.tmp, "fundus")
        cls.paths = write_fundus_dataset(cls.data, n_train=8, n_val=4, n_test=4, image_size=64, seed=0)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_fundus_generator(self):
        gen = SyntheticFundusGenerator(image_size=64, seed=3)
        a, b = gen.generate_case(5), gen.generate_case(5)
        self.assertTrue(np.array_equal(a["image"], b["image"]))
        self.assertEqual(a["image"].dtype, np.uint8)
        cases = [gen.generate_case(i) for i in range(30)]
        names = {f["name"] for c in cases for f in c["findings"]}
        self.assertEqual(names, {"Haemorrhage", "Exudate", "Drusen"})
        for c in cases:
            for f in c["findings"]:
                self.assertIn(f["phrase_location_free"], c["report"])
                x, y, w, h = f["box"]
                outside = f["mask"].copy()
                outside[y : y + h, x : x + w] = False
                self.assertFalse(outside.any())  # the box holds the whole mask
                self.assertTrue(f["mask"][y, x : x + w].any() and f["mask"][y : y + h, x].any())  # and is tight
        with self.assertRaises(ValueError):
            SyntheticFundusGenerator(image_size=16)
        with self.assertRaises(ValueError):
            gen.generate_case(-1)
        with self.assertRaises(ValueError):
            write_fundus_dataset(self.tmp, n_train=0)
        coco = json.load(open(self.paths["annotated_json"]))
        self.assertEqual(len(coco["images"]), 4)
        self.assertTrue(all(a["mask_path"] for a in coco["annotations"]))

    def test_prepare_finetune(self):
        net = load_afloc_checkpoint(self.ckpt)
        prepare_finetune(net, freeze_text_encoder=True, freeze_backbone=True)
        self.assertFalse(any(p.requires_grad for p in net.text_encoder.model.parameters()))
        self.assertFalse(any(p.requires_grad for p in net.image_encoder.backbone.parameters()))
        self.assertTrue(all(p.requires_grad for p in net.image_encoder.global_embedder.parameters()))
        with self.assertRaises(TypeError):
            prepare_finetune(net, freeze_text_encoder="yes")
        with self.assertRaises(TypeError):
            prepare_finetune(torch.nn.Linear(1, 1))

    def test_finetune_workflow_from_checkpoint(self):
        out = os.path.join(self.tmp, "run")
        wf = ConfigWorkflow(
            config_file=[os.path.join(CONFIGS, "train.json"), os.path.join(CONFIGS, "finetune.json")],
            meta_file=os.path.join(CONFIGS, "metadata.json"),
            logging_file=os.path.join(CONFIGS, "logging.conf"),
            workflow_type="train",
            bundle_root=BUNDLE,
            output_dir=out,
            checkpoint=self.ckpt,
            backbone="resnet10",  # network_def describes the checkpoint's architecture (checked when loading)
            text_model=self.bert,
            dataset_dir=self.data,
            generate_fundus=False,
            image_size=64,
            batch_size=4,
            epochs=1,
            num_workers=0,
            progress_bar=False,
        )
        wf.initialize()
        before = load_afloc_checkpoint(self.ckpt)
        wf.run()
        wf.finalize()
        after = load_afloc_checkpoint(os.path.join(out, "models", "last"))
        # the text model stayed frozen, the image encoder moved
        for (k, v), v2 in zip(before.text_encoder.model.state_dict().items(), after.text_encoder.model.state_dict().values()):
            torch.testing.assert_close(v, v2, msg=k)
        moved = any(
            not torch.equal(a, b)
            for a, b in zip(before.image_encoder.state_dict().values(), after.image_encoder.state_dict().values())
        )
        self.assertTrue(moved)
        # localization evaluated on the new modality's annotations with the bundle's evaluate.json
        ev = ConfigWorkflow(  # evaluate.json layers over train.json
            config_file=[os.path.join(CONFIGS, "train.json"), os.path.join(CONFIGS, "evaluate.json")],
            meta_file=os.path.join(CONFIGS, "metadata.json"),
            logging_file=os.path.join(CONFIGS, "logging.conf"),
            workflow_type="eval",
            bundle_root=BUNDLE,
            checkpoint=os.path.join(out, "models", "last"),
            annotated_json=self.paths["annotated_json"],
            with_prior=False,
            output_dir=os.path.join(self.tmp, "eval"),
            n_bootstrap=10,
        )
        ev.initialize()
        metrics = ev.run()[0]
        ev.finalize()
        self.assertIn("afloc", metrics)
        self.assertIn("pointing_game", metrics["afloc"]["mean"])
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "eval", "metrics.json")))


if __name__ == "__main__":
    unittest.main()
