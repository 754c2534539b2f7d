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
"""Table readers: missing rows named, .tsv read with tabs, encodings, duplicated columns, boxes outside images."""

from __future__ import annotations

import json
import os
import tempfile
import unittest

import numpy as np
from PIL import Image

from monai_afloc.data import image_text_datalist, ms_cxr_datalist
from monai_afloc.data.utils import open_csv


class TestReaders(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name
        for name in ("a.png", "b.png"):
            Image.fromarray(np.zeros((32, 32), np.uint8)).save(os.path.join(self.tmp, name))

    def tearDown(self):
        self._tmp.cleanup()

    def _write(self, name: str, text: str, encoding: str = "utf-8") -> str:
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding=encoding, newline="") as f:
            f.write(text)
        return path

    def test_missing_images_are_named(self):
        rows = "".join(f"gone_{i}.png,report {i}\n" for i in range(8))
        csv_path = self._write("t.csv", "image,report\na.png,small effusion\n" + rows)
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = image_text_datalist(csv_path)
        self.assertEqual(len(data), 1)
        message = "\n".join(logs.output)
        self.assertIn("8 missing image files", message)
        for i in range(5):  # the first few are named
            self.assertIn(f"gone_{i}.png", message)
        self.assertNotIn("gone_7.png", message)

    def test_tsv_is_read_with_tabs(self):
        path = self._write("t.tsv", "image\treport\na.png\tsmall effusion, left base\n")
        data = image_text_datalist(path)
        self.assertEqual(data[0]["report"], "small effusion, left base")
        self.assertEqual(os.path.basename(data[0]["image"]), "a.png")

    def test_utf16_with_bom_is_read(self):
        path = self._write("t16.csv", "image,report\na.png,épanchement pleural\n", encoding="utf-16")
        self.assertEqual(image_text_datalist(path)[0]["report"], "épanchement pleural")

    def test_latin1_names_the_file(self):
        path = self._write("latin.csv", "image,report\na.png,épanchement pleural\n", encoding="latin-1")
        with self.assertRaisesRegex(ValueError, r"latin\.csv' is not UTF-8 text"):
            image_text_datalist(path)

    def test_duplicated_header_column_is_refused(self):
        path = self._write("dup.csv", "image,report,report\na.png,small effusion,\n")
        with self.assertRaisesRegex(ValueError, r"\['report'\] more than once"):
            image_text_datalist(path)

    def test_blank_header_columns_still_allowed(self):  # NIH's real header ends with ",,,"
        path = self._write("nih.csv", "Image Index,Finding Label,Bbox [x,y,w,h],,,\nx.png,Mass,1,2,3,4,,,\n")
        with open_csv(path, ("Image Index", "x", "h"), {"Bbox [x": "x", "h]": "h"}) as (rows, _):
            self.assertEqual(next(rows)["h"], "4")

    def _ms_cxr(self, boxes) -> str:
        coco = {
            "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 32}],
            "categories": [{"id": 1, "name": "Pneumonia"}],
            "annotations": [
                {"image_id": 1, "bbox": b, "category_id": 1, "label_text": "right lower opacity"} for b in boxes
            ],
        }
        return self._write("ms_cxr.json", json.dumps(coco))

    def test_boxes_partly_outside_are_clipped_and_reported(self):
        path = self._ms_cxr([[20, 24, 20, 4], [2, 2, 4, 4]])
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = ms_cxr_datalist(path, self.tmp)
        self.assertEqual(data[0]["boxes"], [[20.0, 24.0, 12.0, 4.0], [2.0, 2.0, 4.0, 4.0]])
        self.assertIn("1 boxes partly outside the image", "\n".join(logs.output))

    def test_box_entirely_outside_is_refused(self):
        with self.assertRaisesRegex(ValueError, r"lies outside the 32 x 32 image"):
            ms_cxr_datalist(self._ms_cxr([[40, 2, 5, 5]]), self.tmp)


if __name__ == "__main__":
    unittest.main()
