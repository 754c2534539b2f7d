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
GPU correctness without a GPU: the image network is put on the ``meta`` device and every module asserts, in a
forward pre-hook, that its tensor inputs are on its own device; every tensor the inferers return must be on that
device too. A tensor created on the CPU on the inference path (a frame, a mask, a probe) then fails here as it would
meet a CUDA network on a GPU machine. The text encoder stays on the CPU (its input checks read values, which the
meta device has not): prompt vectors are moved to the regions' device by the inferers.
"""

from __future__ import annotations

import tempfile
import unittest

import torch

from monai_afloc.inference_settings import default_inference_settings, sentence_grid_size
from monai_afloc.inferers import TextPromptLocalizer, ZeroShotClassifier
from monai_afloc.networks.nets import AFLocImageEncoder
from tests.helpers import SIZED_GRID, SIZED_IMAGE_SIZE, write_sized_checkpoint

META = torch.device("meta")


def _assert_inputs_on_module_device(module, args, kwargs=None):
    own = next(iter(module.parameters(recurse=False)), None)
    if own is None:
        return
    for a in list(args) + list((kwargs or {}).values()):
        if isinstance(a, torch.Tensor) and a.device != own.device:
            raise AssertionError(f"{type(module).__name__} on {own.device} got an input on {a.device}")


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


class TestInferenceDevices(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ckpt, cls.png, _ = write_sized_checkpoint(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def _on_meta(self, inferer):
        encoder = inferer.network.image_encoder.to(META)
        for m in encoder.modules():
            m.register_forward_pre_hook(_assert_inputs_on_module_device, with_kwargs=True)
        return inferer

    def test_localizer_keeps_everything_on_the_network_device(self):
        loc = TextPromptLocalizer.from_checkpoint(self.ckpt)
        loc.prompt_encoder(["left pleural effusion", "cardiomegaly"])  # text side on the CPU
        self._on_meta(loc)
        for images in (self.png, torch.rand(2, 1, 70, 50) * 255):
            out = loc(images, ["left pleural effusion", "cardiomegaly"])
            devices = {k: {t.device for t in _tensors(v)} for k, v in out.items() if list(_tensors(v))}
            self.assertEqual(devices, {k: {META} for k in devices}, devices)

    def test_zero_shot_heatmap_mode_on_the_network_device(self):
        clf = ZeroShotClassifier.from_checkpoint(self.ckpt, findings=["Edema"], mode="heatmap")
        clf.class_vectors()
        self._on_meta(clf)
        out = clf(self.png)
        self.assertEqual({t.device for t in _tensors(out)}, {META})

    def test_hook_catches_a_cpu_tensor(self):
        # the check itself can fail: a CPU frame fed to the meta network is refused
        loc = self._on_meta(TextPromptLocalizer.from_checkpoint(self.ckpt))
        with self.assertRaisesRegex(AssertionError, "got an input on cpu"):
            loc.network.image_encoder(torch.zeros(1, 3, 64, 64))

    def test_grid_sizes_run_no_forward_pass(self):
        with torch.device("meta"):
            enc = AFLocImageEncoder("resnet10", embed_dim=8, input_size=None)

        def refuse(*_):
            raise AssertionError("feature_grid_sizes ran the backbone")

        for m in enc.modules():
            m.register_forward_pre_hook(refuse)
        self.assertEqual(enc.feature_grid_sizes(SIZED_IMAGE_SIZE), ((12, 12), (SIZED_GRID, SIZED_GRID)))
        self.assertEqual(sentence_grid_size(enc, SIZED_IMAGE_SIZE), SIZED_GRID)
        self.assertEqual(default_inference_settings(enc, SIZED_IMAGE_SIZE).image_size, SIZED_IMAGE_SIZE)

    def test_grid_sizes_without_stem_pool(self):
        # stem_pool=False drops the ResNet stem's max pool: every grid doubles, and sigma (in sentence-grid cells)
        # with it, still by arithmetic only
        with torch.device("meta"):
            enc = AFLocImageEncoder("resnet10", embed_dim=8, input_size=None, stem_pool=False)

        def refuse(*_):
            raise AssertionError("feature_grid_sizes ran the backbone")

        for m in enc.modules():
            m.register_forward_pre_hook(refuse)
        self.assertEqual(enc.feature_grid_sizes(128), ((32, 32), (16, 16)))
        self.assertEqual(sentence_grid_size(enc, 128), 16)
        self.assertAlmostEqual(default_inference_settings(enc, 128).sigma, 1.5 * 16 / 19)

    def test_grid_sizes_match_the_backbone(self):
        for backbone, stem_pool in (("resnet10", True), ("resnet10", False), ("densenet121", True)):
            enc = AFLocImageEncoder(backbone, embed_dim=4, input_size=None, stem_pool=stem_pool).eval()
            for size in (33, 64, (70, 45), 97, 128):
                hw = (size, size) if isinstance(size, int) else size
                with torch.no_grad():
                    out = enc(torch.zeros(1, 3, *hw))
                expected = (tuple(out["image_words"].shape[-2:]), tuple(out["image_sentences"].shape[-2:]))
                self.assertEqual(enc.feature_grid_sizes(size), expected, (backbone, stem_pool, size))


if __name__ == "__main__":
    unittest.main()
