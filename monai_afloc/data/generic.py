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
Modality-agnostic readers: image-text pairs for pre-training and annotated images for localization, from a CSV,
JSON-lines or JSON table. The route for fundus, histopathology, CT and other teams with their own data.
"""

from __future__ import annotations

import json
import os
from typing import Any

from monai_afloc.data.utils import (
    DEFAULT_PROMPT_TEMPLATE,
    MissingFiles,
    check_str,
    default_prompt,
    parse_box,
    read_records,
)

__all__ = ["image_text_datalist", "annotated_datalist"]


def _base_dir(path: str | os.PathLike, base_dir: str | os.PathLike | None) -> str:
    check_str("base_dir", base_dir, allow_none=True)
    if base_dir is None:
        return os.path.dirname(os.path.abspath(os.fspath(path)))
    base = os.fspath(base_dir)
    if not os.path.isdir(base):
        raise FileNotFoundError(f"base_dir is not a directory: '{base}'.")
    return base


def _cell_str(value: Any, column: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}, column '{column}': expected a string, got {type(value).__name__} {value!r:.40}.")
    return value.strip()


def _check_column(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty column name, got {value!r}.")


def image_text_datalist(
    csv_or_jsonl: str | os.PathLike,
    image_column: str = "image",
    text_column: str = "report",
    base_dir: str | os.PathLike | None = None,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    Image-report pairs from a table, for any modality: ``{"image": path, "report": text, ...other columns}``.

    The table is a CSV (``.csv``), JSON lines (``.jsonl``) or a JSON list of objects (``.json``), each optionally
    gzipped. Relative image paths are joined to ``base_dir`` (default: the table's folder); absolute paths are kept.
    Other columns are passed through unchanged (CSV cells as strings).

    Example table (``pairs.csv``)::

        image,report
        fundus/0001.png,Optic disc cupping. No haemorrhage.
        fundus/0002.png,Scattered drusen at the macula.

    Args:
        csv_or_jsonl: the table.
        image_column: column of the image paths (renamed ``"image"``).
        text_column: column of the texts (renamed ``"report"``).
        base_dir: folder that relative image paths start from.
        strict: raise on a missing image instead of skipping it.

    Returns:
        the list of dicts; records with empty text or a missing image are skipped and counted (logged).

    Example::

        data = image_text_datalist("pairs.csv")
        ds = monai.data.Dataset(data, transform=...)
    """
    check_str("csv_or_jsonl", csv_or_jsonl)
    _check_column("image_column", image_column)
    _check_column("text_column", text_column)
    if image_column == text_column:
        raise ValueError(f"image_column and text_column must differ, got {image_column!r} for both.")
    base = _base_dir(csv_or_jsonl, base_dir)
    skips = MissingFiles("image_text_datalist", strict)
    data = []
    for rec in read_records(csv_or_jsonl, (image_column, text_column)):
        where = f"'{os.fspath(csv_or_jsonl)}' record {rec['__line__']}"
        image = _cell_str(rec[image_column], image_column, where)
        text = _cell_str(rec[text_column], text_column, where)
        if not image:
            raise ValueError(f"{where}: empty '{image_column}'.")
        extra = {k: v for k, v in rec.items() if k not in (image_column, text_column, "__line__")}
        clash = [k for k in ("image", "report") if k in extra]
        if clash:
            raise ValueError(f"{where}: column(s) {clash} would be overwritten; rename them or select them.")
        if not text:
            skips.count("records without text")
            continue
        path = os.path.join(base, image)
        if not skips.exists(path, "image"):
            continue
        data.append({"image": path, "report": text, **extra})
    skips.report(len(data))
    return data


def _parse_boxes(value: Any, where: str) -> list[list[float]]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{where}: boxes must be JSON such as [[x, y, w, h], ...], got {value[:60]!r}.") from None
    if not isinstance(value, list):
        raise ValueError(f"{where}: boxes must be a list of [x, y, w, h], got {value!r:.60}.")
    if value and not isinstance(value[0], list):
        value = [value]  # a single box
    return [parse_box(b, where) for b in value]


