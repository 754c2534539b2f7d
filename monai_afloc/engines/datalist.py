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
Training data lists from an image-report table with a split column, such as the synthetic pretraining CSV
(``monai_afloc.apps.synthetic.write_pretraining_split``: columns ``path``, ..., ``split``, ``report``).
"""

from __future__ import annotations

import os
from typing import Any

from monai_afloc.data.generic import image_text_datalist
from monai_afloc.data.mimic import REPORT_SECTIONS, select_report_text

__all__ = ["image_text_split_datalist"]


def image_text_split_datalist(
    table: str | os.PathLike,
    split: str | None = "train",
    split_column: str = "split",
    image_column: str = "path",
    text_column: str = "report",
    section: str | None = "findings+impression",
    base_dir: str | os.PathLike | None = None,
    strict: bool = True,
    allow_empty: bool = False,
) -> list[dict[str, Any]]:
    """
    Image-report pairs of one split of a table, as MONAI data dicts ``{"image": path, "report": text, ...}``.

    Reads the table with :func:`monai_afloc.data.image_text_datalist` (CSV, JSON lines or JSON; relative image paths
    start at ``base_dir``, default the table's folder), keeps the rows whose ``split_column`` equals ``split`` and,
    with ``section``, reduces each report to its FINDINGS/IMPRESSION text as the MIMIC-CXR reader does
    (:func:`monai_afloc.data.select_report_text`), so synthetic and real reports reach the model alike; a report
    without those headers (a plain one-line report in a user's table) keeps its last paragraph.

    Args:
        table: the table file (e.g. ``synthetic-cxr-metadata.csv``).
        split: the split to keep (``"train"``, ``"validate"``, ``"test"``, ...); ``None`` keeps every row.
        split_column: column holding the split name.
        image_column: column of the image paths (renamed ``"image"``).
        text_column: column of the reports (renamed ``"report"``).
        section: ``"findings"``, ``"impression"``, ``"findings+impression"`` or ``None`` (the report unchanged).
        base_dir: folder that relative image paths start from.
        strict: raise on a missing image instead of skipping it.
        allow_empty: return ``[]`` when no row has ``split`` instead of raising.

    Returns:
        the list of dicts (other columns passed through as strings).

    Raises:
        ValueError: when the table has no ``split_column`` or (unless ``allow_empty``) no row of ``split``; the
            message lists the splits found. Errors of the table reader pass through.

    Example::

        >>> train = image_text_split_datalist("synthetic/pretraining/synthetic-cxr-metadata.csv", split="train")
        >>> sorted(train[0])[:3]  # doctest: +SKIP
        ['Atelectasis', 'Cardiomegaly', 'Consolidation']
    """
    if split is not None and (not isinstance(split, str) or not split):
        raise ValueError(f"split must be None or a non-empty str, got {split!r}.")
    if not isinstance(split_column, str) or not split_column:
        raise ValueError(f"split_column must be a non-empty column name, got {split_column!r}.")
    if section is not None and section not in REPORT_SECTIONS:
        raise ValueError(f"section must be None or one of {REPORT_SECTIONS}, got {section!r}.")
    if not isinstance(allow_empty, bool):
        raise TypeError(f"allow_empty must be a bool, got {type(allow_empty).__name__}.")
    data = image_text_datalist(
        table, image_column=image_column, text_column=text_column, base_dir=base_dir, strict=strict
    )
    if split is not None:
        if data and split_column not in data[0]:
            raise ValueError(
                f"'{os.fspath(table)}' has no column '{split_column}' to select split {split!r}; "
                f"columns: {sorted(data[0])}."
            )
        found = sorted({str(d.get(split_column)) for d in data})
        data = [d for d in data if str(d.get(split_column, "")).strip() == split]
        if not data and not allow_empty:
            raise ValueError(f"'{os.fspath(table)}' has no rows with {split_column}={split!r}; splits found: {found}.")
    if section is not None:
        selected = []
        for d in data:
            text = select_report_text(d["report"], section, fallback="last_paragraph")
            if text:
                selected.append({**d, "report": text})
        data = selected
    return data
