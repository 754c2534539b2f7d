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

import importlib
import unittest

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, ToDeviced
from parameterized import parameterized

from monai_afloc.transforms.multimodal import RandLateralFlipd, RandLateralFlipD, RandLateralFlipDict

REPORT = "Left lower lobe opacity. No right effusion. Upright film."
FLIPPED_REPORT = "Right lower lobe opacity. No left effusion. Upright film."
SENTENCES = ["left lower lobe opacity", "no right effusion"]
FLIPPED_SENTENCES = ["right lower lobe opacity", "no left effusion"]


def _image(shape=(1, 4, 5), device="cpu"):
    return torch.arange(float(np.prod(shape)), device=device).reshape(shape)


def _is_flipped(out_image, image):
    if torch.equal(torch.as_tensor(out_image), torch.flip(image, dims=[-1])):
        return True
    if torch.equal(torch.as_tensor(out_image), image):
        return False
    raise AssertionError("the image is neither the input nor its flip")


class TestRandLateralFlipd(unittest.TestCase):
    @parameterized.expand(
        [
            ["str", REPORT, FLIPPED_REPORT],
            ["list", SENTENCES, FLIPPED_SENTENCES],
            ["tuple", tuple(SENTENCES), tuple(FLIPPED_SENTENCES)],
        ]
    )
    def test_prob_one_flips_both(self, _, report, expected):
        image = _image()
        out = RandLateralFlipd("image", "report", prob=1.0)({"image": image, "report": report, "id": 7})
        torch.testing.assert_close(torch.as_tensor(out["image"]), torch.flip(image, dims=[-1]), rtol=0, atol=0)
        self.assertEqual(out["report"], expected)
        self.assertIs(type(out["report"]), type(expected))
        self.assertEqual(out["id"], 7)

    @parameterized.expand([["str", REPORT], ["list", SENTENCES]])
    def test_prob_zero_changes_nothing(self, _, report):
        image = _image()
        out = RandLateralFlipd("image", "report", prob=0.0)({"image": image, "report": report})
        torch.testing.assert_close(torch.as_tensor(out["image"]), image, rtol=0, atol=0)
        self.assertEqual(out["report"], report)
        self.assertIsInstance(out["image"], MetaTensor)  # same output type as a flipped image

    def test_image_and_text_always_together(self):
        image = _image((3, 6, 7))
        flip = RandLateralFlipd(["image", "mask"], ["report", "sentences"], prob=0.5).set_random_state(0)
        decisions = []
        for _ in range(200):
            out = flip({"image": image, "mask": image[:1] > 10, "report": REPORT, "sentences": SENTENCES})
            flipped = _is_flipped(out["image"], image)
            self.assertEqual(_is_flipped(out["mask"], image[:1] > 10), flipped)
            self.assertEqual(out["report"], FLIPPED_REPORT if flipped else REPORT)
            self.assertEqual(out["sentences"], FLIPPED_SENTENCES if flipped else SENTENCES)
            decisions.append(flipped)
        self.assertTrue(60 < sum(decisions) < 140, sum(decisions))

    def test_set_random_state_reproducible(self):
        def draws(flip):
            image = _image()
            return [_is_flipped(flip({"image": image, "report": "left"})["image"], image) for _ in range(30)]

        first = draws(RandLateralFlipd("image", "report").set_random_state(42))
        self.assertEqual(first, draws(RandLateralFlipd("image", "report").set_random_state(42)))
        self.assertNotEqual(first, draws(RandLateralFlipd("image", "report").set_random_state(7)))
        composed = Compose([RandLateralFlipd("image", "report")]).set_random_state(42)
        self.assertEqual(len(set(draws(composed))), 2)
        state = np.random.RandomState(3)
        self.assertIsInstance(RandLateralFlipd("image", "report").set_random_state(state=state), RandLateralFlipd)

    def test_metatensor_meta_kept_and_inverse(self):
        image = MetaTensor(_image(), meta={"filename_or_obj": "cxr.png", "afloc_original_size": (40, 50)})
        flip = RandLateralFlipd("image", "report", prob=1.0)
        out = flip({"image": image, "report": REPORT})
        self.assertIsInstance(out["image"], MetaTensor)
        self.assertEqual(out["image"].meta["filename_or_obj"], "cxr.png")
        self.assertEqual(out["image"].meta["afloc_original_size"], (40, 50))
        self.assertEqual(out["image"].affine[1, 1].item(), -1.0)  # the width axis is mirrored
        self.assertEqual(out["image"].applied_operations[-1]["class"], "RandLateralFlipd")
        back = flip.inverse(out)
        torch.testing.assert_close(back["image"].as_tensor(), image.as_tensor(), rtol=0, atol=0)
        self.assertEqual(back["report"], REPORT)
        self.assertEqual(back["image"].applied_operations, [])

    def test_inverse_not_flipped_and_image_only(self):
        flip = RandLateralFlipd("image", "report", prob=0.0)
        out = flip({"image": _image(), "report": REPORT})
        self.assertEqual(flip.inverse(out)["report"], REPORT)
        flip = RandLateralFlipd("image", "report", prob=1.0)
        out = flip({"image": _image(), "report": REPORT})
        with self.assertRaisesRegex(RuntimeError, "no image key"):
            RandLateralFlipd("image", "report", allow_missing_keys=True).inverse({"report": out["report"]})

    @parameterized.expand([[(1, 4, 5), -1, [-1]], [(2, 4, 5), 0, [1]], [(1, 3, 4, 5), -1, [3]], [(1, 3, 4, 5), 1, [2]]])
    def test_spatial_axis(self, shape, spatial_axis, dims):
        image = _image(shape)
        out = RandLateralFlipd("image", "report", prob=1.0, spatial_axis=spatial_axis)({"image": image, "report": ""})
        torch.testing.assert_close(torch.as_tensor(out["image"]), torch.flip(image, dims=dims), rtol=0, atol=0)

    def test_numpy_image(self):
        image = np.arange(20.0).reshape(1, 4, 5)
        out = RandLateralFlipd("image", "report", prob=1.0)({"image": image, "report": "left"})
        self.assertIsInstance(out["image"], torch.Tensor)
        np.testing.assert_array_equal(out["image"].numpy(), image[..., ::-1])

    def test_missing_keys(self):
        flip = RandLateralFlipd(["image", "mask"], "report", prob=1.0, allow_missing_keys=True)
        out = flip({"image": _image(), "report": "left"})
        self.assertEqual(sorted(out), ["image", "report"])
        with self.assertRaises(KeyError):
            RandLateralFlipd(["image", "mask"], "report", prob=1.0)({"image": _image(), "report": "left"})

    def test_after_to_deviced(self):
        device = "cuda" if torch.cuda.is_available() else "cpu"
        image = MetaTensor(_image(), meta={"filename_or_obj": "cxr.png"})
        pipeline = Compose(
            [ToDeviced(keys="image", device=device), RandLateralFlipd("image", "report", prob=1.0)]
        ).set_random_state(0)
        out = pipeline({"image": image, "report": REPORT})
        self.assertEqual(out["image"].device.type, device)
        torch.testing.assert_close(out["image"].cpu().as_tensor(), torch.flip(image.as_tensor(), dims=[-1]))
        self.assertEqual(out["image"].meta["filename_or_obj"], "cxr.png")
        self.assertEqual(out["report"], FLIPPED_REPORT)

    @unittest.skipUnless(torch.cuda.is_available(), "needs CUDA")
    def test_cuda_tensor(self):
        image = _image(device="cuda")
        out = RandLateralFlipd("image", "report", prob=1.0)({"image": image, "report": "left"})
        self.assertEqual(out["image"].device, image.device)
        torch.testing.assert_close(torch.as_tensor(out["image"]), torch.flip(image, dims=[-1]), rtol=0, atol=0)

    def test_aliases_and_public_names(self):
        self.assertIs(RandLateralFlipD, RandLateralFlipd)
        self.assertIs(RandLateralFlipDict, RandLateralFlipd)
        package = importlib.import_module("monai_afloc.transforms.multimodal")
        for module_name in ("monai_afloc.transforms.multimodal.array", "monai_afloc.transforms.multimodal.dictionary"):
            module = importlib.import_module(module_name)
            self.assertLessEqual(set(module.__all__), set(package.__all__), module_name)

    @parameterized.expand(
        [
            [{"image_keys": "image", "text_keys": []}, ValueError, "text_keys must name at least one key"],
            [{"image_keys": (), "text_keys": "report"}, ValueError, "image_keys must name at least one key"],
            [{"image_keys": "x", "text_keys": ["report", "x"]}, ValueError, "both an image and a text key, got 'x'"],
            [{"image_keys": None, "text_keys": "report"}, TypeError, "image_keys must be hashable keys"],
            [{"prob": 1.5}, ValueError, "prob must be a number in \\[0.0, 1.0\\], got 1.5"],
            [{"prob": "0.5"}, TypeError, "prob must be a number.*got str"],
            [{"prob": True}, TypeError, "prob must be a number.*got bool"],
            [{"spatial_axis": 1.0}, TypeError, "spatial_axis must be an int, got float"],
            [{"spatial_axis": (0, 1)}, TypeError, "spatial_axis must be an int, got tuple"],
            [{"pairs": ()}, ValueError, "pairs must hold at least one"],
            [{"pairs": (("left", "left"),)}, ValueError, "already in pairs\\[0\\]"],
        ]
    )
    def test_ill_arg(self, kwargs, error, message):
        kwargs = {"image_keys": "image", "text_keys": "report", **kwargs}
        with self.assertRaisesRegex(error, message):
            RandLateralFlipd(**kwargs)

    @parameterized.expand(
        [
            [{"image": [[1.0, 2.0]], "report": "left"}, TypeError, "image key 'image' must hold a channel-first"],
            [{"image": torch.ones(3), "report": "left"}, ValueError, "'image' of shape \\(3,\\) has no spatial axis"],
            [{"image": torch.ones(1, 4, 5), "report": None}, TypeError, "text key 'report'.*got NoneType"],
            [{"image": torch.ones(1, 4, 5), "report": torch.ones(97)}, TypeError, "before tokenizing"],
            [{"image": torch.ones(1, 4, 5), "report": ["left", 1]}, TypeError, "a list holding a int"],
        ]
    )
    def test_bad_data(self, data, error, message):
        for prob in (0.0, 1.0):  # the error does not depend on the draw
            with self.assertRaisesRegex(error, message):
                RandLateralFlipd("image", "report", prob=prob)(data)
        with self.assertRaisesRegex(ValueError, "spatial_axis in \\[-2, 1\\]"):
            RandLateralFlipd("image", "report", spatial_axis=2)({"image": torch.ones(1, 4, 5), "report": ""})


if __name__ == "__main__":
    unittest.main()
