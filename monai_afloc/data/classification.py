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

"""Readers of the chest X-ray classification data sets: CheXpert and NIH ChestX-ray14 (zero-shot / fine-tuning)."""

from __future__ import annotations

import os
from typing import Any

from monai_afloc.data.mimic import CHEXPERT_FINDINGS, _check_label_policy, chexpert_label_values
from monai_afloc.data.utils import MissingFiles, check_bool, check_dir, check_str, index_files, open_csv

__all__ = ["CHESTXRAY14_FINDINGS", "chexpert_datalist", "chestxray14_datalist"]

#: The 14 findings of NIH ChestX-ray14 (``Data_Entry_2017.csv``, "Finding Labels"; "No Finding" is all zeros).
CHESTXRAY14_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)


def _chexpert_image(root: str, rel: str) -> str:
    path = os.path.join(root, rel)
    if os.path.isfile(path):
        return path
    # ``Path`` starts with the data set folder ("CheXpert-v1.0/train/..."): accept ``root`` being that folder
    head, _, tail = rel.replace("\\", "/").partition("/")
    if tail and head == os.path.basename(os.path.normpath(root)):
        return os.path.join(root, tail)
    return path


def chexpert_datalist(
    csv: str | os.PathLike,
    root: str | os.PathLike,
    uncertain: str = "zeros",
    blank: float = 0.0,
    frontal_only: bool = False,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    CheXpert v1.0 (``train.csv`` / ``valid.csv``) as MONAI data dicts with the 14 labels.

    Columns: ``Path, Sex, Age, Frontal/Lateral, AP/PA`` and the 14 findings of
    :data:`~monai_afloc.data.CHEXPERT_FINDINGS` (cells ``1.0``, ``0.0``, ``-1.0`` uncertain, blank not mentioned).
    ``Path`` (``CheXpert-v1.0/train/patient00001/study1/view1_frontal.jpg``) is joined to ``root``, the folder that
    holds ``CheXpert-v1.0``; ``root`` may also be the ``CheXpert-v1.0`` (or ``-small``) folder itself.

    Args:
        csv: ``train.csv`` or ``valid.csv`` (or ``.csv.gz``).
        root: see above.
        uncertain: what -1.0 becomes: ``"zeros"`` (U-Zeros), ``"ones"`` (U-Ones), ``"ignore"`` (stays -1.0: mask
            labels < 0 in the loss).
        blank: value of a blank cell.
        frontal_only: keep ``Frontal/Lateral == "Frontal"`` images only.
        strict: raise on a missing image instead of skipping it.

    Returns:
        list of ``{"image", "labels": {finding: float}, "sex", "age", "view": "Frontal" | "Lateral",
        "projection": "AP" | "PA" | ...}``.

    Example::

        data = chexpert_datalist("/data/CheXpert-v1.0/train.csv", "/data", uncertain="ones")
    """
    check_str("csv", csv)
    root = check_dir("root", root)
    _check_label_policy(uncertain, blank)
    check_bool("frontal_only", frontal_only)
    skips = MissingFiles("chexpert_datalist", strict)
    data = []
    with open_csv(csv, ("Path", "Frontal/Lateral", *CHEXPERT_FINDINGS)) as (rows, _):
        for row in rows:
            where = f"CheXpert table line {row['__line__']}"
            rel = row["Path"].strip()
            if not rel:
                raise ValueError(f"{where}: empty Path.")
            view = row["Frontal/Lateral"].strip()
            if frontal_only and view != "Frontal":
                continue
            labels = chexpert_label_values(row, CHEXPERT_FINDINGS, uncertain, blank, where)
            path = _chexpert_image(root, rel)
            if not skips.exists(path, "image"):
                continue
            data.append(
                {
                    "image": path,
                    "labels": labels,
                    "sex": row.get("Sex", "").strip(),
                    "age": row.get("Age", "").strip(),
                    "view": view,
                    "projection": row.get("AP/PA", "").strip(),
                }
            )
    skips.report(len(data))
    return data


def chestxray14_datalist(
    data_entry_csv: str | os.PathLike,
    image_dir: str | os.PathLike,
    split_file: str | os.PathLike | None = None,
    recursive: bool = False,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    NIH ChestX-ray14 (``Data_Entry_2017.csv``) as MONAI data dicts with 14 binary labels.

    "Finding Labels" holds findings separated by ``|`` (``"Effusion|Infiltration"``) or ``"No Finding"``.

    Args:
        data_entry_csv: ``Data_Entry_2017.csv`` (or ``_v2020``; ``.csv.gz`` too).
        image_dir: folder of the PNGs; with ``recursive`` they are searched below it (``images_001/images/...``).
        split_file: optional ``train_val_list.txt`` / ``test_list.txt`` (one image name per line): keep those only.
        recursive: search ``image_dir`` recursively.
        strict: raise on a missing image instead of skipping it.

    Returns:
        list of ``{"image", "labels": {finding: 0.0 | 1.0}, "finding_labels": the raw cell, "patient_id",
        "view"}``.

    Raises:
        ValueError: a missing column or an unknown finding name (the message names it and the line).

    Example::

        data = chestxray14_datalist("nih/Data_Entry_2017.csv", "nih/images", split_file="nih/test_list.txt")
    """
    check_str("data_entry_csv", data_entry_csv)
    image_dir = check_dir("image_dir", image_dir)
    check_str("split_file", split_file, allow_none=True)
    check_bool("recursive", recursive)
    keep = None
    if split_file is not None:
        split_file = os.fspath(split_file)
        if not os.path.isfile(split_file):
            raise FileNotFoundError(f"split_file not found: '{split_file}'.")
        with open(split_file, encoding="utf-8") as f:
            keep = {line.strip() for line in f if line.strip()}
    index = index_files(image_dir, ("",)) if recursive else {}
    skips = MissingFiles("chestxray14_datalist", strict)
    known = set(CHESTXRAY14_FINDINGS)
    data = []
    with open_csv(data_entry_csv, ("Image Index", "Finding Labels")) as (rows, _):
        for row in rows:
            where = f"ChestX-ray14 table line {row['__line__']}"
            name = row["Image Index"].strip()
            if not name:
                raise ValueError(f"{where}: empty Image Index.")
            if keep is not None and name not in keep:
                continue
            cell = row["Finding Labels"].strip()
            findings = [] if cell == "No Finding" else [f.strip() for f in cell.split("|") if f.strip()]
            unknown = [f for f in findings if f not in known]
            if unknown or not cell:
                raise ValueError(
                    f"{where}: unknown finding(s) {unknown or [cell]}; expected 'No Finding' or "
                    f"'|'-separated names from {list(CHESTXRAY14_FINDINGS)}."
                )
            path = index.get(name, os.path.join(image_dir, name))
            if not skips.exists(path, "image"):
                continue
            data.append(
                {
                    "image": path,
                    "labels": {f: float(f in findings) for f in CHESTXRAY14_FINDINGS},
                    "finding_labels": cell,
                    "patient_id": row.get("Patient ID", "").strip(),
                    "view": row.get("View Position", "").strip(),
                }
            )
    skips.report(len(data))
    return data
