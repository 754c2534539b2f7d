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
import shutil
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import load_net_with_metadata
from parameterized import parameterized

from monai_afloc.export import (
    IMAGE_ENCODER_OUTPUT_NAMES,
    AFLocHeatmapHead,
    AFLocImageEncoderTuple,
    export_heatmap_head_torchscript,
    export_image_encoder_torchscript,
    export_onnx,
)
from monai_afloc.networks.nets import AFLocImageEncoder
from monai_afloc.utils.enums import AFLocKeys
from tests.helpers import SkipIfNoModule

D = 16


def _image(batch: int, size: int = 224, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _prompts(k: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(k, D, generator=torch.Generator().manual_seed(seed))


class TestExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        torch.manual_seed(0)
        # a small encoder keeps the tests fast; the maths is the reference one (resize to input_size, then backbone)
        cls.encoder = AFLocImageEncoder("resnet18", embed_dim=D, input_size=96).eval()
        cls.tmp = tempfile.mkdtemp()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_tuple_wrapper(self):
        x = _image(2)
        with torch.no_grad():
            out = AFLocImageEncoderTuple(self.encoder)(x)
            ref = self.encoder(x)
        self.assertEqual(len(out), 3)
        for name, t in zip(IMAGE_ENCODER_OUTPUT_NAMES, out):
            torch.testing.assert_close(t, ref[name], rtol=0, atol=0)

    def test_heatmap_head_matches_reference_maths(self):
        """dot product -> scipy gaussian_filter (reflect, truncate 4) -> bilinear -> min-max to [-1, 1]."""
        from scipy.ndimage import gaussian_filter

        head = AFLocHeatmapHead(self.encoder, sigma=1.5, output_size=224).eval()
        x, p = _image(2, seed=1), _prompts(3, seed=1)
        with torch.no_grad():
            maps = head(x, p)
            regions = self.encoder(x)[AFLocKeys.IMAGE_SENTENCES]
        self.assertEqual(tuple(maps.shape), (2, 3, 224, 224))
        sim = np.einsum("bdhw,kd->bkhw", regions.double().numpy(), p.double().numpy())
        smooth = np.stack([[gaussian_filter(m, sigma=1.5, mode="reflect", truncate=4.0) for m in b] for b in sim])
        up = F.interpolate(torch.from_numpy(smooth), size=(224, 224), mode="bilinear", align_corners=False)
        lo, hi = up.amin(dim=(-2, -1), keepdim=True), up.amax(dim=(-2, -1), keepdim=True)
        ref = (2 * (up - lo) / (hi - lo) - 1).float()
        torch.testing.assert_close(maps, ref, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(maps.amin(dim=(-2, -1)), -torch.ones(2, 3))
        torch.testing.assert_close(maps.amax(dim=(-2, -1)), torch.ones(2, 3))

    def test_constant_map_is_zero_not_nan(self):
        head = AFLocHeatmapHead(self.encoder, output_size=32).eval()
        with torch.no_grad():
            maps = head(_image(1), torch.zeros(2, D))
        self.assertFalse(bool(maps.isnan().any()))
        self.assertTrue(bool((maps == 0).all()))

    def test_image_encoder_torchscript(self):
        path = os.path.join(self.tmp, "image_encoder")  # ".ts" is appended
        export_image_encoder_torchscript(self.encoder, path, meta_values={"purpose": "test"})
        loaded, meta, _ = load_net_with_metadata(path + ".ts")
        self.assertEqual(meta["outputs"], list(IMAGE_ENCODER_OUTPUT_NAMES))
        self.assertEqual(meta["embed_dim"], D)
        self.assertEqual(meta["purpose"], "test")
        x = _image(3, seed=2)  # another batch size than the traced example
        with torch.no_grad():
            got = loaded(x)
            ref = self.encoder(x)
        for name, t in zip(IMAGE_ENCODER_OUTPUT_NAMES, got):
            torch.testing.assert_close(t, ref[name], rtol=1e-5, atol=1e-5)

    def test_heatmap_head_torchscript(self):
        path = os.path.join(self.tmp, "heatmaps.ts")
        export_heatmap_head_torchscript(self.encoder, path, sigma=1.5, output_size=224)
        loaded = torch.jit.load(path)
        head = AFLocHeatmapHead(self.encoder, sigma=1.5, output_size=224).eval()
        x, p = _image(2, seed=3), _prompts(5, seed=3)  # B and K differ from the traced example
        with torch.no_grad():
            torch.testing.assert_close(loaded(x, p), head(x, p), rtol=1e-5, atol=1e-5)

    @SkipIfNoModule("onnxruntime")
    @SkipIfNoModule("onnx")
    def test_onnx_image_encoder(self):
        import onnxruntime as ort

        path = export_onnx(self.encoder, os.path.join(self.tmp, "image_encoder.onnx"), part="image_encoder")
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.assertEqual([o.name for o in sess.get_outputs()], list(IMAGE_ENCODER_OUTPUT_NAMES))
        x = _image(2, seed=4)
        got = sess.run(None, {"image": x.numpy()})
        with torch.no_grad():
            ref = self.encoder(x)
        for name, arr in zip(IMAGE_ENCODER_OUTPUT_NAMES, got):
            torch.testing.assert_close(torch.from_numpy(arr), ref[name], rtol=1e-4, atol=1e-4)

    @SkipIfNoModule("onnxruntime")
    @SkipIfNoModule("onnx")
    def test_onnx_heatmap_head(self):
        import onnxruntime as ort

        head = AFLocHeatmapHead(self.encoder, sigma=1.5, output_size=64).eval()
        path = export_onnx(head, os.path.join(self.tmp, "heatmaps.onnx"), part="heatmap_head")
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        x, p = _image(2, seed=5), _prompts(3, seed=5)
        (got,) = sess.run(None, {"image": x.numpy(), "prompt_embeddings": p.numpy()})
        with torch.no_grad():
            ref = head(x, p)
        self.assertEqual(got.shape, (2, 3, 64, 64))
        torch.testing.assert_close(torch.from_numpy(got), ref, rtol=1e-4, atol=1e-4)

    @parameterized.expand(
        [
            (lambda enc: AFLocHeatmapHead(torch.nn.Linear(2, 2)), TypeError),
            (lambda enc: AFLocHeatmapHead(enc, sigma=-1.0), ValueError),
            (lambda enc: AFLocHeatmapHead(enc, sigma=True), TypeError),  # type wrong: TypeError
            (lambda enc: AFLocHeatmapHead(enc, output_size=0), ValueError),
            (lambda enc: AFLocHeatmapHead(enc, region_key="image_report"), ValueError),
            (lambda enc: AFLocHeatmapHead(enc)(_image(1, 64), torch.zeros(D)), ValueError),
            (lambda enc: AFLocHeatmapHead(enc)(_image(1, 64), torch.zeros(2, D + 1)), ValueError),
            (lambda enc: AFLocImageEncoderTuple("resnet18"), TypeError),
            (lambda enc: export_image_encoder_torchscript(enc, "unused.ts", input_size=0), ValueError),
            (lambda enc: export_heatmap_head_torchscript(object(), "unused.ts"), TypeError),
        ]
    )
    def test_ill_arg(self, make, error):
        with self.assertRaises(error):
            make(self.encoder)

    @SkipIfNoModule("onnx")
    def test_onnx_ill_arg(self):
        with self.assertRaises(ValueError):
            export_onnx(self.encoder, os.path.join(self.tmp, "x.onnx"), part="text_encoder")
        with self.assertRaises(ValueError):
            export_onnx(AFLocHeatmapHead(self.encoder), os.path.join(self.tmp, "x.onnx"), part="image_encoder")


if __name__ == "__main__":
    unittest.main()
