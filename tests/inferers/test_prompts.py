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

import unittest
import warnings

from monai_afloc.inferers.prompts import clean_prompt, clean_prompts


class TestCleanPrompts(unittest.TestCase):
    def test_clean_prompt(self):
        self.assertEqual(clean_prompt("Small LEFT pleural effusion."), "small left pleural effusion")
        self.assertEqual(clean_prompt("Cardiomegaly"), "cardiomegaly")  # one word is kept
        self.assertEqual(clean_prompt("left effusion. right pneumothorax"), "left effusion right pneumothorax")
        with self.assertRaisesRegex(ValueError, "no word"):
            clean_prompt(" ... ")
        with self.assertRaisesRegex(TypeError, "must be a str"):
            clean_prompt(3)

    def test_clean_prompts(self):
        self.assertEqual(clean_prompts("Cardiomegaly"), ["cardiomegaly"])
        self.assertEqual(clean_prompts(("Edema.", "small  nodule")), ["edema", "small nodule"])
        for bad in ([], (), None, 3):
            with self.assertRaisesRegex(ValueError, "non-empty str or sequence"):
                clean_prompts(bad)
        with self.assertRaisesRegex(TypeError, "must be a str"):
            clean_prompts(["edema", None])


    def test_warnings(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # case and punctuation alone: no warning
            self.assertEqual(clean_prompts(["Small LEFT effusion.", "left effusion. right pneumothorax"])[0],
                             "small left effusion")
            self.assertEqual(clean_prompt("Ödem links", warn=False), "dem links")
        with self.assertWarnsRegex(UserWarning, r"'Ödem links'.*model sees 'dem links'.*keep_unicode=True"):
            clean_prompt("Ödem links")
        with self.assertWarnsRegex(UserWarning, r"model sees 'left effusion' \(one-word sentences"):
            clean_prompt("1. left effusion 2. edema")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            self.assertEqual(clean_prompt("Ödem links", keep_unicode=True), "ödem links")
            self.assertEqual(clean_prompts(["Épanchement"], keep_unicode=True), ["épanchement"])
        with self.assertRaisesRegex(ValueError, "no word in ASCII"):
            clean_prompt("αβγ")
        with self.assertRaisesRegex(TypeError, "keep_unicode"):
            clean_prompt("edema", keep_unicode="yes")


if __name__ == "__main__":
    unittest.main()
