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
"""The MONAI Label part of tests/test_entry_points.py: the app's task gives the Python API's heatmaps (1e-5)."""

from __future__ import annotations

import os
import shutil
import tempfile
import unittest

import numpy as np

from tests.apps.monailabel._server import check_monailabel, skip_without_monailabel
from tests.helpers import SIZED_IMAGE_SIZE, read_heatmaps_nifti, write_sized_checkpoint

PROMPTS = ["left pleural effusion", "cardiomegaly"]


@skip_without_monailabel
class TestMONAILabelEntryPoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        check_monailabel()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ckpt, png, _ = write_sized_checkpoint(cls.tmp.name)
        cls.studies = os.path.join(cls.tmp.name, "studies")
        os.makedirs(cls.studies)
        cls.png = shutil.copy(png, os.path.join(cls.studies, "cxr.png"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_task_heatmaps_equal_the_api(self):
        from monai_afloc.apps.monailabel import AFLocAppSettings, AFLocPromptInferTask, build_localizer
        from monai_afloc.inferers import TextPromptLocalizer

        ref = TextPromptLocalizer.from_checkpoint(self.ckpt)(self.png, PROMPTS)["heatmaps"][0].numpy()
        loc = build_localizer(AFLocAppSettings({"checkpoint": self.ckpt, "device": "cpu"}))
        self.assertEqual(loc.image_size, SIZED_IMAGE_SIZE)  # the app's start-up path reads the checkpoint
        task = AFLocPromptInferTask(loc, None, allowed_roots=[self.studies])
        label_file, result = task({"image": self.png, "prompt": PROMPTS, "output": "heatmap"})
        try:
            got = read_heatmaps_nifti(label_file)
        finally:
            os.remove(label_file)
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
        self.assertEqual(result["threshold"], 0.5)  # the checkpoint's, no --conf threshold given


if __name__ == "__main__":
    unittest.main()
