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

"""Tests of the CheXpert and ChestX-ray14 readers, on tiny tables in the published format."""

from __future__ import annotations

import os
import tempfile
import unittest

from parameterized import parameterized

from monai_afloc.data import (
    CHESTXRAY14_FINDINGS,
    CHEXPERT_FINDINGS,
    chestxray14_datalist,
    chexpert_datalist,
)
from tests.data.writers import touch, write_csv, write_text

CHEXPERT_HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS]
DATA_ENTRY_HEADER = [
    "Image Index",
    "Finding Labels",
    "Follow-up #",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
    "OriginalImage[Width",
    "Height]",
    "OriginalImagePixelSpacing[x",
    "y]",
    "",
]


class TestCheXpert(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        cells = ["1.0", "", "-1.0", "0.0"] + [""] * 10
        rows = [
            ["CheXpert-v1.0/train/patient00001/study1/view1_frontal.jpg", "Female", 68, "Frontal", "AP", *cells],
            ["CheXpert-v1.0/train/patient00001/study1/view2_lateral.jpg", "Female", 68, "Lateral", "", *cells],
            ["CheXpert-v1.0/train/patient00002/study1/view1_frontal.jpg", "Male", 87, "Frontal", "PA", *cells],
        ]
        self.csv = write_csv(os.path.join(self.root, "CheXpert-v1.0", "train.csv"), CHEXPERT_HEADER, rows)
        for r in rows[:2]:
            touch(os.path.join(self.root, r[0]))

    def tearDown(self):
        self.tmp.cleanup()

    @parameterized.expand([["zeros", 0.0], ["ones", 1.0], ["ignore", -1.0]])
    def test_uncertain(self, policy, value):
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = chexpert_datalist(self.csv, self.root, uncertain=policy)
        self.assertIn("1 missing image files", logs.output[0])
        self.assertEqual(len(data), 2)
        labels = data[0]["labels"]
        self.assertEqual(list(labels), list(CHEXPERT_FINDINGS))
        self.assertEqual(
            (
                labels["No Finding"],
                labels["Enlarged Cardiomediastinum"],
                labels["Cardiomegaly"],
                labels["Lung Opacity"],
            ),
            (1.0, 0.0, value, 0.0),
        )
        self.assertEqual(
            (data[0]["sex"], data[0]["age"], data[0]["view"], data[0]["projection"]), ("Female", "68", "Frontal", "AP")
        )

    def test_root_is_dataset_folder_and_frontal(self):
        data = chexpert_datalist(self.csv, os.path.join(self.root, "CheXpert-v1.0"), frontal_only=True)
        self.assertEqual(len(data), 1)
        self.assertEqual(
            data[0]["image"],
            os.path.join(self.root, "CheXpert-v1.0", "train", "patient00001", "study1", "view1_frontal.jpg"),
        )

    def test_errors(self):
        write_csv(self.csv, CHEXPERT_HEADER[:-1], [])
        with self.assertRaisesRegex(ValueError, r"\['Support Devices'\]"):
            chexpert_datalist(self.csv, self.root)
        write_csv(self.csv, CHEXPERT_HEADER, [["x.jpg", "", "", "Frontal", "", "yes"] + [""] * 13])
        with self.assertRaisesRegex(ValueError, "line 2, column 'No Finding'"):
            chexpert_datalist(self.csv, self.root)

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            chexpert_datalist(self.csv, self.root, uncertain="u-ones")
        with self.assertRaises(ValueError):
            chexpert_datalist(self.csv, self.root, blank=None)
        with self.assertRaises(TypeError):
            chexpert_datalist(self.csv, self.root, frontal_only=1)
        with self.assertRaises(FileNotFoundError):
            chexpert_datalist(self.csv, os.path.join(self.root, "none"))


class TestChestXray14(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        rows = [
            ["00000001_000.png", "Cardiomegaly", 0, 1, 58, "M", "PA", 2682, 2749, 0.143, 0.143, ""],
            ["00000001_001.png", "Cardiomegaly|Emphysema", 1, 1, 58, "M", "PA", 2894, 2729, 0.143, 0.143, ""],
            ["00000002_000.png", "No Finding", 0, 2, 81, "M", "AP", 2500, 2048, 0.171, 0.171, ""],
            ["00000003_000.png", "Hernia", 0, 3, 81, "F", "PA", 2582, 2991, 0.143, 0.143, ""],
        ]
        self.csv = write_csv(os.path.join(self.root, "Data_Entry_2017.csv"), DATA_ENTRY_HEADER, rows)
        for r in rows[:2]:
            touch(os.path.join(self.root, "images", r[0]))
        touch(os.path.join(self.root, "images_002", "images", rows[2][0]))
        self.split = write_text(os.path.join(self.root, "test_list.txt"), "00000001_001.png\n00000002_000.png\n")

    def tearDown(self):
        self.tmp.cleanup()

    def test_read(self):
        with self.assertLogs("monai_afloc.data.utils", "WARNING"):
            data = chestxray14_datalist(self.csv, os.path.join(self.root, "images"))
        self.assertEqual(len(data), 2)
        self.assertEqual(list(data[1]["labels"]), list(CHESTXRAY14_FINDINGS))
        self.assertEqual([k for k, v in data[1]["labels"].items() if v == 1.0], ["Cardiomegaly", "Emphysema"])
        self.assertEqual(
            (data[1]["patient_id"], data[1]["view"], data[1]["finding_labels"]), ("1", "PA", "Cardiomegaly|Emphysema")
        )

    def test_split_recursive(self):
        data = chestxray14_datalist(self.csv, self.root, split_file=self.split, recursive=True)
        self.assertEqual([os.path.basename(d["image"]) for d in data], ["00000001_001.png", "00000002_000.png"])
        self.assertEqual(sum(data[1]["labels"].values()), 0.0)  # No Finding

    def test_errors(self):
        write_csv(self.csv, DATA_ENTRY_HEADER, [["00000001_000.png", "Cardiomegaly|Infiltrate"] + [""] * 10])
        with self.assertRaisesRegex(ValueError, r"line 2: unknown finding\(s\) \['Infiltrate'\]"):
            chestxray14_datalist(self.csv, os.path.join(self.root, "images"))
        write_csv(self.csv, ["Image Index", "Labels"], [])
        with self.assertRaisesRegex(ValueError, r"\['Finding Labels'\]"):
            chestxray14_datalist(self.csv, os.path.join(self.root, "images"))

    def test_ill_arg(self):
        with self.assertRaisesRegex(FileNotFoundError, "split_file"):
            chestxray14_datalist(self.csv, self.root, split_file=os.path.join(self.root, "none.txt"))
        with self.assertRaises(TypeError):
            chestxray14_datalist(self.csv, self.root, recursive="yes")
        with self.assertRaises(TypeError):
            chestxray14_datalist(self.csv, self.root, strict="no")


if __name__ == "__main__":
    unittest.main()
