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
"""Tests for the synthetic data writers: MIMIC-CXR-JPG-like CSV split, MS-CXR-like COCO split, DX DICOM."""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import unittest

import numpy as np
from parameterized import parameterized

from monai_afloc.apps.synthetic import (
    ANNOTATED_START_INDEX,
    ANNOTATED_VAL_START_INDEX,
    SYNTHETIC_FINDINGS,
    SyntheticCXRGenerator,
    make_synthetic_dataset,
    write_annotated_split,
    write_dicom,
    write_pretraining_split,
)
from tests.helpers import SkipIfNoModule

PATH_RE = re.compile(r"^files/p(\d\d)/p(\d{8})/s(\d{8})/([0-9a-f]{8}(-[0-9a-f]{8}){4})\.(png|jpg)$")


@SkipIfNoModule("PIL")
class TestPretrainingSplit(unittest.TestCase):
    @parameterized.expand([["png"], ["jpg"]])
    def test_layout_and_read_back(self, fmt):
        from PIL import Image

        gen = SyntheticCXRGenerator(image_size=64, seed=4)
        with tempfile.TemporaryDirectory() as tmp:
            csv_path = write_pretraining_split(tmp, 10, gen, fmt=fmt, splits=(0.6, 0.2, 0.2))
            self.assertEqual(os.path.basename(csv_path), "synthetic-cxr-metadata.csv")
            with open(csv_path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            self.assertEqual(len(rows), 10)
            for col in ("path", "subject_id", "study_id", "dicom_id", "view", "split", "report", *SYNTHETIC_FINDINGS):
                self.assertIn(col, rows[0])
            self.assertEqual([r["split"] for r in rows].count("train"), 6)
            self.assertEqual([r["split"] for r in rows].count("validate"), 2)
            self.assertEqual([r["split"] for r in rows].count("test"), 2)
            self.assertEqual(len({r["subject_id"] for r in rows}), 10)
            for k, row in enumerate(rows):
                m = PATH_RE.match(row["path"])
                self.assertIsNotNone(m, row["path"])
                self.assertEqual(m.group(2), row["subject_id"])
                self.assertEqual(m.group(1), row["subject_id"][:2])
                self.assertEqual(m.group(3), row["study_id"])
                self.assertEqual(m.group(4), row["dicom_id"])
                self.assertIn(row["view"], ("PA", "AP"))
                case = gen.generate_case(k)
                self.assertEqual(row["report"], case["report"])
                self.assertEqual({n: int(row[n]) for n in SYNTHETIC_FINDINGS}, case["labels"])
                with Image.open(os.path.join(tmp, row["path"])) as im:
                    self.assertEqual(im.mode, "L")
                    arr = np.asarray(im)
                self.assertEqual(arr.shape, (64, 64))
                if fmt == "png":
                    np.testing.assert_array_equal(arr, case["image"])
                else:
                    self.assertLess(np.abs(arr.astype(int) - case["image"]).mean(), 4.0)

    @parameterized.expand(
        [
            [{"n_cases": 0}, ValueError],
            [{"fmt": "bmp"}, ValueError],
            [{"splits": (0.5, 0.5)}, ValueError],
            [{"splits": (0.5, 0.6, 0.1)}, ValueError],
            [{"splits": (1.2, -0.1, -0.1)}, ValueError],
            [{"generator": "gen"}, TypeError],
            [{"start_index": -3}, ValueError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        args = {"n_cases": 2, "generator": SyntheticCXRGenerator(image_size=64)}
        args.update(kwargs)
        with tempfile.TemporaryDirectory() as tmp, self.assertRaises(error):
            write_pretraining_split(tmp, **args)


@SkipIfNoModule("PIL")
class TestAnnotatedSplit(unittest.TestCase):
    def test_coco_and_masks(self):
        from PIL import Image

        gen = SyntheticCXRGenerator(image_size=80, seed=2)
        with tempfile.TemporaryDirectory() as tmp:
            json_path = write_annotated_split(tmp, 6, gen, start_index=100)
            with open(json_path, encoding="utf-8") as fh:
                coco = json.load(fh)
            self.assertEqual(len(coco["images"]), 6)
            self.assertEqual([c["name"] for c in coco["categories"]], list(SYNTHETIC_FINDINGS))
            self.assertEqual([c["id"] for c in coco["categories"]], list(range(1, 8)))
            for c in coco["categories"]:
                self.assertIn("supercategory", c)
            images = {im["id"]: im for im in coco["images"]}
            with_ann = {a["image_id"] for a in coco["annotations"]}
            self.assertEqual(with_ann, set(images))  # skip_normal: every image holds a finding
            for im in coco["images"]:
                for key in ("id", "file_name", "path", "width", "height"):
                    self.assertIn(key, im)
                self.assertEqual(os.path.basename(im["path"]), im["file_name"])
                self.assertGreaterEqual(im["case_index"], 100)
                with Image.open(os.path.join(tmp, im["path"])) as pil:
                    np.testing.assert_array_equal(np.asarray(pil), gen.generate_case(im["case_index"])["image"])
            for ann in coco["annotations"]:
                im = images[ann["image_id"]]
                x, y, w, h = ann["bbox"]
                self.assertTrue(0 <= x and 0 <= y and w > 0 and h > 0)
                self.assertLessEqual(x + w, im["width"])
                self.assertLessEqual(y + h, im["height"])
                self.assertEqual(ann["area"], w * h)
                self.assertEqual(ann["iscrowd"], 0)
                self.assertIn(ann["label_text"].lower(), im["report"].lower())
                self.assertIn(ann["label_text_location_free"], ann["label_text"])
                case = gen.generate_case(im["case_index"])
                finding = [f for f in case["findings"] if SYNTHETIC_FINDINGS.index(f["name"]) + 1 == ann["category_id"]]
                self.assertEqual(len(finding), 1)
                self.assertIn(ann["bbox"], finding[0]["boxes"])
                with Image.open(os.path.join(tmp, ann["mask_path"])) as pil:
                    mask = np.asarray(pil) > 127
                self.assertEqual(mask.shape, (im["height"], im["width"]))
                self.assertEqual(int(mask.sum()), ann["mask_area"])
                self.assertGreater(ann["mask_area"], 0)
                self.assertFalse((mask & ~finding[0]["mask"]).any())
                outside = mask.copy()
                outside[y : y + h, x : x + w] = False
                self.assertFalse(outside.any())

    def test_with_dicom(self):
        import pydicom

        gen = SyntheticCXRGenerator(image_size=64, seed=2)
        with tempfile.TemporaryDirectory() as tmp:
            with open(write_annotated_split(tmp, 2, gen, with_dicom=True, skip_normal=False), encoding="utf-8") as fh:
                coco = json.load(fh)
            for im in coco["images"]:
                ds = pydicom.dcmread(os.path.join(tmp, im["dicom_path"]))
                np.testing.assert_array_equal(ds.pixel_array, gen.generate_case(im["case_index"])["image"])

    def test_stop_index(self):
        gen = SyntheticCXRGenerator(image_size=64, seed=2)
        with tempfile.TemporaryDirectory() as tmp:
            with open(write_annotated_split(tmp, 3, gen, start_index=100, stop_index=200), encoding="utf-8") as fh:
                indices = [im["case_index"] for im in json.load(fh)["images"]]
            self.assertTrue(all(100 <= i < 200 for i in indices))
            with self.assertRaisesRegex(RuntimeError, "found only"):  # too few cases below the bound
                write_annotated_split(tmp, 3, gen, start_index=100, stop_index=102, skip_normal=False)

    @parameterized.expand([[{"n_cases": 0}, ValueError], [{"fmt": "tif"}, ValueError], [{"skip_normal": 1}, TypeError],
                           [{"start_index": 5, "stop_index": 5}, ValueError], [{"stop_index": 1.5}, TypeError]])
    def test_ill_arg(self, kwargs, error):
        args = {"n_cases": 1, "generator": SyntheticCXRGenerator(image_size=64)}
        args.update(kwargs)
        with tempfile.TemporaryDirectory() as tmp, self.assertRaises(error):
            write_annotated_split(tmp, **args)

    def test_only_normal_generator(self):
        with tempfile.TemporaryDirectory() as tmp, self.assertRaises(ValueError):
            write_annotated_split(tmp, 1, SyntheticCXRGenerator(image_size=64, normal_fraction=1.0))


class TestWriteDicom(unittest.TestCase):
    def setUp(self):
        self.image = SyntheticCXRGenerator(image_size=(72, 64), seed=0).generate_case(1)["image"]

    @parameterized.expand([[8, "MONOCHROME2"], [12, "MONOCHROME2"], [16, "MONOCHROME2"], [16, "MONOCHROME1"]])
    def test_read_back(self, bits, photometric):
        import pydicom

        with tempfile.TemporaryDirectory() as tmp:
            path = write_dicom(os.path.join(tmp, "sub", "x.dcm"), self.image, pixel_spacing=(0.5, 0.25),
                               bits_stored=bits, photometric_interpretation=photometric, uid_entropy=(0, 1))
            ds = pydicom.dcmread(path)
            self.assertEqual(ds.Modality, "DX")
            self.assertEqual(ds.SOPClassUID, "1.2.840.10008.5.1.4.1.1.1.1")
            self.assertEqual(ds.file_meta.MediaStorageSOPInstanceUID, ds.SOPInstanceUID)
            self.assertEqual(ds.file_meta.TransferSyntaxUID, pydicom.uid.ExplicitVRLittleEndian)
            self.assertEqual([float(v) for v in ds.PixelSpacing], [0.5, 0.25])
            self.assertEqual([float(v) for v in ds.ImagerPixelSpacing], [0.5, 0.25])
            self.assertEqual(ds.PhotometricInterpretation, photometric)
            self.assertEqual(ds.BitsStored, bits)
            self.assertEqual(ds.BitsAllocated, 8 if bits == 8 else 16)
            self.assertEqual((ds.Rows, ds.Columns), (72, 64))
            pixels = ds.pixel_array.astype(np.int64)
            max_val = 2**bits - 1
            if photometric == "MONOCHROME1":
                pixels = max_val - pixels
            expected = np.round(self.image.astype(np.float64) * max_val / 255.0)
            np.testing.assert_array_equal(pixels, expected)
            uid = ds.SOPInstanceUID
            path2 = write_dicom(os.path.join(tmp, "y.dcm"), self.image, uid_entropy=(0, 1))
            self.assertEqual(pydicom.dcmread(path2).SOPInstanceUID, uid)

    @parameterized.expand(
        [
            [{"image": np.zeros((4, 4, 3), np.uint8)}, ValueError],
            [{"image": np.zeros((4, 4), np.float32)}, ValueError],
            [{"bits_stored": 9}, ValueError],
            [{"pixel_spacing": (0.2, -1.0)}, ValueError],
            [{"pixel_spacing": 0.2}, ValueError],
            [{"view": "LAT"}, ValueError],
            [{"photometric_interpretation": "RGB"}, ValueError],
            [{"image": np.full((4, 4), 5000, np.uint16), "bits_stored": 12}, ValueError],
            [{"image": np.zeros((4, 4), np.uint16), "bits_stored": 8}, ValueError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        args = {"image": self.image}
        args.update(kwargs)
        with tempfile.TemporaryDirectory() as tmp, self.assertRaises(error):
            write_dicom(os.path.join(tmp, "x.dcm"), **args)


@SkipIfNoModule("PIL")
class TestMakeSyntheticDataset(unittest.TestCase):
    def test_make(self):
        with tempfile.TemporaryDirectory() as tmp:
            paths = make_synthetic_dataset(tmp, n_train=4, n_val=2, n_test_annotated=3, image_size=64, seed=7)
            for key in ("root", "pretraining_csv", "annotated_json", "info_json"):
                self.assertTrue(os.path.exists(paths[key]), key)
            with open(paths["pretraining_csv"], newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            self.assertEqual([r["split"] for r in rows], ["train"] * 4 + ["validate"] * 2)
            with open(paths["annotated_json"], encoding="utf-8") as fh:
                coco = json.load(fh)
            self.assertEqual(len(coco["images"]), 3)
            pre = {int(r["case_index"]) for r in rows}
            ann = {im["case_index"] for im in coco["images"]}
            self.assertFalse(pre & ann)
            self.assertLess(max(pre), ANNOTATED_START_INDEX)
            self.assertGreaterEqual(min(ann), ANNOTATED_START_INDEX)
            self.assertFalse({r["dicom_id"] for r in rows} & {im["dicom_id"] for im in coco["images"]})
            with open(paths["info_json"], encoding="utf-8") as fh:
                info = json.load(fh)
            self.assertEqual(info["generator"]["seed"], 7)
            # no annotated validation split by default: the layout, the paths and the info of earlier versions
            self.assertEqual(set(paths), {"root", "pretraining_csv", "annotated_json", "info_json"})
            self.assertEqual(list(info), ["generator", "pretraining", "annotated", "findings", "paths"])
            self.assertEqual(sorted(os.listdir(tmp)), ["annotated", "pretraining", "synthetic-cxr-info.json"])

    def test_annotated_val_split(self):
        from monai_afloc.apps.evaluation import read_synthetic_annotations

        with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as ref:
            paths = make_synthetic_dataset(tmp, n_train=4, n_val=2, n_test_annotated=3, image_size=64, seed=7,
                                           n_val_annotated=2)
            same = make_synthetic_dataset(ref, n_train=4, n_val=2, n_test_annotated=3, image_size=64, seed=7)
            self.assertEqual(paths["annotated_val_json"],
                             os.path.join(tmp, "annotated_val", "synthetic-cxr-annotations.json"))
            with open(paths["annotated_val_json"], encoding="utf-8") as fh:
                val = json.load(fh)
            with open(paths["annotated_json"], encoding="utf-8") as fh:
                test = json.load(fh)
            with open(same["annotated_json"], encoding="utf-8") as fh:
                self.assertEqual(json.load(fh), test)  # the test split does not move
            with open(paths["pretraining_csv"], newline="", encoding="utf-8") as fh:
                pre = {int(r["case_index"]) for r in csv.DictReader(fh)}
            val_idx = {im["case_index"] for im in val["images"]}
            test_idx = {im["case_index"] for im in test["images"]}
            self.assertEqual(len(val_idx), 2)
            self.assertGreaterEqual(min(val_idx), ANNOTATED_VAL_START_INDEX)
            self.assertLess(max(test_idx), ANNOTATED_VAL_START_INDEX)
            self.assertFalse(val_idx & (test_idx | pre))
            self.assertEqual(set(val), set(test))  # the same COCO format
            self.assertEqual(val["categories"], test["categories"])
            items = read_synthetic_annotations(paths["annotated_val_json"])
            self.assertTrue(items and all(it["mask"].any() for it in items))
            with open(paths["info_json"], encoding="utf-8") as fh:
                info = json.load(fh)
            self.assertEqual(info["annotated_val"], {"start_index": ANNOTATED_VAL_START_INDEX, "n_images": 2})
            self.assertEqual(info["paths"]["annotated_val_json"],
                             os.path.join("annotated_val", "synthetic-cxr-annotations.json"))

    @parameterized.expand([[{"n_train": 0}, ValueError], [{"n_val": -1}, ValueError],
                           [{"n_train": ANNOTATED_START_INDEX + 1}, ValueError], [{"image_size": 8}, ValueError],
                           [{"n_val_annotated": -1}, ValueError], [{"n_val_annotated": 1.0}, TypeError]])
    def test_ill_arg(self, kwargs, error):
        args = {"n_train": 1, "n_val": 0, "n_test_annotated": 1, "image_size": 64}
        args.update(kwargs)
        with tempfile.TemporaryDirectory() as tmp, self.assertRaises(error):
            make_synthetic_dataset(tmp, **args)


if __name__ == "__main__":
    unittest.main()
