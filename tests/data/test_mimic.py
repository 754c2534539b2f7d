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

"""Tests of the MIMIC-CXR reader and the report section parser, on tiny tables in the published format."""

from __future__ import annotations

import os
import tempfile
import unittest

from monai.data import DataLoader, Dataset
from parameterized import parameterized

from monai_afloc.data import (
    CHEXPERT_FINDINGS,
    mimic_cxr_datalist,
    parse_report_sections,
    select_report_text,
)
from tests.data.writers import touch, write_csv, write_text

META_HEADER = [
    "dicom_id",
    "subject_id",
    "study_id",
    "PerformedProcedureStepDescription",
    "ViewPosition",
    "Rows",
    "Columns",
    "StudyDate",
    "StudyTime",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
]
# MIMIC-CXR-JPG's chexpert table: subject_id, study_id, then the findings in alphabetical order
LABEL_HEADER = ["subject_id", "study_id", *sorted(CHEXPERT_FINDINGS)]

REPORT_FULL = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with cough  // ?pna

 COMPARISON:  None.

 FINDINGS:

 The lungs are clear.  Heart size: normal.
 No pleural effusion.

 IMPRESSION:

 No acute cardiopulmonary process.
"""
REPORT_IMPRESSION_ONLY = """ WET READ: ___ ___ 10:12 AM  small left effusion

 INDICATION:  Dyspnea.

 Impression:  Small left pleural effusion.
"""
REPORT_NO_HEADER = """PA and lateral views of the chest.

Mild cardiomegaly.  No pneumothorax.
"""
REPORT_INDICATION_ONLY = """ INDICATION:  ___ year old woman with cough.

 COMPARISON:  None.
