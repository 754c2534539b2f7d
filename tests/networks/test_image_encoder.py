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

import os
import tempfile
import unittest

import torch
import torch.nn.functional as F
from parameterized import parameterized

from monai_afloc.networks.nets import AFLocImageEncoder
from monai_afloc.utils.enums import AFLocKeys

# the reference ResNet-50 at 299 input: layer2 38x38, layer3 19x19, layer4 10x10
SHAPE_CASES = [
    ({"backbone": "resnet50", "embed_dim": 16}, 224, (38, 38), (19, 19)),
    ({"backbone": "resnet50", "embed_dim": 16}, 299, (38, 38), (19, 19)),
    ({"backbone": "resnet18", "embed_dim": 8, "input_size": None}, 224, (28, 28), (14, 14)),
    ({"backbone": "resnet34", "embed_dim": 8, "input_size": None, "in_channels": 1}, 160, (20, 20), (10, 10)),
    ({"backbone": "densenet121", "embed_dim": 8, "input_size": None}, 224, (28, 28), (14, 14)),
    # no stem max pool: every grid doubles (the demo's 16x16 sentence grid at 128 px)
    ({"backbone": "resnet10", "embed_dim": 8, "input_size": None, "stem_pool": False}, 128, (32, 32), (16, 16)),
    # layer3 without its stride: the sentence grid keeps layer2's (the demo's 16x16 at 128 px, cheaper than no pool)
    ({"backbone": "resnet10", "embed_dim": 8, "input_size": None, "layer3_stride": 1}, 128, (16, 16), (16, 16)),
    ({"backbone": "resnet50", "embed_dim": 8, "input_size": None, "layer3_stride": 1}, 100, (13, 13), (13, 13)),
    ({"backbone": "resnet18", "embed_dim": 8, "input_size": None, "layer3_stride": 1, "stem_pool": False}, 64,
     (16, 16), (16, 16)),
]


