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

from monai.metrics import DiceMetric

import monai_afloc.metrics as metrics


class TestPublicNames(unittest.TestCase):
    def test_all_names_import(self):
        for module in ("localization", "report", "zero_shot"):
            mod = importlib.import_module(f"monai_afloc.metrics.{module}")
            for name in mod.__all__:
                self.assertTrue(hasattr(mod, name), f"{module}.{name}")
                self.assertIn(name, metrics.__all__)
        for name in metrics.__all__:
            self.assertTrue(hasattr(metrics, name), name)

    def test_no_monai_class_name_reused(self):
        # classes only: compute_iou / compute_dice deliberately share MONAI's function names (the project's API);
        # bundle configs must use fully qualified _target_ paths for them
        import monai.metrics as monai_metrics

        classes = [name for name in metrics.__all__ if isinstance(getattr(metrics, name), type)]
        self.assertEqual([name for name in classes if hasattr(monai_metrics, name)], [])
        self.assertIsNot(metrics.HeatmapDiceMetric, DiceMetric)


if __name__ == "__main__":
    unittest.main()
