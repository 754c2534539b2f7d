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
"""The README's front door: clone first, and its test command is the one ``.ci/run`` runs."""

from __future__ import annotations

import os
import re
import unittest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _first_block(text: str) -> list[str]:
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]


class TestReadmeFrontDoor(unittest.TestCase):
    def test_clone_then_the_two_commands(self):
        with open(os.path.join(_ROOT, "README.md"), encoding="utf-8") as f:
            lines = _first_block(f.read())
        self.assertTrue(lines[0].startswith("git clone "), lines[0])
        self.assertIn("--index-url https://download.pytorch.org/whl/cpu", lines[1])
        demo, tests = lines[-2], lines[-1]
        self.assertIn("python -m monai_afloc demo --out demo_out", demo)
        with open(os.path.join(_ROOT, ".ci", "run"), encoding="utf-8") as f:
            ci = f.read()
        # .ci/run's README command, with its -q flags and line continuation taken out
        start = ci.index("pip install -q torch==")
        run = ci[start : ci.index("python -m pytest -q tests", start) + len("python -m pytest -q tests")]
        run = " ".join(run.replace("\\\n", " ").replace(" -q ", " ").split())
        self.assertEqual(run.replace("pytest tests", "pytest -q tests"), " ".join(tests.split()))


if __name__ == "__main__":
    unittest.main()
