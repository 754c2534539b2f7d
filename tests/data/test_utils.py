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

"""Tests of the readers' shared helpers: tables (plain/gz, CSV/JSONL/JSON), prompts, boxes, file index."""

from __future__ import annotations

import json
import os
import tempfile
import unittest

from parameterized import parameterized

import monai_afloc.data as data_pkg
from monai_afloc.data import DEFAULT_PROMPT_TEMPLATE, default_prompt, resolve_table_path
from monai_afloc.data.utils import (
    MissingFiles,
    index_files,
    open_csv,
    parse_box,
    read_records,
)
from tests.data.writers import touch, write_csv, write_text


class TestPublicNames(unittest.TestCase):
    def test_all_importable(self):
        for name in data_pkg.__all__:
            self.assertTrue(hasattr(data_pkg, name), name)
        self.assertEqual(DEFAULT_PROMPT_TEMPLATE, "Findings suggesting {category}.")


class TestPrompt(unittest.TestCase):
    def test_default(self):
        self.assertEqual(default_prompt("Pneumonia"), "Findings suggesting Pneumonia.")
        self.assertEqual(default_prompt(" Edema ", "{category} here"), "Edema here")

    @parameterized.expand([[""], [None], [3]])
    def test_ill_category(self, category):
        with self.assertRaises(ValueError):
            default_prompt(category)

    def test_ill_template(self):
        with self.assertRaisesRegex(ValueError, "category"):
            default_prompt("Edema", "no field")


class TestTables(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_plain_and_gz(self):
        gz = write_csv(os.path.join(self.dir, "a.csv.gz"), ["x", " y"], [[1, 2]])
        plain = write_csv(os.path.join(self.dir, "b.csv"), ["x", "y"], [[3, 4]])
        self.assertEqual(resolve_table_path(os.path.join(self.dir, "a.csv")), gz)
        self.assertEqual(resolve_table_path(os.path.join(self.dir, "b.csv.gz")), plain)
        with open_csv(os.path.join(self.dir, "a.csv"), ("x", "y")) as (rows, names):
            rows = list(rows)
        self.assertEqual(names, ["x", "y"])  # header white space stripped
        self.assertEqual((rows[0]["x"], rows[0]["y"], rows[0]["__line__"]), ("1", "2", "2"))

    def test_missing_file_names_both(self):
        path = os.path.join(self.dir, "nope.csv")
        with self.assertRaisesRegex(FileNotFoundError, r"nope\.csv' and '.*nope\.csv\.gz"):
            resolve_table_path(path)

    def test_missing_column_named(self):
        path = write_csv(os.path.join(self.dir, "t.csv"), ["a", "b"], [[1, 2]])
        with self.assertRaisesRegex(ValueError, r"\['c'\].*columns found: \['a', 'b'\]"):
            with open_csv(path, ("a", "c")):
                pass

    def test_empty_table(self):
        path = write_text(os.path.join(self.dir, "e.csv"), "")
        with self.assertRaisesRegex(ValueError, "empty"):
            with open_csv(path):
                pass

    def test_records_jsonl_json(self):
        jl = write_text(os.path.join(self.dir, "r.jsonl"), '{"image": "a", "n": 1}\n\n{"image": "b", "n": 2}\n')
        js = os.path.join(self.dir, "r.json")
        with open(js, "w") as f:
            json.dump([{"image": "a"}], f)
        self.assertEqual([r["n"] for r in read_records(jl, ("image",))], [1, 2])
        self.assertEqual(read_records(js)[0]["image"], "a")
        with self.assertRaisesRegex(ValueError, "record 3 lacks"):
            write_text(jl, '{"image": "a"}\n\n{"n": 2}\n')
            read_records(jl, ("image",))
        with self.assertRaisesRegex(ValueError, "not valid JSON"):
            write_text(jl, "{oops\n")
            read_records(jl)
        with self.assertRaisesRegex(ValueError, "expected a .csv"):
            read_records(write_text(os.path.join(self.dir, "r.txt"), "x"))

    @parameterized.expand([[[1, 2, 3]], [[1, 2, 3, -1]], [["a", 1, 2, 3]], ["1,2,3,4"], [[1, 2, float("nan"), 3]]])
    def test_bad_box(self, box):
        with self.assertRaises(ValueError):
            parse_box(box, "here")

    def test_index_files_and_missing(self):
        touch(os.path.join(self.dir, "d1", "x.dcm"))
        touch(os.path.join(self.dir, "d2", "sub", "y.DCM"))
        touch(os.path.join(self.dir, "d2", "x.dcm"))  # duplicate stem: first in walk order kept
        touch(os.path.join(self.dir, "d2", "z.txt"))
        index = index_files(self.dir, (".dcm",))
        self.assertEqual(sorted(index), ["x", "y"])
        self.assertTrue(index["x"].endswith(os.path.join("d1", "x.dcm")))
        with self.assertRaises(FileNotFoundError):
            index_files(os.path.join(self.dir, "none"), (".dcm",))
        skips = MissingFiles("r")
        self.assertFalse(skips.exists(os.path.join(self.dir, "none.png")))
        self.assertEqual(skips.counts, {"missing image files": 1})
        with self.assertRaisesRegex(FileNotFoundError, "none.png"):
            MissingFiles("r", strict=True).exists(os.path.join(self.dir, "none.png"))
        with self.assertRaises(TypeError):
            MissingFiles("r", strict=1)


if __name__ == "__main__":
    unittest.main()
