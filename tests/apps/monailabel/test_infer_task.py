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
"""The AFLoc infer task called in-process (no server): arguments, path refusal, answers."""

from __future__ import annotations

import os
import tempfile
import unittest

import numpy as np
from PIL import Image

from tests.apps.monailabel._server import check_monailabel, skip_without_monailabel
from tests.helpers import BrightnessAFLoc


@skip_without_monailabel
class TestInferTask(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        check_monailabel()
        from monai_afloc.apps.monailabel import AFLocPromptInferTask
        from monai_afloc.inferers import TextPromptLocalizer

        cls.tmp = tempfile.TemporaryDirectory()
        cls.inside = os.path.join(cls.tmp.name, "studies")
        os.makedirs(cls.inside)
        img = np.full((64, 96), 10, np.uint8)
        img[40:60, 10:30] = 240
        cls.png = os.path.join(cls.inside, "a.png")
        Image.fromarray(img).save(cls.png)
        cls.outside = os.path.join(cls.tmp.name, "b.png")
        Image.fromarray(img).save(cls.outside)
        cls.loc = TextPromptLocalizer(BrightnessAFLoc())
        cls.task = AFLocPromptInferTask(cls.loc, findings={"Spot": "bright spot"}, allowed_roots=[cls.inside])
        cls.Task = AFLocPromptInferTask

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_answer(self):
        label_file, result = self.task({"image": self.png})
        try:
            label = np.asarray(Image.open(label_file))
        finally:
            os.remove(label_file)
        self.assertEqual(label.shape, (64, 96))
        self.assertEqual(result["label_names"], {"Spot": 1})
        self.assertEqual(result["prompts"][0]["text"], "bright spot")
        ref = self.loc(self.png, ["bright spot"], return_boxes=True)["boxes"][0][0]
        self.assertEqual(result["prompts"][0]["boxes"], ref)
        ys, xs = np.nonzero(label)
        self.assertEqual([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], ref[0]["box"])
        self.assertTrue(self.task.is_valid())
        self.assertEqual(self.task.info()["afloc"]["prompts"], {"Spot": "bright spot"})

    def test_refusals(self):
        from fastapi import HTTPException

        for request, status in (
            ({"image": self.outside}, 403),
            ({"image": os.path.join(self.inside, "none.png")}, 404),
            ({"image": None}, 400),
            ({"image": self.png, "prompt": "Other"}, 400),
            ({"image": self.png, "threshold": 3}, 400),
            (["image", self.png], 422),
        ):
            with self.subTest(request=request):
                with self.assertRaises(HTTPException) as ctx:
                    self.task(request)
                self.assertEqual(ctx.exception.status_code, status)

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            self.Task(BrightnessAFLoc())
        for findings in ("Nodule", [], {"A": ""}, [" "], [f"f{i}" for i in range(256)]):
            with self.assertRaises(ValueError):
                self.Task(self.loc, findings=findings)
        with self.assertRaises(ValueError):
            self.Task(self.loc, threshold=2.0)
        with self.assertRaises(ValueError):
            self.Task(self.loc, output="dicom_seg")
        with self.assertRaises(TypeError):
            self.Task(self.loc, allowed_roots="/data")


if __name__ == "__main__":
    unittest.main()