def _parse_label(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().lower()
    table = {"1": 1, "1.0": 1, "true": 1, "0": 0, "0.0": 0, "false": 0}
    if text not in table:
        raise ValueError(f"{where}: label must be 0 or 1, got {value!r}.")
    return table[text]


def annotated_datalist(
    csv_or_jsonl: str | os.PathLike,
    image_column: str = "image",
    category_column: str = "category",
    prompt_column: str | None = "prompt",
    boxes_column: str | None = "boxes",
    mask_column: str | None = "mask",
    label_column: str | None = "label",
    base_dir: str | os.PathLike | None = None,
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """
    Annotated images from a table, for any modality, in the shape of the chest X-ray localization readers.

    Columns (CSV, JSON lines or JSON list; optionally gzipped):

    - ``image`` (required): image path, relative to ``base_dir`` (default: the table's folder) or absolute;
    - ``category`` (required): the finding's name;
    - ``prompt`` (optional): the phrase to localize; blank/absent gives ``prompt_template`` with the category;
    - ``boxes`` (optional): JSON ``[[x, y, w, h], ...]`` (or one ``[x, y, w, h]``) in image pixels;
    - ``mask`` (optional): mask file path (relative like ``image``), loaded later with ``LoadImaged``;
    - ``label`` (optional): 0/1; blank/absent gives 1 when the item has boxes or a mask, else 0.

    Rows with the same (image, category, prompt) are merged into one item (their boxes joined), so a CSV may list
    one box per row. Items keep first-appearance order.

    Example table (``lesions.csv``)::

        image,category,prompt,boxes,mask
        ct/slice_010.png,Nodule,,"[[12, 40, 8, 8]]",
        ct/slice_010.png,Nodule,,"[[60, 22, 5, 6]]",
        fundus/0003.png,Haemorrhage,flame haemorrhage near the disc,,fundus/0003_mask.png

    Returns:
        list of ``{"image", "category", "prompt", "boxes": [[x, y, w, h], ...], "label"}`` plus ``"mask"`` for
        items that have one (use ``LoadImaged(keys="mask", allow_missing_keys=True)`` on mixed lists).

    Raises:
        ValueError: missing required column, malformed boxes or label, or merged rows that disagree on the mask or
            on an explicit label.

    Example::

        data = annotated_datalist("lesions.csv")
    """
    check_str("csv_or_jsonl", csv_or_jsonl)
    _check_column("image_column", image_column)
    _check_column("category_column", category_column)
    for name, col in (("prompt", prompt_column), ("boxes", boxes_column), ("mask", mask_column)):
        _check_column(f"{name}_column", col, allow_none=True)
    _check_column("label_column", label_column, allow_none=True)
    default_prompt("x", prompt_template)
    base = _base_dir(csv_or_jsonl, base_dir)
    skips = MissingFiles("annotated_datalist", strict)
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    explicit: dict[tuple[str, str, str], int | None] = {}  # label given in the table, if any
    for rec in read_records(csv_or_jsonl, (image_column, category_column)):
        where = f"'{os.fspath(csv_or_jsonl)}' record {rec['__line__']}"
        image = _cell_str(rec[image_column], image_column, where)
        category = _cell_str(rec[category_column], category_column, where)
        if not image or not category:
            raise ValueError(f"{where}: empty '{image_column}' or '{category_column}'.")
        prompt = _cell_str(rec.get(prompt_column), prompt_column, where) if prompt_column else ""
        prompt = prompt or default_prompt(category, prompt_template)
        boxes = _parse_boxes(rec.get(boxes_column), where) if boxes_column else []
        mask = _cell_str(rec.get(mask_column), mask_column, where) if mask_column else ""
        label = _parse_label(rec.get(label_column), where) if label_column else None
        key = (image, category, prompt)
        if key not in groups:
            groups[key] = {"image": os.path.join(base, image), "category": category, "prompt": prompt, "boxes": []}
            explicit[key] = None
        group = groups[key]
        group["boxes"].extend(boxes)
        if label is not None:
            if explicit[key] not in (None, label):
                raise ValueError(f"{where}: label {label} disagrees with an earlier row of {key} ({explicit[key]}).")
            explicit[key] = label
        if mask:
            mask_path = os.path.join(base, mask)
            if group.setdefault("mask", mask_path) != mask_path:
                raise ValueError(f"{where}: a second mask '{mask}' for {key}; merge the masks into one file.")
    data = []
    for key, group in groups.items():
        group["label"] = explicit[key] if explicit[key] is not None else int(bool(group["boxes"] or "mask" in group))
        if not skips.exists(group["image"], "image"):
            continue
        if "mask" in group and not skips.exists(group["mask"], "mask"):
            continue
        data.append(group)
    skips.report(len(data))
    return data
