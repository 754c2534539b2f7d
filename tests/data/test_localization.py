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

"""Tests of the localization readers (MS-CXR, RSNA, SIIM, CheXlocalize, ChestX-ray8, COVID Rural)."""

from __future__ import annotations

import json
import os
import tempfile
import unittest

import numpy as np
from parameterized import parameterized

from monai_afloc.data import (
    DecodeRLEMaskd,
    chestxray8_bbox_datalist,
    chexlocalize_datalist,
    chexlocalize_image_path,
    coco_rle_encode,
    covid_rural_datalist,
    ms_cxr_datalist,
    rsna_pneumonia_datalist,
    siim_pneumothorax_datalist,
)
from tests.data.writers import (
    siim_mask2rle,
    touch,
    write_csv,
    write_dicom,
    write_png,
    write_text,
)
from tests.helpers import SkipIfNoModule


class _TmpDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)


def _ms_cxr_json():
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 2544, "height": 3056, "path": "files/p10/p10000032/s1/a.jpg"},
        {"id": 2, "file_name": "b.jpg", "width": 3056, "height": 2544, "path": "files/p11/p11000001/s2/b.jpg"},
        {"id": 3, "file_name": "c.jpg", "width": 2000, "height": 2000, "path": "files/p12/p12000001/s3/c.jpg"},
    ]
    cats = [{"id": 1, "name": "Pneumonia", "supercategory": "disease"}, {"id": 2, "name": "Pneumothorax"}]

    def ann(i, image_id, cat, box, text):
        return {
            "id": i,
            "image_id": image_id,
            "category_id": cat,
            "bbox": box,
            "area": box[2] * box[3],
            "iscrowd": 0,
            "label_text": text,
        }

    anns = [
        ann(1, 1, 1, [10, 20, 30, 40], "Left lower lobe opacity"),
        ann(2, 2, 2, [5, 5, 50, 60], "Right apical pneumothorax"),
        ann(3, 1, 1, [100, 120, 30.5, 40], "LEFT lower lobe opacity"),  # same phrase: merged
        ann(4, 1, 1, [200, 220, 10, 10], "Patchy opacity at the right base"),  # new phrase, same image
        ann(5, 3, 1, [1, 1, 1, 1], "opacity"),  # image missing on disk
    ]
    return {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": cats}


class TestMSCXR(_TmpDir):
    def setUp(self):
        super().setUp()
        self.json = self.path("MS_CXR_Local_Alignment_v1.0.0.json")
        with open(self.json, "w") as f:
            json.dump(_ms_cxr_json(), f)
        for p in ("files/p10/p10000032/s1/a.jpg", "files/p11/p11000001/s2/b.jpg"):
            touch(self.path("mimic", p))

    def test_merged(self):
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = ms_cxr_datalist(self.json, self.path("mimic"))
        self.assertIn("1 missing image files", logs.output[0])
        # image order of first annotation, then phrase order within the image (the reference's order)
        self.assertEqual(
            [d["prompt"] for d in data],
            ["left lower lobe opacity", "patchy opacity at the right base", "right apical pneumothorax"],
        )
        self.assertEqual(data[0]["boxes"], [[10.0, 20.0, 30.0, 40.0], [100.0, 120.0, 30.5, 40.0]])
        self.assertEqual(data[0]["image"], self.path("mimic", "files/p10/p10000032/s1/a.jpg"))
        self.assertEqual((data[0]["width"], data[0]["height"], data[0]["category"]), (2544, 3056, "Pneumonia"))
        self.assertEqual(data[2]["category"], "Pneumothorax")
        self.assertEqual(
            ms_cxr_datalist(self.json, self.path("mimic"), lowercase=False)[0]["prompt"], "Left lower lobe opacity"
        )

    def test_strict(self):
        with self.assertRaisesRegex(FileNotFoundError, "c.jpg"):
            ms_cxr_datalist(self.json, self.path("mimic"), strict=True)

    @parameterized.expand([["annotations"], ["label_text"], ["category"]])
    def test_bad_json(self, what):
        coco = _ms_cxr_json()
        if what == "annotations":
            del coco["annotations"]
        elif what == "label_text":
            del coco["annotations"][0]["label_text"]
        else:
            coco["annotations"][0]["category_id"] = 9
        with open(self.json, "w") as f:
            json.dump(coco, f)
        with self.assertRaisesRegex(ValueError, what if what != "category" else "category_id 9"):
            ms_cxr_datalist(self.json, self.path("mimic"))

    def test_ill_arg(self):
        with self.assertRaisesRegex(FileNotFoundError, "MS-CXR json not found"):
            ms_cxr_datalist(self.path("none.json"), self.path("mimic"))
        with self.assertRaises(FileNotFoundError):
            ms_cxr_datalist(self.json, self.path("nowhere"))
        with self.assertRaises(TypeError):
            ms_cxr_datalist(self.json, self.path("mimic"), lowercase="no")


class TestRSNA(_TmpDir):
    HEADER = ["patientId", "x", "y", "width", "height", "Target"]

    def setUp(self):
        super().setUp()
        self.csv = write_csv(
            self.path("stage_2_train_labels.csv"),
            self.HEADER,
            [
                ["0004cfab-14fd-4e49-80ba-63a80b6bddd6", "", "", "", "", 0],
                ["00436515-870c-4b36-a041-de91049b9ab4", 264.0, 152.0, 213.0, 379.0, 1],
                ["00436515-870c-4b36-a041-de91049b9ab4", 562.0, 152.0, 256.0, 453.0, 1],
                ["00704310-78a8-4b38-8475-49f4573b2dbb", 323.0, 577.0, 160.0, 104.0, 1],
                ["missing-on-disk", "", "", "", "", 0],
            ],
        )
        for pid in (
            "0004cfab-14fd-4e49-80ba-63a80b6bddd6",
            "00436515-870c-4b36-a041-de91049b9ab4",
            "00704310-78a8-4b38-8475-49f4573b2dbb",
        ):
            write_dicom(self.path("stage_2_train_images", pid + ".dcm"), 8, 8)

    def test_read(self):
        with self.assertLogs("monai_afloc.data.utils", "WARNING"):
            data = rsna_pneumonia_datalist(self.csv, self.path("stage_2_train_images"))
        self.assertEqual([d["label"] for d in data], [0, 1, 1])
        self.assertEqual(data[0]["boxes"], [])  # Target 0
        self.assertEqual(data[1]["boxes"], [[264.0, 152.0, 213.0, 379.0], [562.0, 152.0, 256.0, 453.0]])
        self.assertEqual((data[1]["category"], data[1]["prompt"]), ("Pneumonia", "Findings suggesting Pneumonia."))
        self.assertTrue(data[1]["image"].endswith("00436515-870c-4b36-a041-de91049b9ab4.dcm"))
        pos = rsna_pneumonia_datalist(self.csv, self.path("stage_2_train_images"), positive_only=True)
        self.assertEqual(len(pos), 2)

    @parameterized.expand(
        [
            [["p", 1, 2, 3, 4, 2], "Target 0 or 1"],
            [["p", 1, 2, "", 4, 1], "needs x, y, width, height"],
            [["p", 1, 2, 3, 4, 0], "must have empty"],
        ]
    )
    def test_bad_rows(self, row, msg):
        write_csv(self.csv, self.HEADER, [row])
        with self.assertRaisesRegex(ValueError, msg):
            rsna_pneumonia_datalist(self.csv, self.path("stage_2_train_images"))

    def test_mixed_targets_and_missing_column(self):
        write_csv(self.csv, self.HEADER, [["p", "", "", "", "", 0], ["p", 1, 2, 3, 4, 1]])
        with self.assertRaisesRegex(ValueError, "both Target 0 and Target 1"):
            rsna_pneumonia_datalist(self.csv, self.path("stage_2_train_images"))
        write_csv(self.csv, self.HEADER[:-1], [["p", 1, 2, 3, 4]])
        with self.assertRaisesRegex(ValueError, r"\['Target'\]"):
            rsna_pneumonia_datalist(self.csv, self.path("stage_2_train_images"))

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            rsna_pneumonia_datalist(self.csv, self.path("stage_2_train_images"), image_suffix="dcm")
        with self.assertRaises(TypeError):
            rsna_pneumonia_datalist(self.csv, self.path("stage_2_train_images"), positive_only=None)
        with self.assertRaises(ValueError):
            rsna_pneumonia_datalist(self.csv, self.path("stage_2_train_images"), prompt_template="no field")
        with self.assertRaisesRegex(FileNotFoundError, "stage_2_train_labels.csv.gz"):
            rsna_pneumonia_datalist(self.path("stage_2_train_labels.csv.gz.csv"), self.path("stage_2_train_images"))


class TestSIIM(_TmpDir):
    def setUp(self):
        super().setUp()
        h, w = 6, 5  # non-square: checks the column-major convention
        self.m1 = np.zeros((h, w), bool)
        self.m1[1:3, 0:2] = True
        self.m2 = np.zeros((h, w), bool)
        self.m2[4:6, 3:5] = True  # touches the last pixel
        self.ids = [
            "1.2.276.0.7230010.3.1.4.8323329.5597.1517875188.959090",
            "1.2.276.0.7230010.3.1.4.8323329.12515.1517875239.501137",
            "1.2.276.0.7230010.3.1.4.8323329.missing",
        ]
        lines = [
            "ImageId, EncodedPixels",  # the published header, with its space
            f"{self.ids[0]}, -1",
            f"{self.ids[1]}, {siim_mask2rle(self.m1)}",
            f"{self.ids[1]}, {siim_mask2rle(self.m2)}",
            f"{self.ids[2]}, -1",
        ]
        self.csv = write_text(self.path("train-rle.csv"), "\n".join(lines) + "\n")
        # the published tree: dicom-images-train/<study uid>/<series uid>/<ImageId>.dcm
        write_dicom(self.path("dicom-images-train", "s1", "se1", self.ids[0] + ".dcm"), h, w)
        write_dicom(self.path("dicom-images-train", "s2", "se2", self.ids[1] + ".dcm"), h, w, "MONOCHROME1")

    def test_read(self):
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = siim_pneumothorax_datalist(self.csv, self.path("dicom-images-train"))
        self.assertIn("1 missing image files", logs.output[0])
        self.assertEqual([d["label"] for d in data], [0, 1])
        self.assertEqual(data[0]["mask"].dtype, np.bool_)
        np.testing.assert_array_equal(data[0]["mask"], np.zeros((6, 5), bool))  # empty RLE
        np.testing.assert_array_equal(data[1]["mask"], self.m1 | self.m2)  # rows united
        self.assertEqual(data[1]["image"], self.path("dicom-images-train", "s2", "se2", self.ids[1] + ".dcm"))
        self.assertEqual(
            (data[1]["category"], data[1]["prompt"]), ("Pneumothorax", "Findings suggesting Pneumothorax.")
        )

    def test_lazy_masks_and_plain_header(self):
        write_text(self.csv, f"ImageId,EncodedPixels\n{self.ids[1]},{siim_mask2rle(self.m1)}\n")
        data = siim_pneumothorax_datalist(
            self.csv, self.path("dicom-images-train"), decode_masks=False, positive_only=True
        )
        self.assertEqual(data[0]["mask"], {"size": [6, 5], "rle": [siim_mask2rle(self.m1)]})
        np.testing.assert_array_equal(DecodeRLEMaskd("mask")(data[0])["mask"], self.m1)

    def test_errors(self):
        with self.assertRaisesRegex(FileNotFoundError, "missing.dcm"):
            siim_pneumothorax_datalist(self.csv, self.path("dicom-images-train"), strict=True)
        write_text(self.csv, f"ImageId, EncodedPixels\n{self.ids[0]}, 20 20\n")
        with self.assertRaisesRegex(ValueError, "past the 6x5 mask"):
            siim_pneumothorax_datalist(self.csv, self.path("dicom-images-train"))
        write_text(self.csv, f"ImageId, EncodedPixels\n{self.ids[0]}, 1 2 x\n")
        with self.assertRaisesRegex(ValueError, "line 2: malformed"):
            siim_pneumothorax_datalist(self.csv, self.path("dicom-images-train"))
        write_text(self.csv, f"ImageId, Pixels\n{self.ids[0]}, -1\n")
        with self.assertRaisesRegex(ValueError, r"\['EncodedPixels'\]"):
            siim_pneumothorax_datalist(self.csv, self.path("dicom-images-train"))

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            siim_pneumothorax_datalist(self.csv, self.path("dicom-images-train"), decode_masks=1)
        with self.assertRaises(FileNotFoundError):
            siim_pneumothorax_datalist(self.csv, self.path("nowhere"))
        with self.assertRaises(TypeError):
            siim_pneumothorax_datalist(None, self.path("dicom-images-train"))


class TestCheXlocalize(_TmpDir):
    def setUp(self):
        super().setUp()
        self.pos = np.zeros((12, 10), bool)
        self.pos[3:9, 2:5] = True
        empty = np.zeros((12, 10), bool)
        self.gt = {
            "patient64541_study1_view1_frontal": {
                "Airspace Opacity": coco_rle_encode(self.pos),
                "Cardiomegaly": coco_rle_encode(empty),
            },
            "patient64542_study2_view1_frontal": {"Edema": coco_rle_encode(self.pos)},  # image missing
        }
        self.json = self.path("gt_segmentations_val.json")
        with open(self.json, "w") as f:
            json.dump(self.gt, f)
        touch(self.path("val", "patient64541", "study1", "view1_frontal.jpg"))

    def test_read(self):
        with self.assertLogs("monai_afloc.data.utils", "WARNING"):
            data = chexlocalize_datalist(self.json, self.path("val"))
        self.assertEqual([(d["category"], d["label"]) for d in data], [("Airspace Opacity", 1), ("Cardiomegaly", 0)])
        self.assertEqual(data[0]["image"], self.path("val", "patient64541", "study1", "view1_frontal.jpg"))
        np.testing.assert_array_equal(data[0]["mask"], self.pos)
        self.assertFalse(data[1]["mask"].any())
        self.assertEqual(
            (data[0]["height"], data[0]["width"], data[0]["prompt"]), (12, 10, "Findings suggesting Airspace Opacity.")
        )
        lazy = chexlocalize_datalist(self.json, self.path("val"), positive_only=True, decode_masks=False)
        self.assertEqual(len(lazy), 1)
        np.testing.assert_array_equal(DecodeRLEMaskd("mask")(lazy[0])["mask"], self.pos)

    @SkipIfNoModule("pycocotools")
    def test_pycocotools_written(self):
        from pycocotools import mask as mask_utils

        rle = mask_utils.encode(np.asfortranarray(self.pos.astype(np.uint8)))
        gt = {"patient64541_study1_view1_frontal": {"Edema": {"size": rle["size"], "counts": rle["counts"].decode()}}}
        with open(self.json, "w") as f:
            json.dump(gt, f)
        np.testing.assert_array_equal(chexlocalize_datalist(self.json, self.path("val"))[0]["mask"], self.pos)

    @parameterized.expand(
        [
            ["patient64541_study1_view1_frontal", os.path.join("r", "patient64541", "study1", "view1_frontal.jpg")],
            ["patient1_study12_view2_lateral", os.path.join("r", "patient1", "study12", "view2_lateral.jpg")],
        ]
    )
    def test_image_path(self, cxr_id, expected):
        self.assertEqual(chexlocalize_image_path("r", cxr_id), expected)

    def test_errors(self):
        for bad in ("patient1_study1", "patient1/study1/view1_frontal", None):
            with self.assertRaisesRegex(ValueError, "cxr_id"):
                chexlocalize_image_path("r", bad)
        self.gt["patient64541_study1_view1_frontal"]["Edema"] = {"size": [12, 10]}
        with open(self.json, "w") as f:
            json.dump(self.gt, f)
        with self.assertRaisesRegex(ValueError, r"\['counts'\]"):
            chexlocalize_datalist(self.json, self.path("val"))
        self.gt["patient64541_study1_view1_frontal"]["Edema"] = {"size": [12, 11], "counts": "0"}
        with open(self.json, "w") as f:
            json.dump(self.gt, f)
        with self.assertRaisesRegex(ValueError, "Edema.*add up"):
            chexlocalize_datalist(self.json, self.path("val"))

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            chexlocalize_datalist(self.json, self.path("val"), positive_only="yes")
        with self.assertRaises(FileNotFoundError):
            chexlocalize_datalist(self.path("none.json"), self.path("val"))


class TestChestXray8Boxes(_TmpDir):
    # the published file: header "Bbox [x,y,w,h]" split by the comma, then three empty columns
    TEXT = (
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00013118_008.png,Atelectasis,225.084745762712,547.019216763771,86.7796610169491,79.1864406779661,,,\n"
        "00014716_007.png,Atelectasis,686.101694915254,131.543713930445,185.491525423729,313.491525423729,,,\n"
        "00014716_007.png,Atelectasis,20,30,40,50,,,\n"
        "00014716_007.png,Infiltrate,300.5,400,60,70,,,\n"
        "00099999_000.png,Mass,1,2,3,4,,,\n"
    )

    def setUp(self):
        super().setUp()
        self.csv = write_text(self.path("BBox_List_2017.csv"), self.TEXT)
        touch(self.path("images", "00013118_008.png"))
        touch(self.path("images_001", "images", "00014716_007.png"))

    def test_read(self):
        with self.assertLogs("monai_afloc.data.utils", "WARNING"):
            data = chestxray8_bbox_datalist(self.csv, self.path("images"))
        self.assertEqual(len(data), 1)  # the others are not in "images"
        data = chestxray8_bbox_datalist(self.csv, self.dir, recursive=True)
        self.assertEqual(
            [(os.path.basename(d["image"]), d["category"]) for d in data],
            [
                ("00013118_008.png", "Atelectasis"),
                ("00014716_007.png", "Atelectasis"),
                ("00014716_007.png", "Infiltrate"),
            ],
        )
        self.assertEqual(
            data[1]["boxes"],
            [[686.101694915254, 131.543713930445, 185.491525423729, 313.491525423729], [20.0, 30.0, 40.0, 50.0]],
        )
        self.assertEqual((data[2]["prompt"], data[2]["label"]), ("Findings suggesting Infiltrate.", 1))

    def test_plain_header_and_missing_column(self):
        write_csv(
            self.csv, ["Image Index", "Finding Label", "x", "y", "w", "h"], [["00013118_008.png", "Mass", 1, 2, 3, 4]]
        )
        self.assertEqual(chestxray8_bbox_datalist(self.csv, self.path("images"))[0]["boxes"], [[1.0, 2.0, 3.0, 4.0]])
        write_csv(self.csv, ["Image Index", "x", "y", "w", "h"], [["00013118_008.png", 1, 2, 3, 4]])
        with self.assertRaisesRegex(ValueError, r"\['Finding Label'\]"):
            chestxray8_bbox_datalist(self.csv, self.path("images"))

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            chestxray8_bbox_datalist(self.csv, self.path("images"), recursive="yes")
        write_text(self.csv, "Image Index,Finding Label,Bbox [x,y,w,h],,,\n00013118_008.png,Mass,1,2,,4,,,\n")
        with self.assertRaisesRegex(ValueError, "line 2"):
            chestxray8_bbox_datalist(self.csv, self.path("images"))


class TestCovidRural(_TmpDir):
    def setUp(self):
        super().setUp()
        mask = np.zeros((8, 6), np.uint8)
        mask[2:5, 1:3] = 255
        for name in ("case1", "case2", "case3"):
            touch(self.path("covid_rural_annot", "jpgs", name + ".jpg"))
        write_png(self.path("covid_rural_annot", "pngs_masks", "case1.png"), mask)
        write_png(self.path("covid_rural_annot", "pngs_masks", "case2.png"), np.zeros((8, 6)))  # empty
        # case3 has no mask

    def test_folders(self):
        root = self.path("covid_rural_annot")
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = covid_rural_datalist(root)
        self.assertIn("1 images without a mask", logs.output[0])
        self.assertIn("1 empty masks", logs.output[0])
        self.assertEqual(len(data), 1)
        self.assertEqual(data[0]["mask"], os.path.join(root, "pngs_masks", "case1.png"))
        self.assertEqual((data[0]["category"], data[0]["prompt"]), ("COVID-19", "Findings suggesting pneumonia."))
        self.assertEqual(len(covid_rural_datalist(root, skip_empty=False)), 2)
        self.assertEqual(covid_rural_datalist(root, prompt=None)[0]["prompt"], "Findings suggesting COVID-19.")

    def test_csv(self):
        root = self.path("covid_rural_annot")
        csv = write_csv(
            self.path("pairs.csv"),
            ["image", "mask"],
            [["jpgs/case1.jpg", "pngs_masks/case1.png"], ["jpgs/case3.jpg", "pngs_masks/case3.png"]],
        )
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = covid_rural_datalist(root, csv_path=csv)
        self.assertIn("1 missing mask files", logs.output[0])
        self.assertEqual([os.path.basename(d["image"]) for d in data], ["case1.jpg"])
        with self.assertRaisesRegex(FileNotFoundError, "case3.png"):
            covid_rural_datalist(root, csv_path=csv, strict=True)
        write_csv(csv, ["image", "label"], [["jpgs/case1.jpg", "x"]])
        with self.assertRaisesRegex(ValueError, r"\['mask'\]"):
            covid_rural_datalist(root, csv_path=csv)

    def test_ill_arg(self):
        root = self.path("covid_rural_annot")
        with self.assertRaises(ValueError):
            covid_rural_datalist(root, category="")
        with self.assertRaises(ValueError):
            covid_rural_datalist(root, prompt="  ")
        with self.assertRaises(TypeError):
            covid_rural_datalist(root, skip_empty=None)
        with self.assertRaisesRegex(FileNotFoundError, "mask folder"):
            covid_rural_datalist(root, mask_subdir="masks")


if __name__ == "__main__":
    unittest.main()
