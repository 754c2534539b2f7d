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
"""Smoke test of benchmarks/loss_memory.py at tiny sizes, in-process (the script's workers run this same code)."""

from __future__ import annotations

import unittest

import torch

from tests.helpers import load_benchmark


class TestLossMemoryScript(unittest.TestCase):
    def test_tiny_run(self):
        script = load_benchmark("loss_memory")
        threads = torch.get_num_threads()
        args = script._parser().parse_args(
            "--batch 5 --dim 16 --word-grid 6 --sentence-grid 3 --length 12 --word-min 2 --reps 1 --threads 1"
            " --chunk-size 2".split()
        )
        try:
            loop = script.measure("loop", args)
            chunked = script.measure("chunked", args)
        finally:
            torch.set_num_threads(threads)
        self.assertLess(abs(loop["loss"] - chunked["loss"]), 1e-5 * abs(loop["loss"]))
        for a, b in zip(loop["grad_norms"], chunked["grad_norms"]):
            self.assertLess(abs(a - b), 1e-5 * abs(a))
        for key in ("peak_mib", "first_s", "median_s"):
            self.assertGreaterEqual(chunked[key], 0.0)


if __name__ == "__main__":
    unittest.main()
