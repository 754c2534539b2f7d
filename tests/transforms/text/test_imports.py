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

from parameterized import parameterized

MODULES = [
    "monai_afloc.transforms.text",
    "monai_afloc.transforms.text.array",
    "monai_afloc.transforms.text.dictionary",
    "monai_afloc.transforms.text.negation",
]


class TestPublicNames(unittest.TestCase):
    @parameterized.expand([[m] for m in MODULES])
    def test_all_names_import(self, module_name):
        module = importlib.import_module(module_name)
        self.assertTrue(module.__all__)
        self.assertEqual(len(module.__all__), len(set(module.__all__)))
        for name in module.__all__:
            self.assertTrue(hasattr(module, name), f"{module_name}.{name}")

    def test_package_exports_submodules(self):
        package = importlib.import_module(MODULES[0])
        exported = set(package.__all__)
        for module_name in MODULES[1:]:
            self.assertLessEqual(set(importlib.import_module(module_name).__all__), exported, module_name)


if __name__ == "__main__":
    unittest.main()
