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
MIMIC-CXR-JPG images with MIMIC-CXR free-text reports (AFLoc's pre-training data), and the report section parser.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from typing import Any

from monai_afloc.data.utils import MissingFiles, check_bool, check_str, open_csv

logger = logging.getLogger(__name__)

__all__ = [
    "CHEXPERT_FINDINGS",
    "REPORT_SECTIONS",
    "UNCERTAIN_POLICIES",
    "parse_report_sections",
    "select_report_text",
    "chexpert_label_values",
    "mimic_cxr_datalist",
]

#: The 14 CheXpert labeller findings (MIMIC-CXR-JPG ``chexpert.csv`` and CheXpert ``train.csv`` columns).
CHEXPERT_FINDINGS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

#: Accepted values of ``section``.
REPORT_SECTIONS: tuple[str, ...] = ("findings", "impression", "findings+impression")

#: Accepted values of ``uncertain`` (what an uncertain, -1.0, label becomes).
UNCERTAIN_POLICIES: tuple[str, ...] = ("zeros", "ones", "ignore")

# header names (lower case) that open the sections we keep; any other header closes them
_SECTION_ALIASES = {
    "findings": "findings",
    "finding": "findings",
    "impression": "impression",
    "impressions": "impression",
    "conclusion": "impression",
    "conclusions": "impression",
    "findings and impression": "impression",
    "findings/impression": "impression",
}
# mixed-case headers also recognised as section boundaries (all-caps headers always are)
_KNOWN_HEADERS = set(_SECTION_ALIASES) | {
    "examination",
    "exam",
    "indication",
    "indications",
    "history",
    "clinical history",
    "clinical information",
    "comparison",
    "comparisons",
    "technique",
    "procedure",
    "reason for exam",
    "reason for examination",
    "notification",
    "recommendation",
    "recommendations",
    "recommendation(s)",
    "addendum",
    "wet read",
    "final report",
    "comment",
    "comments",
}
_HEADER = re.compile(r"^[ \t]*([A-Za-z][A-Za-z ()/,&-]{0,40}?)[ \t]*:", re.MULTILINE)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _header_sections(text: str) -> list[tuple[str, str]]:
    """``(lowercase header name, cleaned body)`` of every section of ``text``, in order."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}.")
    headers = []
    for m in _HEADER.finditer(text):
        name = " ".join(m.group(1).split())
        low = name.lower()
        if low in _KNOWN_HEADERS or (name.upper() == name and any(c.isalpha() for c in name)):
            headers.append((m.start(), m.end(), low))
    out = []
    for i, (_, end, low) in enumerate(headers):
        stop = headers[i + 1][0] if i + 1 < len(headers) else len(text)
        out.append((low, _clean(text[end:stop])))
    return out


def parse_report_sections(text: str) -> dict[str, str]:
    """
    Split a MIMIC-CXR free-text report into its FINDINGS and IMPRESSION sections.

    A header is a line that starts with a name and a colon. Names are matched case-insensitively for the sections
    kept (``FINDINGS``/``FINDING`` -> findings; ``IMPRESSION``, ``CONCLUSION``, ``FINDINGS AND IMPRESSION`` ->
    impression) and for common MIMIC headers (INDICATION, COMPARISON, ...); any other ALL-CAPS name followed by a
    colon at the start of a line (``WET READ:``, ``PA AND LATERAL VIEWS OF THE CHEST:``) also closes a section.
    Text outside the kept sections is dropped. White space is collapsed. A section that appears twice is joined.

    Returns:
        ``{"findings": str, "impression": str, "last_paragraph": str}``; a section absent (or empty) is ``""``.
        ``last_paragraph`` is the last block of text after a blank line (MIT-LCP's fallback for reports without
        headers).

    Example::

        >>> parse_report_sections("INDICATION: cough.\\n\\nFINDINGS: Lungs are clear.\\n\\nIMPRESSION: Normal.")
        {'findings': 'Lungs are clear.', 'impression': 'Normal.', 'last_paragraph': 'IMPRESSION: Normal.'}
    """
    sections = {"findings": [], "impression": []}
    for low, body in _header_sections(text):
        kind = _SECTION_ALIASES.get(low)
        if kind is not None and body:
            sections[kind].append(body)
    paragraphs = [_clean(p) for p in re.split(r"\n[ \t]*\n", text)]
    paragraphs = [p for p in paragraphs if p]
    return {
        "findings": " ".join(sections["findings"]),
        "impression": " ".join(sections["impression"]),
        "last_paragraph": paragraphs[-1] if paragraphs else "",
    }


def _check_fallback(fallback: Any) -> str | None:
    if fallback is None:
        return None
    if not isinstance(fallback, str) or not fallback.strip():
        raise ValueError(
            "fallback must be None (drop reports without FINDINGS and IMPRESSION), 'last_paragraph' or a section "
            f"header name such as 'indication', got {fallback!r}."
        )
    low = " ".join(fallback.split()).lower()
    if low in _SECTION_ALIASES:
        raise ValueError(f"fallback must be a section other than FINDINGS/IMPRESSION, got {fallback!r}.")
    return low


def select_report_text(text: str, section: str = "findings+impression", fallback: str | None = None) -> str:
    """
    The report text used for training: the requested section(s), with fallbacks.

    - ``"findings+impression"``: findings and impression joined by a space; either alone when the other is absent.
    - ``"findings"``: findings; without a FINDINGS header, the impression.
    - ``"impression"``: impression; without an IMPRESSION header, the findings.
    - With neither section, ``""`` by default: such a report (e.g. only "INDICATION: ___ year old woman with
      cough") would pair the image with text that does not describe it. ``fallback`` chooses a text instead:
      ``"last_paragraph"`` (the last block of text after a blank line; MIT-LCP's choice for reports without headers,
      and the behaviour up to version 0.1.0), or a header name (``"indication"``, ``"history"``,
      ``"wet read"``, ...; case-insensitive) whose section is used.

    Returns ``""`` when the report has no usable text.

    Raises:
        TypeError: ``text`` is not a str.
        ValueError: an unknown ``section`` or a bad ``fallback``.

    Example::

        >>> select_report_text("IMPRESSION: No acute process.", "findings")
        'No acute process.'
        >>> select_report_text("INDICATION: cough.", "findings"), select_report_text("INDICATION: cough.",
        ...     fallback="indication")
        ('', 'cough.')
    """
    if section not in REPORT_SECTIONS:
        raise ValueError(f"section must be one of {REPORT_SECTIONS}, got {section!r}.")
    fallback = _check_fallback(fallback)
    parts = parse_report_sections(text)
    findings, impression = parts["findings"], parts["impression"]
    if section == "findings+impression":
        out = " ".join(p for p in (findings, impression) if p)
    elif section == "findings":
        out = findings or impression
    else:
        out = impression or findings
    if out or fallback is None:
        return out
    if fallback == "last_paragraph":
        return parts["last_paragraph"]
    return " ".join(body for low, body in _header_sections(text) if low == fallback and body)


def chexpert_label_values(
    row: dict[str, str], columns: Sequence[str], uncertain: str, blank: float, where: str
) -> dict[str, float]:
    """
    Convert CheXpert-labeller cells (``"1.0"``, ``"0.0"``, ``"-1.0"``, blank) into floats.

    Uncertain (-1) becomes 0 (``"zeros"``), 1 (``"ones"``) or stays -1 (``"ignore"``: mask values < 0 in the loss);
    a blank cell (finding not mentioned) becomes ``blank``.

    Raises:
        ValueError: a cell holds anything else; the message says ``where`` and the column.
    """
    out: dict[str, float] = {}
    for col in columns:
        cell = row.get(col, "").strip()
        if cell == "":
            out[col] = float(blank)
            continue
        try:
            v = float(cell)
        except ValueError:
            v = float("nan")
        if v not in (1.0, 0.0, -1.0):
            raise ValueError(f"{where}, column '{col}': expected 1.0, 0.0, -1.0 or blank, got {cell!r}.")
        if v == -1.0:
            v = {"zeros": 0.0, "ones": 1.0, "ignore": -1.0}[uncertain]
        out[col] = v
    return out


def _check_label_policy(uncertain: Any, blank: Any) -> None:
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {UNCERTAIN_POLICIES}, got {uncertain!r}.")
    if isinstance(blank, bool) or not isinstance(blank, (int, float)) or math.isnan(blank):
        raise ValueError(f"blank must be a number (not NaN), got {blank!r}.")


def _mimic_study_dir(subject_id: str, study_id: str) -> str:
    return os.path.join("files", f"p{subject_id[:2]}", f"p{subject_id}", f"s{study_id}")


def mimic_cxr_datalist(
    root: str | os.PathLike,
    split: str | None = "train",
    views: Sequence[str] | None = ("PA", "AP"),
    section: str = "findings+impression",
    reports_root: str | os.PathLike | None = None,
    with_labels: bool = False,
    uncertain: str = "zeros",
    blank: float = 0.0,
    strict: bool = False,
    fallback: str | None = None,
) -> list[dict[str, Any]]:
    """
    Image-report pairs of MIMIC-CXR-JPG v2 with the MIMIC-CXR free-text reports, as MONAI data dicts.

    Files read, unchanged from PhysioNet (each ``.csv`` or ``.csv.gz``):

    - ``<root>/mimic-cxr-2.0.0-metadata.csv.gz``: ``dicom_id, subject_id, study_id, ViewPosition, ...``
    - ``<root>/mimic-cxr-2.0.0-split.csv.gz``: ``dicom_id, study_id, subject_id, split``
    - ``<root>/mimic-cxr-2.0.0-chexpert.csv.gz`` (``with_labels=True``): ``subject_id, study_id`` + 14 findings
    - images ``<root>/files/p{subject_id[:2]}/p{subject_id}/s{study_id}/{dicom_id}.jpg``
    - reports ``<reports_root>/files/p{subject_id[:2]}/p{subject_id}/s{study_id}.txt`` (MIMIC-CXR
      ``mimic-cxr-reports.zip``, unzipped).

    The report text is chosen by :func:`select_report_text` (FINDINGS and/or IMPRESSION; without a FINDINGS header
    the IMPRESSION). A study whose report has neither section is dropped (its count is logged), unless ``fallback``
    names the text to use instead. Items follow the metadata table's order, one per image.

    Args:
        root: MIMIC-CXR-JPG root (holds the tables and ``files/``).
        split: ``"train"``, ``"validate"``, ``"test"`` (values of the split table) or None for all.
        views: ``ViewPosition`` values kept (e.g. ``("PA", "AP")``); None keeps every view.
        section: ``"findings"``, ``"impression"`` or ``"findings+impression"``.
        reports_root: folder that holds the reports' ``files/``; defaults to ``root``.
        with_labels: add ``"labels"``: ``{finding: float}`` from the CheXpert-labeller table.
        uncertain: what an uncertain (-1.0) label becomes: ``"zeros"``, ``"ones"`` or ``"ignore"`` (stays -1.0).
        blank: value of a blank label cell (finding not mentioned).
        strict: raise ``FileNotFoundError`` on a missing image or report instead of skipping it.
        fallback: the text of a report without FINDINGS and IMPRESSION: None (default: drop the study),
            ``"last_paragraph"`` (the behaviour up to version 0.1.0) or a section header name such as
            ``"indication"`` (see :func:`select_report_text`).

    Returns:
        list of ``{"image": path, "report": str, "subject_id": str, "study_id": str, "dicom_id": str,
        "view": str}`` (+ ``"labels"``). Images missing on disk, studies without report file or usable text and
        (with labels) studies absent from the label table are skipped; the counts are logged at warning level.

    Raises:
        FileNotFoundError: a table is missing (the message names the paths looked for), or ``strict`` and a file is
            missing.
        ValueError: a table lacks a column (named), or an argument is invalid.

    Example::

        data = mimic_cxr_datalist("/data/mimic-cxr-jpg/2.0.0", split="train", reports_root="/data/mimic-cxr/2.0.0")
        ds = monai.data.Dataset(data, transform=...)
    """
    check_str("root", root)
    check_str("reports_root", reports_root, allow_none=True)
    if split is not None and split not in ("train", "validate", "test"):
        raise ValueError(f"split must be 'train', 'validate', 'test' or None, got {split!r}.")
    if views is not None:
        if isinstance(views, str) or not all(isinstance(v, str) for v in views):
            raise TypeError(f"views must be a sequence of strings or None, got {views!r}.")
        views = {v.strip().upper() for v in views}
    if section not in REPORT_SECTIONS:
        raise ValueError(f"section must be one of {REPORT_SECTIONS}, got {section!r}.")
    fallback = _check_fallback(fallback)
    check_bool("with_labels", with_labels)
    _check_label_policy(uncertain, blank)
    root = os.fspath(root)
    reports_root = root if reports_root is None else os.fspath(reports_root)
    skips = MissingFiles("mimic_cxr_datalist", strict)

    keep_split: set[str] | None = None
    if split is not None:
        keep_split = set()
        split_csv = os.path.join(root, "mimic-cxr-2.0.0-split.csv.gz")
        with open_csv(split_csv, ("dicom_id", "study_id", "subject_id", "split")) as (rows, _):
            for row in rows:
                if row["split"].strip() == split:
                    keep_split.add(row["dicom_id"].strip())

    labels: dict[tuple[str, str], dict[str, float]] = {}
    if with_labels:
        label_csv = os.path.join(root, "mimic-cxr-2.0.0-chexpert.csv.gz")
        with open_csv(label_csv, ("subject_id", "study_id", *CHEXPERT_FINDINGS)) as (rows, _):
            for row in rows:
                where = f"'{label_csv}' line {row['__line__']}"
                key = (row["subject_id"].strip(), row["study_id"].strip())
                labels[key] = chexpert_label_values(row, CHEXPERT_FINDINGS, uncertain, blank, where)

    reports: dict[tuple[str, str], str | None] = {}  # study -> selected text ("" unusable, None no file)
    no_report_file: set[tuple[str, str]] = set()
    no_text: set[tuple[str, str]] = set()
    no_sections: set[tuple[str, str]] = set()  # reports without FINDINGS and IMPRESSION
    no_labels: set[tuple[str, str]] = set()
    data: list[dict[str, Any]] = []
    meta_csv = os.path.join(root, "mimic-cxr-2.0.0-metadata.csv.gz")
    with open_csv(meta_csv, ("dicom_id", "subject_id", "study_id", "ViewPosition")) as (rows, _):
        for row in rows:
            dicom_id, subject_id, study_id = (row[k].strip() for k in ("dicom_id", "subject_id", "study_id"))
            if not dicom_id or not subject_id.isdigit() or not study_id.isdigit():
                raise ValueError(
                    f"'{meta_csv}' line {row['__line__']}: expected dicom_id and numeric subject_id/study_id, "
                    f"got {dicom_id!r}, {subject_id!r}, {study_id!r}."
                )
            if keep_split is not None and dicom_id not in keep_split:
                continue
            view = row["ViewPosition"].strip()
            if views is not None and view.upper() not in views:
                continue
            key = (subject_id, study_id)
            if with_labels and key not in labels:
                no_labels.add(key)
                continue
            study_dir = _mimic_study_dir(subject_id, study_id)
            image = os.path.join(root, study_dir, f"{dicom_id}.jpg")
            if not skips.exists(image, "image"):
                continue
            if key not in reports:
                report_path = os.path.join(reports_root, study_dir + ".txt")
                if os.path.isfile(report_path):
                    with open(report_path, encoding="utf-8", errors="replace") as f:
                        raw = f.read()
                    reports[key] = select_report_text(raw, section)
                    if not reports[key]:
                        parts = parse_report_sections(raw)
                        if not (parts["findings"] or parts["impression"]) and raw.strip():
                            no_sections.add(key)
                            if fallback is not None:
                                reports[key] = select_report_text(raw, section, fallback)
                elif strict:
                    raise FileNotFoundError(f"mimic_cxr_datalist: report file not found: '{report_path}'.")
                else:
                    reports[key] = None
            if reports[key] is None:
                no_report_file.add(key)
                continue
            if not reports[key]:
                no_text.add(key)
                continue
            item: dict[str, Any] = {
                "image": image,
                "report": reports[key],
                "subject_id": subject_id,
                "study_id": study_id,
                "dicom_id": dicom_id,
                "view": view,
            }
            if with_labels:
                item["labels"] = dict(labels[key])
            data.append(item)
    if no_report_file:
        skips.count("studies without a report file", len(no_report_file))
    no_text_sections = no_text & no_sections
    if no_text_sections:
        skips.count(
            "studies without FINDINGS or IMPRESSION"
            + (f" (nor a '{fallback}' fallback)" if fallback else " (see the fallback argument)"),
            len(no_text_sections),
        )
    if no_text - no_sections:
        skips.count("studies without usable report text", len(no_text - no_sections))
    if fallback is not None and no_sections - no_text:
        logger.warning(
            "mimic_cxr_datalist: %d studies without FINDINGS or IMPRESSION use their '%s' text.",
            len(no_sections - no_text),
            fallback,
        )
    if no_labels:
        skips.count("studies without labels", len(no_labels))
    skips.report(len(data))
    return data
