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
"""The MONAI Label tutorial runs end to end (its own server, brightness stand-in network, figure saved)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
import unittest

from tests.apps.monailabel._server import REPO_ROOT, check_monailabel, skip_without_monailabel


@skip_without_monailabel
class TestMONAILabelTutorial(unittest.TestCase):
    def test_tutorial_runs(self):
        check_monailabel()
        path = os.path.join(REPO_ROOT, "tutorials", "monailabel_pre_annotation.py")
        spec = importlib.util.spec_from_file_location("monailabel_tutorial", path)
        tut = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tut)
        with tempfile.TemporaryDirectory() as d:
            res = tut.main(["--out", d])
            self.assertTrue(os.path.getsize(res["figure"]) > 10_000)
            self.assertEqual(res["bad_status"], 403)
            self.assertEqual([p["prompt"] for p in res["findings"]["prompts"]], ["Pleural Effusion", "Nodule"])
            self.assertTrue(res["result"]["prompts"][0]["boxes"])


if __name__ == "__main__":
    unittest.main()
