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
"""The chest bundle served by a real MONAI Label server (``--conf bundle bundles/afloc_chest_xray_localization``)."""

from __future__ import annotations

import json
import os
import tempfile
import unittest

import numpy as np
import torch
from PIL import Image

from tests.apps.monailabel._server import REPO_ROOT, ServerProcess, check_monailabel, skip_without_monailabel
from tests.helpers import make_tiny_bert

BUNDLE = os.path.join(REPO_ROOT, "bundles", "afloc_chest_xray_localization")


@skip_without_monailabel
class TestBundleServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        check_monailabel()
        from monai.bundle import ConfigParser

        from monai_afloc.checkpoint import save_afloc_checkpoint
        from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder

        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.bert = make_tiny_bert(os.path.join(root, "bert"), hidden_size=32)
        torch.manual_seed(1)
        net = AFLoc(AFLocImageEncoder("resnet10", embed_dim=32, input_size=None), AFLocTextEncoder(cls.bert)).eval()
        cls.ckpt = save_afloc_checkpoint(net, os.path.join(root, "ckpt"), extra={"image_size": 192})
        studies = os.path.join(root, "studies")
        os.makedirs(studies)
        cls.png = os.path.join(studies, "cxr.png")
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 130)).astype(np.uint8)).save(cls.png)
        cls.server = ServerProcess(root, studies, {"bundle": BUNDLE, "checkpoint": cls.ckpt, "text_model": cls.bert,
                                                   "device": "cpu"}).start()
        parser = ConfigParser()
        parser.read_config(os.path.join(BUNDLE, "configs", "inference.json"))
        cls.bundle_prompts = parser["prompts"]
        # the bundle's own localizer, built in this process the way the bundle builds it
        parser["bundle_root"], parser["checkpoint"], parser["text_model"] = BUNDLE, cls.ckpt, cls.bert
        parser["device"] = "$torch.device('cpu')"
        cls.loc = parser.get_parsed_content("inferer")
        cls.bundle_threshold = cls.loc.threshold  # inference.json's threshold is null: the checkpoint's

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def test_bundle_prompts_and_answers(self):
        import requests

        info = requests.get(self.server.url + "/info/", timeout=10).json()
        self.assertEqual(sorted(info["models"]), ["afloc_bundle", "afloc_prompt"])
        model = info["models"]["afloc_bundle"]
        self.assertEqual(model["labels"], self.bundle_prompts)
        self.assertEqual(model["config"]["prompt"], self.bundle_prompts)
        self.assertEqual(model["config"]["threshold"], self.bundle_threshold)
        self.assertEqual(self.loc.image_size, 192)  # the checkpoint's training setting, read by the bundle
        r = requests.post(f"{self.server.url}/infer/afloc_bundle", params={"image": "cxr", "output": "json"},
                          data={"params": json.dumps({"prompt": self.bundle_prompts[:2]})}, timeout=120)
        self.assertEqual(r.status_code, 200, r.text[:500])
        body = r.json()
        ref = self.loc(self.png, self.bundle_prompts[:2], return_boxes=True, threshold=self.bundle_threshold)
        self.assertEqual(body["image_size"], [90, 130])
        for k in range(2):
            self.assertAlmostEqual(body["prompts"][k]["score"], float(ref["scores"][0, k]), places=4)
            self.assertEqual(body["prompts"][k]["boxes"], ref["boxes"][0][k])
        r = requests.post(f"{self.server.url}/infer/afloc_bundle", params={"image": "cxr"},
                          data={"params": json.dumps({"prompt": ["not in the bundle"]})}, timeout=60)
        self.assertEqual(r.status_code, 400)
        self.assertIn("unknown finding", r.json()["detail"])
        self.assertTrue(self.server.alive())


if __name__ == "__main__":
    unittest.main()
