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

"""Tests of the dictionary image transforms, their geometry keys, collation, and the package's public names."""

from __future__ import annotations

import os
import tempfile
import unittest

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose

import monai_afloc.transforms.image as image_transforms
from monai_afloc.transforms.image import (
    AFLocImagePreprocess,
    AFLocImagePreprocessd,
    CenterCropFramed,
    EqualizeHistogramd,
    LoadGrayscaleImaged,
    PreprocessGeometry,
    ResizeLongestSidePadd,
    frame_to_original,
)
from tests.transforms.image.test_load import write_dicom


class TestPublicNames(unittest.TestCase):
    def test_all_importable(self):
        for name in image_transforms.__all__:
            self.assertTrue(hasattr(image_transforms, name), name)
        self.assertIs(image_transforms.AFLocImagePreprocessD, AFLocImagePreprocessd)
        self.assertIs(image_transforms.ResizeLongestSidePadDict, ResizeLongestSidePadd)


class TestDictTransforms(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.paths = []
        for k, shape in enumerate(((300, 200), (180, 260))):
            arr = np.full(shape, 500, np.uint16)
            arr[10:40, 20:50] = 4000
            self.paths.append(write_dicom(os.path.join(self._tmp.name, f"{k}.dcm"), arr))

    def tearDown(self):
        self._tmp.cleanup()

    def test_step_by_step_equals_whole_chain(self):
        chain = Compose(
            [
                LoadGrayscaleImaged("image"),
                ResizeLongestSidePadd("image", size=256),
                EqualizeHistogramd("image", mask_zero=True),
                CenterCropFramed("image", crop_size=224),
            ]
        )
        d = chain({"image": self.paths[0], "label": 3})
        self.assertEqual(d["label"], 3)
        self.assertEqual(d["image_geometry"], d["image"].meta["afloc_geometry"])
        self.assertEqual((d["image_geometry"]["crop"], d["image_geometry"]["frame_size"]), ((16, 16), 224))
        whole = AFLocImagePreprocessd("image", train=True, equalize_hist=True)({"image": self.paths[0]})
        torch.testing.assert_close(whole["image"][0].as_tensor(), (d["image"][0].as_tensor() / 255 - 0.5) / 0.5)
        self.assertEqual(whole["image_geometry"], d["image_geometry"])

    def test_postfix_and_missing_keys(self):
        t = ResizeLongestSidePadd(["image", "other"], size=64, geometry_key_postfix="geo", allow_missing_keys=True)
        d = t({"image": torch.zeros(1, 80, 40)})
        self.assertIn("image_geo", d)
        self.assertNotIn("other_geo", d)
        with self.assertRaises(KeyError):
            ResizeLongestSidePadd("other", size=64)({"image": torch.zeros(1, 80, 40)})

    def test_dataloader_collates_and_maps_back(self):
        ds = Dataset([{"image": p} for p in self.paths], transform=AFLocImagePreprocessd("image"))
        batch = next(iter(DataLoader(ds, batch_size=2, num_workers=0)))
        self.assertEqual(tuple(batch["image"].shape), (2, 3, 224, 224))
        geometries = PreprocessGeometry.from_batch(batch["image_geometry"])
        self.assertEqual([g.original_size for g in geometries], [(300, 200), (180, 260)])
        for k, g in enumerate(geometries):
            back = frame_to_original(batch["image"][k, :1].as_tensor(), g)
            self.assertEqual(tuple(back.shape), (1, *g.original_size))
            # the bright square comes back where it was in the file
            rows, cols = torch.nonzero(back[0] > 0.9, as_tuple=True)
            self.assertAlmostEqual(rows.float().mean().item(), 24.5, delta=1.5)
            self.assertAlmostEqual(cols.float().mean().item(), 34.5, delta=1.5)
        self.assertIsInstance(AFLocImagePreprocessd("image").transform, AFLocImagePreprocess)

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            ResizeLongestSidePadd("image", geometry_key_postfix="")
        with self.assertRaises(ValueError):
            CenterCropFramed("image", crop_size=0)
        with self.assertRaises(ValueError):
            AFLocImagePreprocessd("image", size=-1)
        with self.assertRaises(TypeError):
            EqualizeHistogramd("image", mask_zero=None)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            LoadGrayscaleImaged("image", image_format="gif")
        with self.assertRaises(FileNotFoundError):
            LoadGrayscaleImaged("image")({"image": os.path.join(self._tmp.name, "nope.png")})


if __name__ == "__main__":
    unittest.main()
