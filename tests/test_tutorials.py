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

import importlib.util
import os
import tempfile
import unittest

from tests.helpers import make_tiny_bert

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TestTutorials(unittest.TestCase):
    def test_localize_and_evaluate_runs(self):
        spec = importlib.util.spec_from_file_location("tut", os.path.join(_ROOT, "tutorials", "localize_and_evaluate.py"))
        tut = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tut)
        with tempfile.TemporaryDirectory() as d:
            bert = make_tiny_bert(os.path.join(d, "bert"), hidden_size=32)
            res = tut.main(["--out", d, "--n-images", "3", "--text-model", bert])
            self.assertTrue(os.path.isfile(res["overlay"]))
            self.assertIn("shuffled", res["metrics"])

    def test_notebook_runs(self):
        # the notebook's code cells in order, in one namespace, with a tiny text model; its figure is a Figure
        import json

        with open(os.path.join(_ROOT, "tutorials", "localize_and_evaluate.ipynb"), encoding="utf-8") as f:
            cells = [("".join(c["source"])) for c in json.load(f)["cells"] if c["cell_type"] == "code"]
        with tempfile.TemporaryDirectory() as d:
            bert = make_tiny_bert(os.path.join(d, "bert"), hidden_size=32)
            cells[0] = cells[0].replace("TEXT_MODEL = None", f"TEXT_MODEL = {bert!r}").replace("N_IMAGES = 6", "N_IMAGES = 3")
            namespace: dict = {}
            for source in cells:
                exec(compile(source, "localize_and_evaluate.ipynb", "exec"), namespace)
            from matplotlib.figure import Figure

            self.assertIsInstance(namespace["fig"], Figure)
            self.assertIn("shuffled", namespace["metrics"])


if __name__ == "__main__":
    unittest.main()
