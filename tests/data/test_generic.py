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

"""Tests of the modality-agnostic readers (image-text pairs, annotated images)."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import unittest

from monai.data import Dataset
from parameterized import parameterized

from monai_afloc.data import annotated_datalist, image_text_datalist
from tests.data.writers import touch, write_csv, write_text


class _TmpDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        for name in ("a.png", "b.png", "c.png", "a_mask.png"):
            touch(os.path.join(self.dir, "img", name))

    def tearDown(self):
        self.tmp.cleanup()


class TestImageText(_TmpDir):
    def test_csv(self):
        csv = write_csv(
            os.path.join(self.dir, "pairs.csv"),
            ["image", "report", "site"],
            [
                ["img/a.png", "Drusen at the macula.", "x"],
                ["img/b.png", "  ", "y"],
                ["img/missing.png", "Cupping.", "z"],
                [os.path.join(self.dir, "img", "c.png"), "Fine.", "w"],
            ],
        )
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = image_text_datalist(csv)
        self.assertIn("1 records without text", logs.output[0])
        self.assertIn("1 missing image files", logs.output[0])
        self.assertEqual(
            data[0], {"image": os.path.join(self.dir, "img", "a.png"), "report": "Drusen at the macula.", "site": "x"}
        )
        self.assertEqual(data[1]["image"], os.path.join(self.dir, "img", "c.png"))  # absolute path kept
        self.assertEqual(len(Dataset(data)), 2)

    def test_jsonl_gz_columns_base_dir(self):
        path = os.path.join(self.dir, "meta", "pairs.jsonl.gz")
        os.makedirs(os.path.dirname(path))
        with gzip.open(path, "wt") as f:
            f.write(json.dumps({"file": "img/a.png", "text": "Nodule.", "id": 3}) + "\n")
        data = image_text_datalist(path, image_column="file", text_column="text", base_dir=self.dir)
        self.assertEqual(data, [{"image": os.path.join(self.dir, "img", "a.png"), "report": "Nodule.", "id": 3}])

    def test_errors(self):
        csv = write_csv(os.path.join(self.dir, "pairs.csv"), ["image", "text"], [["img/a.png", "x"]])
        with self.assertRaisesRegex(ValueError, r"\['report'\]"):
            image_text_datalist(csv)
        csv = write_csv(csv, ["path", "report", "image"], [["img/a.png", "x", "y"]])
        with self.assertRaisesRegex(ValueError, "overwritten"):
            image_text_datalist(csv, image_column="path")
        jl = write_text(os.path.join(self.dir, "p.jsonl"), json.dumps({"image": 3, "report": "x"}) + "\n")
        with self.assertRaisesRegex(ValueError, "column 'image': expected a string"):
            image_text_datalist(jl)

    @parameterized.expand(
        [
            [{"image_column": ""}, ValueError],
            [{"image_column": "x", "text_column": "x"}, ValueError],
            [{"base_dir": "/no/such/dir"}, FileNotFoundError],
            [{"strict": "yes"}, TypeError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        csv = write_csv(os.path.join(self.dir, "pairs.csv"), ["image", "report"], [["img/a.png", "x"]])
        with self.assertRaises(error):
            image_text_datalist(csv, **kwargs)


class TestAnnotated(_TmpDir):
    HEADER = ["image", "category", "prompt", "boxes", "mask", "label"]

    def test_csv_merge(self):
        csv = write_csv(
            os.path.join(self.dir, "lesions.csv"),
            self.HEADER,
            [
                ["img/a.png", "Nodule", "", "[[12, 40, 8, 8]]", "", ""],
                ["img/b.png", "Haemorrhage", "flame haemorrhage", "", "img/a_mask.png", ""],
                ["img/a.png", "Nodule", "", "[60, 22, 5, 6]", "", ""],  # one box, merged with row 1
                ["img/c.png", "Nodule", "", "", "", "0"],
                ["img/missing.png", "Nodule", "", "[1, 1, 1, 1]", "", ""],
            ],
        )
        with self.assertLogs("monai_afloc.data.utils", "WARNING"):
            data = annotated_datalist(csv)
        self.assertEqual(len(data), 3)
        self.assertEqual(data[0]["boxes"], [[12.0, 40.0, 8.0, 8.0], [60.0, 22.0, 5.0, 6.0]])
        self.assertEqual((data[0]["prompt"], data[0]["label"]), ("Findings suggesting Nodule.", 1))
        self.assertNotIn("mask", data[0])
        self.assertEqual(data[1]["mask"], os.path.join(self.dir, "img", "a_mask.png"))
        self.assertEqual((data[1]["prompt"], data[1]["label"], data[1]["boxes"]), ("flame haemorrhage", 1, []))
        self.assertEqual((data[2]["label"], data[2]["boxes"]), (0, []))

    def test_jsonl_minimal_columns(self):
        jl = write_text(
            os.path.join(self.dir, "a.jsonl"),
            json.dumps({"image": "img/a.png", "category": "Tumour", "boxes": [[1, 2, 3, 4]]}) + "\n",
        )
        data = annotated_datalist(jl, prompt_template="{category} tissue")
        self.assertEqual(
            data,
            [
                {
                    "image": os.path.join(self.dir, "img", "a.png"),
                    "category": "Tumour",
                    "prompt": "Tumour tissue",
                    "boxes": [[1.0, 2.0, 3.0, 4.0]],
                    "label": 1,
                }
            ],
        )

    @parameterized.expand(
        [
            [["img/a.png", "Nodule", "", "[[1, 2, 3]]", "", ""], "box"],
            [["img/a.png", "Nodule", "", "1,2,3,4", "", ""], "JSON"],
            [["img/a.png", "Nodule", "", "", "", "2"], "label must be 0 or 1"],
            [["img/a.png", "", "", "", "", ""], "empty"],
        ]
    )
    def test_bad_rows(self, row, msg):
        csv = write_csv(os.path.join(self.dir, "l.csv"), self.HEADER, [row])
        with self.assertRaisesRegex(ValueError, msg):
            annotated_datalist(csv)

    def test_conflicts(self):
        csv = write_csv(
            os.path.join(self.dir, "l.csv"),
            self.HEADER,
            [["img/a.png", "N", "", "", "img/a_mask.png", ""], ["img/a.png", "N", "", "", "img/b.png", ""]],
        )
        with self.assertRaisesRegex(ValueError, "second mask"):
            annotated_datalist(csv)
        csv = write_csv(csv, self.HEADER, [["img/a.png", "N", "", "", "", "1"], ["img/a.png", "N", "", "", "", "0"]])
        with self.assertRaisesRegex(ValueError, "disagrees"):
            annotated_datalist(csv)
        csv = write_csv(csv, ["image", "boxes"], [["img/a.png", "[]"]])
        with self.assertRaisesRegex(ValueError, r"\['category'\]"):
            annotated_datalist(csv)

    def test_ill_arg(self):
        csv = write_csv(os.path.join(self.dir, "l.csv"), self.HEADER, [["img/a.png", "N", "", "", "", ""]])
        with self.assertRaises(ValueError):
            annotated_datalist(csv, boxes_column="")
        with self.assertRaises(ValueError):
            annotated_datalist(csv, prompt_template="no field")
        with self.assertRaises(TypeError):
            annotated_datalist(csv, strict=None)
        self.assertEqual(
            len(annotated_datalist(csv, prompt_column=None, boxes_column=None, mask_column=None, label_column=None)), 1
        )


if __name__ == "__main__":
    unittest.main()