class TestImageEncoder(unittest.TestCase):
    @parameterized.expand(SHAPE_CASES)
    def test_shapes(self, kwargs, size, grid2, grid3):
        enc = AFLocImageEncoder(**kwargs).eval()
        with torch.no_grad():
            out = enc(torch.rand(2, enc.in_channels, size, size))
        d = kwargs["embed_dim"]
        self.assertEqual(out[AFLocKeys.IMAGE_WORDS].shape, (2, d, *grid2))
        self.assertEqual(out[AFLocKeys.IMAGE_SENTENCES].shape, (2, d, *grid3))
        self.assertEqual(out[AFLocKeys.IMAGE_REPORT].shape, (2, d))
        self.assertEqual(enc.feature_grid_sizes(size), (grid2, grid3))

    def test_stem_pool_keeps_the_parameters(self):
        with_pool = AFLocImageEncoder("resnet10", embed_dim=8, input_size=None)
        without = AFLocImageEncoder("resnet10", embed_dim=8, input_size=None, stem_pool=False)
        self.assertEqual(sorted(with_pool.state_dict()), sorted(without.state_dict()))
        without.load_state_dict(with_pool.state_dict())
        with self.assertRaises(ValueError):
            AFLocImageEncoder("densenet121", embed_dim=8, stem_pool=False)
        with self.assertRaises(TypeError):
            AFLocImageEncoder("resnet10", embed_dim=8, stem_pool="no")

    def test_layer3_stride_keeps_the_parameters(self):
        ref = AFLocImageEncoder("resnet50", embed_dim=8, input_size=None)
        fine = AFLocImageEncoder("resnet50", embed_dim=8, input_size=None, layer3_stride=1)
        self.assertEqual(sorted(ref.state_dict()), sorted(fine.state_dict()))
        fine.load_state_dict(ref.state_dict())
        self.assertEqual(ref.backbone.layer2[0].conv2.stride, (2, 2))  # only layer3 changes
        self.assertEqual(fine.backbone.layer2[0].conv2.stride, (2, 2))
        with self.assertRaises(ValueError):
            AFLocImageEncoder("densenet121", embed_dim=8, layer3_stride=1)
        for bad, error in ((3, ValueError), (0, ValueError), (1.0, TypeError)):
            with self.assertRaises(error):
                AFLocImageEncoder("resnet10", embed_dim=8, layer3_stride=bad)

    def test_position_encoding_and_normalized_regions(self):
        torch.manual_seed(0)
        plain = AFLocImageEncoder("resnet10", embed_dim=8, input_size=None).eval()
        enc = AFLocImageEncoder("resnet10", embed_dim=8, input_size=None, position_encoding=3,
                                normalize_regions=True).eval()
        missing, unexpected = enc.load_state_dict(plain.state_dict(), strict=False)
        self.assertEqual(sorted(missing), ["sentence_position.proj.weight", "word_position.proj.weight"])
        self.assertEqual(unexpected, [])
        x = torch.rand(2, 3, 64, 64)
        with torch.no_grad():
            a, b = plain(x), enc(x)
            for key in (AFLocKeys.IMAGE_WORDS, AFLocKeys.IMAGE_SENTENCES):
                torch.testing.assert_close(b[key].norm(dim=1), torch.ones_like(b[key][:, 0]))
                expected = enc.word_position(a[key]) if key == AFLocKeys.IMAGE_WORDS else enc.sentence_position(a[key])
                torch.testing.assert_close(b[key], F.normalize(expected, dim=1))
            torch.testing.assert_close(a[AFLocKeys.IMAGE_REPORT], b[AFLocKeys.IMAGE_REPORT])
        with self.assertRaises(ValueError):
            AFLocImageEncoder("resnet10", embed_dim=8, position_encoding=-1)
        with self.assertRaises(TypeError):
            AFLocImageEncoder("resnet10", embed_dim=8, normalize_regions=1)

    def test_torchvision_parameter_names(self):
        enc = AFLocImageEncoder("resnet50", embed_dim=8)
        keys = set(enc.backbone.state_dict())
        for k in ("conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer4.2.conv3.weight"):
            self.assertIn(k, keys)
        self.assertFalse(any(k.startswith("fc.") for k in keys))
        # torchvision resnet50 without its fc has 23,508,032 parameters
        self.assertEqual(sum(p.numel() for p in enc.backbone.parameters()), 23_508_032)

    def test_resize_to_299_is_bilinear_align_corners(self):
        torch.manual_seed(0)
        enc = AFLocImageEncoder("resnet18", embed_dim=8, input_size=299).eval()
        x = torch.rand(1, 3, 224, 224)
        ref = AFLocImageEncoder("resnet18", embed_dim=8, input_size=None).eval()
        ref.load_state_dict(enc.state_dict())
        with torch.no_grad():
            a = enc(x)
            b = ref(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=True))
        for k in a:
            torch.testing.assert_close(a[k], b[k])

    def test_freeze_and_backbone_weights(self):
        src = AFLocImageEncoder("resnet18", embed_dim=8)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "resnet18.pth")
            state = dict(src.backbone.state_dict())
            state["fc.weight"] = torch.zeros(1000, 512)  # torchvision files carry a classifier: ignored
            torch.save(state, path)
            enc = AFLocImageEncoder("resnet18", embed_dim=8, freeze_backbone=True, backbone_weights=path)
            torch.save({"conv1.weight": torch.zeros(1)}, path)
            with self.assertRaises(ValueError):
                AFLocImageEncoder("resnet18", embed_dim=8, backbone_weights=path)
        for k, v in src.backbone.state_dict().items():
            torch.testing.assert_close(enc.backbone.state_dict()[k], v)
        self.assertFalse(any(p.requires_grad for p in enc.backbone.parameters()))
        self.assertTrue(all(p.requires_grad for p in enc.global_embedder.parameters()))

    @parameterized.expand(
        [
            ({"backbone": "vgg16"}, ValueError),
            ({"embed_dim": 0}, ValueError),
            ({"in_channels": -1}, ValueError),
            ({"input_size": 8}, ValueError),
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            AFLocImageEncoder(**kwargs)

    def test_bad_input(self):
        enc = AFLocImageEncoder("resnet18", embed_dim=8, input_size=None)
        with self.assertRaises(ValueError):
            enc(torch.rand(3, 64, 64))
        with self.assertRaises(ValueError):
            enc(torch.rand(1, 1, 64, 64))
        with self.assertRaises(TypeError):
            enc(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
        with self.assertRaises(TypeError):
            enc([[0.0]])


if __name__ == "__main__":
    unittest.main()
