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
import pkgutil
import unittest

import monai_afloc

_OPTIONAL_INTEGRATIONS = ()  # modules that need an optional extra (monailabel, deploy) would be listed here


class TestPublicAPI(unittest.TestCase):
    def test_every_module_has_all_and_its_names_import(self):
        names = [m.name for m in pkgutil.walk_packages(monai_afloc.__path__, "monai_afloc.")]
        self.assertGreater(len(names), 30)
        for name in names:
            if name.endswith("__main__") or name.startswith(_OPTIONAL_INTEGRATIONS or ("\0",)):
                continue
            module = importlib.import_module(name)
            self.assertTrue(hasattr(module, "__all__"), f"{name} has no __all__")
            for attr in module.__all__:
                self.assertTrue(hasattr(module, attr), f"{name}.__all__ names {attr!r}, which it does not define")

    def test_top_level(self):
        self.assertRegex(monai_afloc.__version__, r"^\d+\.\d+\.\d+")
        for attr in monai_afloc.__all__:
            self.assertIsNotNone(getattr(monai_afloc, attr))
        with self.assertRaises(AttributeError):
            monai_afloc.no_such_name  # noqa: B018


if __name__ == "__main__":
    unittest.main()
