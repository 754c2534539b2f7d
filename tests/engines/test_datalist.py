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

import csv
import os
import shutil
import tempfile
import unittest

from monai_afloc.apps.synthetic import SyntheticCXRGenerator, write_pretraining_split
from monai_afloc.engines import image_text_split_datalist


class TestImageTextSplitDatalist(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.csv = write_pretraining_split(
            cls.tmp, 10, SyntheticCXRGenerator(image_size=64, seed=3), splits=(0.6, 0.2, 0.2)
        )

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_splits_partition_the_table(self):
        sizes = {s: len(image_text_split_datalist(self.csv, split=s)) for s in ("train", "validate", "test")}
        self.assertEqual(sizes, {"train": 6, "validate": 2, "test": 2})
        self.assertEqual(len(image_text_split_datalist(self.csv, split=None)), 10)
        item = image_text_split_datalist(self.csv, split="train")[0]
        self.assertTrue(os.path.isfile(item["image"]))
        self.assertEqual(item["split"], "train")

    def test_report_sections(self):
        with open(self.csv, newline="", encoding="utf-8") as f:
            raw = next(csv.DictReader(f))["report"]
        self.assertIn("FINDINGS:", raw)
        first = image_text_split_datalist(self.csv, split=None)[0]["report"]
        self.assertNotIn("FINDINGS:", first)
        self.assertNotIn("IMPRESSION:", first)
        unchanged = image_text_split_datalist(self.csv, split=None, section=None)[0]["report"]
        self.assertEqual(unchanged, raw.strip())

    def test_unknown_split(self):
        with self.assertRaisesRegex(ValueError, "splits found"):
            image_text_split_datalist(self.csv, split="holdout")
        self.assertEqual(image_text_split_datalist(self.csv, split="holdout", allow_empty=True), [])

    def test_missing_split_column(self):
        path = os.path.join(self.tmp, "pairs.csv")
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["image", "report"], ["x.png", "no effusion"]])
        open(os.path.join(self.tmp, "x.png"), "wb").close()
        with self.assertRaisesRegex(ValueError, "no column 'split'"):
            image_text_split_datalist(path, image_column="image")
        self.assertEqual(len(image_text_split_datalist(path, split=None, image_column="image", section=None)), 1)

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            image_text_split_datalist(self.csv, split="")
        with self.assertRaises(ValueError):
            image_text_split_datalist(self.csv, split_column="")
        with self.assertRaises(ValueError):
            image_text_split_datalist(self.csv, section="history")
        with self.assertRaises(TypeError):
            image_text_split_datalist(self.csv, allow_empty=1)
        with self.assertRaises(FileNotFoundError):
            image_text_split_datalist(os.path.join(self.tmp, "missing.csv"))


if __name__ == "__main__":
    unittest.main()
