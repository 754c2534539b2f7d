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
"""A format-1 checkpoint config with a key missing is refused with the key's name (never a silent default)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest

from parameterized import parameterized

from monai_afloc.checkpoint import CONFIG_FILENAME, load_afloc_checkpoint, save_afloc_checkpoint
from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder
from tests.helpers import make_tiny_bert


class TestStrictFormat1Config(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        text = AFLocTextEncoder(make_tiny_bert(os.path.join(cls.tmp, "bert")), local_files_only=True)
        image = AFLocImageEncoder("resnet18", embed_dim=text.embed_dim, input_size=96)
        cls.saved = save_afloc_checkpoint(AFLoc(image, text), os.path.join(cls.tmp, "saved"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _without(self, section: str, key: str) -> str:
        folder = tempfile.mkdtemp(dir=self.tmp)
        shutil.rmtree(folder)
        shutil.copytree(self.saved, folder)
        path = os.path.join(folder, CONFIG_FILENAME)
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        del (config[section] if section else config)[key]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(config, f)
        return folder

    def test_complete_config_loads(self):
        self.assertEqual(load_afloc_checkpoint(self.saved).image_encoder.input_size, 96)

    @parameterized.expand(
        [
            ("image_encoder", "input_size"),
            ("image_encoder", "backbone"),
            ("image_encoder", "embed_dim"),
            ("text_encoder", "max_length"),
            ("text_encoder", "center"),
            ("weights", "sha256"),
            ("", "torch_version"),
        ]
    )
    def test_missing_key_is_named(self, section, key):
        dotted = f"{section}.{key}" if section else key
        with self.assertRaisesRegex(ValueError, f"missing keys \\['{dotted}'\\]"):
            load_afloc_checkpoint(self._without(section, key))

    def test_inference_section_is_accepted_and_optional(self):
        # issue 13's top-level "inference" section passes the strict check; a folder written before it existed
        # still loads (its settings are the defaults at the image size the trainer recorded)
        from monai_afloc.checkpoint import load_inference_settings
        from monai_afloc.inference_settings import default_inference_settings

        with open(os.path.join(self.saved, CONFIG_FILENAME), encoding="utf-8") as f:
            self.assertIn("inference", json.load(f))
        net = load_afloc_checkpoint(self.saved)
        older = self._without("", "inference")
        self.assertEqual(load_afloc_checkpoint(older).image_encoder.input_size, 96)
        self.assertEqual(load_inference_settings(older, net), default_inference_settings(net, None))

    def test_malformed_inference_section_is_refused(self):
        from monai_afloc.checkpoint import load_inference_settings

        folder = self._without("inference", "threshold")
        with self.assertRaisesRegex(ValueError, "threshold"):
            load_inference_settings(folder, load_afloc_checkpoint(folder))

    def test_missing_section_is_named(self):
        with self.assertRaisesRegex(ValueError, "image_encoder"):
            load_afloc_checkpoint(self._without("", "image_encoder"))


if __name__ == "__main__":
    unittest.main()