"""

# (dicom_id, subject_id, study_id, view, split, report or None (no file), image on disk)
STUDIES = [
    ("d1", "10000032", "50414267", "PA", "train", REPORT_FULL, True),
    ("d1lat", "10000032", "50414267", "LATERAL", "train", REPORT_FULL, True),
    ("d2", "10000033", "50000002", "AP", "train", REPORT_IMPRESSION_ONLY, True),
    ("d3", "11000001", "50000003", "PA", "train", REPORT_NO_HEADER, True),
    ("d4", "11000002", "50000004", "PA", "train", None, True),  # no report file
    ("d5", "11000003", "50000005", "PA", "train", REPORT_FULL, False),  # no image
    ("d6", "12000004", "50000006", "PA", "test", REPORT_FULL, True),
    ("d7", "12000005", "50000007", "PA", "train", "   \n\n  ", True),  # no usable text
]


def _labels(i):
    cells = ["1.0", "0.0", "-1.0", ""]
    return [cells[(i + j) % 4] for j in range(len(LABEL_HEADER) - 2)]


class TestReportSections(unittest.TestCase):
    def test_full(self):
        parts = parse_report_sections(REPORT_FULL)
        self.assertEqual(parts["findings"], "The lungs are clear. Heart size: normal. No pleural effusion.")
        self.assertEqual(parts["impression"], "No acute cardiopulmonary process.")

    @parameterized.expand(
        [
            [
                REPORT_FULL,
                "findings+impression",
                "The lungs are clear. Heart size: normal. No pleural effusion. No acute cardiopulmonary process.",
            ],
            [REPORT_FULL, "findings", "The lungs are clear. Heart size: normal. No pleural effusion."],
            [REPORT_FULL, "impression", "No acute cardiopulmonary process."],
            [REPORT_IMPRESSION_ONLY, "findings", "Small left pleural effusion."],  # falls back to IMPRESSION
            [REPORT_IMPRESSION_ONLY, "findings+impression", "Small left pleural effusion."],
            [REPORT_NO_HEADER, "findings", ""],  # neither section: nothing by default
            ["FINDINGS: Clear lungs.", "impression", "Clear lungs."],
            ["findings: a.\nConclusion: b.\nRECOMMENDATION(S): c.", "findings+impression", "a. b."],
            ["", "findings", ""],
        ]
    )
    def test_select(self, text, section, expected):
        self.assertEqual(select_report_text(text, section), expected)

    @parameterized.expand(
        [
            [REPORT_NO_HEADER, "last_paragraph", "Mild cardiomegaly. No pneumothorax."],
            [REPORT_INDICATION_ONLY, "indication", "___ year old woman with cough."],
            [REPORT_INDICATION_ONLY, " Indication ", "___ year old woman with cough."],
            [REPORT_INDICATION_ONLY, "history", ""],  # no such section
            [REPORT_FULL, "indication", select_report_text(REPORT_FULL)],  # only used without FINDINGS/IMPRESSION
        ]
    )
    def test_fallback(self, text, fallback, expected):
        self.assertEqual(select_report_text(text, fallback=fallback), expected)

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            select_report_text("x", "all")
        with self.assertRaises(TypeError):
            parse_report_sections(None)
        for bad in ("", 3, "impression", "Findings"):
            with self.assertRaisesRegex(ValueError, "fallback"):
                select_report_text("x", fallback=bad)


class TestMimicCXR(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.reports = os.path.join(self.root, "reports")
        meta, split, labels = [], [], []
        for i, (dicom, subject, study, view, sp, report, has_image) in enumerate(STUDIES):
            meta.append(
                [dicom, subject, study, "CHEST (PA AND LAT)", view, 3056, 2544, 21800506, 213014.531, "", "", ""]
            )
            split.append([dicom, study, subject, sp])
            if not labels or labels[-1][1] != study:  # one label row per study
                labels.append([subject, study, *_labels(i)])
            study_dir = os.path.join("files", f"p{subject[:2]}", f"p{subject}", f"s{study}")
            if has_image:
                touch(os.path.join(self.root, study_dir, f"{dicom}.jpg"))
            if report is not None:
                write_text(os.path.join(self.reports, study_dir + ".txt"), report)
        write_csv(os.path.join(self.root, "mimic-cxr-2.0.0-metadata.csv.gz"), META_HEADER, meta)
        write_csv(
            os.path.join(self.root, "mimic-cxr-2.0.0-split.csv.gz"),
            ["dicom_id", "study_id", "subject_id", "split"],
            split,
        )
        write_csv(os.path.join(self.root, "mimic-cxr-2.0.0-chexpert.csv.gz"), LABEL_HEADER, labels[:-1])

    def tearDown(self):
        self.tmp.cleanup()

    def test_train_pa_ap(self):
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = mimic_cxr_datalist(self.root, reports_root=self.reports)
        self.assertEqual([d["dicom_id"] for d in data], ["d1", "d2"])  # d3: no FINDINGS / IMPRESSION
        d = data[0]
        self.assertEqual(d["image"], os.path.join(self.root, "files", "p10", "p10000032", "s50414267", "d1.jpg"))
        self.assertEqual((d["subject_id"], d["study_id"], d["view"]), ("10000032", "50414267", "PA"))
        self.assertEqual(d["report"], select_report_text(REPORT_FULL))
        self.assertEqual(data[1]["report"], "Small left pleural effusion.")
        batch = next(iter(DataLoader(Dataset(data), batch_size=2)))  # the dicts collate with MONAI's loader
        self.assertEqual(batch["dicom_id"], ["d1", "d2"])
        log = "\n".join(logs.output)
        for phrase in (
            "2 item(s)",
            "1 missing image files",
            "1 studies without a report file",
            "1 studies without usable report text",
            "1 studies without FINDINGS or IMPRESSION (see the fallback argument)",
        ):
            self.assertIn(phrase, log)

    def test_fallback(self):
        with self.assertLogs("monai_afloc.data.mimic", "WARNING") as logs:
            data = mimic_cxr_datalist(self.root, reports_root=self.reports, fallback="last_paragraph")
        self.assertEqual([d["dicom_id"] for d in data], ["d1", "d2", "d3"])
        self.assertEqual(data[2]["report"], "Mild cardiomegaly. No pneumothorax.")
        self.assertIn("1 studies without FINDINGS or IMPRESSION use their 'last_paragraph' text", logs.output[0])
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            data = mimic_cxr_datalist(self.root, reports_root=self.reports, fallback="indication")
        self.assertEqual([d["dicom_id"] for d in data], ["d1", "d2"])
        self.assertIn("1 studies without FINDINGS or IMPRESSION (nor a 'indication' fallback)", "\n".join(logs.output))
        with self.assertRaisesRegex(ValueError, "fallback"):
            mimic_cxr_datalist(self.root, reports_root=self.reports, fallback="impression")

    def test_all_views_all_splits_plain_tables(self):
        # the same tables uncompressed are found too
        for name in ("metadata", "split"):
            gz = os.path.join(self.root, f"mimic-cxr-2.0.0-{name}.csv.gz")
            import gzip

            with gzip.open(gz, "rt") as f:
                write_text(gz[:-3], f.read())
            os.remove(gz)
        data = mimic_cxr_datalist(self.root, split=None, views=None, section="impression", reports_root=self.reports)
        self.assertEqual([d["dicom_id"] for d in data], ["d1", "d1lat", "d2", "d6"])
        self.assertEqual(data[0]["report"], "No acute cardiopulmonary process.")
        self.assertEqual(data[1]["view"], "LATERAL")

    def test_labels(self):
        self.maxDiff = None
        data = mimic_cxr_datalist(self.root, reports_root=self.reports, with_labels=True, uncertain="ignore", blank=0.0)
        self.assertEqual(set(data[0]["labels"]), set(CHEXPERT_FINDINGS))
        raw = dict(zip(LABEL_HEADER[2:], _labels(0)))
        expected = {k: {"1.0": 1.0, "0.0": 0.0, "-1.0": -1.0, "": 0.0}[v] for k, v in raw.items()}
        self.assertEqual(data[0]["labels"], expected)
        with self.assertLogs("monai_afloc.data.utils", "WARNING") as logs:
            ones = mimic_cxr_datalist(self.root, reports_root=self.reports, with_labels=True, uncertain="ones")
        self.assertIn("1 studies without labels", logs.output[0])
        self.assertEqual(ones[0]["labels"]["Atelectasis"], 1.0)  # "-1.0" -> 1 with U-Ones
        self.assertNotIn(-1.0, ones[0]["labels"].values())

    def test_strict(self):
        with self.assertRaisesRegex(FileNotFoundError, "report file.*s50000004.txt"):
            mimic_cxr_datalist(self.root, reports_root=self.reports, strict=True)
        write_text(os.path.join(self.reports, "files", "p11", "p11000002", "s50000004.txt"), REPORT_FULL)
        with self.assertRaisesRegex(FileNotFoundError, "image file.*d5.jpg"):
            mimic_cxr_datalist(self.root, reports_root=self.reports, strict=True)

    def test_missing_table_and_column(self):
        os.remove(os.path.join(self.root, "mimic-cxr-2.0.0-split.csv.gz"))
        with self.assertRaisesRegex(FileNotFoundError, r"split\.csv\.gz' and '.*split\.csv'"):
            mimic_cxr_datalist(self.root)
        write_csv(
            os.path.join(self.root, "mimic-cxr-2.0.0-split.csv.gz"),
            ["dicom_id", "study_id", "subject_id"],
            [["d1", "50414267", "10000032"]],
        )
        with self.assertRaisesRegex(ValueError, r"\['split'\]"):
            mimic_cxr_datalist(self.root)

    def test_bad_label_cell(self):
        write_csv(
            os.path.join(self.root, "mimic-cxr-2.0.0-chexpert.csv.gz"),
            LABEL_HEADER,
            [["10000032", "50414267", "2.0"] + [""] * 13],
        )
        with self.assertRaisesRegex(ValueError, "line 2, column 'Atelectasis'"):
            mimic_cxr_datalist(self.root, with_labels=True)

    @parameterized.expand(
        [
            [{"split": "val"}, ValueError],
            [{"section": "all"}, ValueError],
            [{"views": "PA"}, TypeError],
            [{"with_labels": "yes"}, TypeError],
            [{"uncertain": "maybe"}, ValueError],
            [{"blank": float("nan")}, ValueError],
            [{"strict": 1}, TypeError],
            [{"reports_root": 3}, TypeError],
        ]
    )
    def test_ill_arg(self, kwargs, error):
        with self.assertRaises(error):
            mimic_cxr_datalist(self.root, **kwargs)


if __name__ == "__main__":
    unittest.main()
