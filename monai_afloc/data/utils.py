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
Shared helpers of the data set readers: table files (CSV / JSON lines, plain or gzip), path checks, prompts, boxes.

Only the standard library (``csv``, ``gzip``, ``json``) is used to read tables, so pandas is not a dependency.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "default_prompt",
    "resolve_table_path",
    "open_csv",
    "read_records",
    "parse_box",
    "index_files",
    "MissingFiles",
]

#: The localization prompt used when the source gives no phrase (the AFLoc reference's wording).
DEFAULT_PROMPT_TEMPLATE = "Findings suggesting {category}."

logger = logging.getLogger(__name__)


def default_prompt(category: str, template: str = DEFAULT_PROMPT_TEMPLATE) -> str:
    """
    The default localization prompt of a category.

    Args:
        category: finding name, e.g. ``"Pneumonia"``.
        template: a ``str.format`` template with a ``{category}`` field.

    Example::

        >>> default_prompt("Pneumothorax")
        'Findings suggesting Pneumothorax.'
    """
    if not isinstance(category, str) or not category.strip():
        raise ValueError(f"category must be a non-empty string, got {category!r}.")
    if not isinstance(template, str) or "{category}" not in template:
        raise ValueError(f"template must be a string with a '{{category}}' field, got {template!r}.")
    return template.format(category=category.strip())


def resolve_table_path(path: str | os.PathLike) -> str:
    """
    Find a table file given with or without its ``.gz`` suffix.

    ``"meta.csv"`` resolves to ``meta.csv`` if it exists, else to ``meta.csv.gz``; ``"meta.csv.gz"`` resolves to
    itself if it exists, else to ``meta.csv``.

    Raises:
        FileNotFoundError: neither form exists; the message names both paths looked for.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("table path must be a non-empty path, got ''.")
    other = path[:-3] if path.endswith(".gz") else path + ".gz"
    for candidate in (path, other):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"table not found: looked for '{path}' and '{other}'.")


def _open_text(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


@contextmanager
def open_csv(
    path: str | os.PathLike, required: Sequence[str] = (), aliases: dict[str, str] | None = None
) -> Iterator[tuple[Iterator[dict[str, str]], list[str]]]:
    """
    Open a CSV table (plain or ``.gz``) and check its header; yields ``(rows, fieldnames)``.

    Header names are stripped of surrounding white space (SIIM's real header is ``"ImageId, EncodedPixels"``), then
    renamed through ``aliases``. Each row is a ``dict`` (column -> raw string, ``""`` when blank) carrying its line
    number under the key ``"__line__"``.

    Args:
        path: the table, with or without ``.gz`` (see :func:`resolve_table_path`).
        required: columns that must be present.
        aliases: optional renaming of (stripped) header names, e.g. ``{"Bbox [x": "x"}``.

    Raises:
        FileNotFoundError: the table does not exist.
        ValueError: the file is empty or lacks a required column; the message names the file, the missing columns
            and the columns found.

    Example::

        with open_csv("stage_2_train_labels.csv", required=("patientId", "Target")) as (rows, columns):
            for row in rows:
                print(row["patientId"], row["Target"])
    """
    path = resolve_table_path(path)
    with _open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"table '{path}' is empty (expected a header row).") from None
        names = [h.strip() for h in header]
        if aliases:
            names = [aliases.get(n, n) for n in names]
        missing = [c for c in required if c not in names]
        if missing:
            raise ValueError(f"table '{path}' lacks the column(s) {missing}; columns found: {names}.")

        def _rows() -> Iterator[dict[str, str]]:
            for values in reader:
                if not values or all(not v.strip() for v in values):
                    continue
                row = {n: (values[i] if i < len(values) else "") for i, n in enumerate(names) if n}
                row["__line__"] = str(reader.line_num)
                yield row

        yield _rows(), names


def read_records(path: str | os.PathLike, required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """
    Read a table of records: CSV (``.csv``), JSON lines (``.jsonl``) or a JSON list (``.json``), plain or ``.gz``.

    CSV cells stay strings; JSON values keep their JSON types. Each record carries its line (CSV, JSONL) or index
    (JSON) under ``"__line__"`` for error messages.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unknown suffix, malformed JSON, a record that is not an object, or a missing required column.
    """
    path = resolve_table_path(path)
    base = path[:-3] if path.endswith(".gz") else path
    suffix = os.path.splitext(base)[1].lower()
    if suffix in (".csv", ".tsv"):
        with open_csv(path, required) as (rows, _):
            return list(rows)
    if suffix not in (".jsonl", ".json"):
        raise ValueError(f"table '{path}': expected a .csv, .jsonl or .json file (optionally .gz), got '{suffix}'.")
    records: list[dict[str, Any]] = []
    with _open_text(path) as f:
        if suffix == ".json":
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"table '{path}' is not valid JSON: {e}.") from e
            if not isinstance(data, list):
                raise ValueError(f"table '{path}': expected a JSON list of objects, got {type(data).__name__}.")
            items = [(str(i), rec) for i, rec in enumerate(data)]
        else:
            items = []
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    items.append((str(i), json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"table '{path}' line {i} is not valid JSON: {e}.") from e
    for where, rec in items:
        if not isinstance(rec, dict):
            raise ValueError(f"table '{path}' record {where}: expected a JSON object, got {type(rec).__name__}.")
        missing = [c for c in required if c not in rec]
        if missing:
            raise ValueError(f"table '{path}' record {where} lacks the column(s) {missing}; keys: {sorted(rec)}.")
        records.append({**rec, "__line__": where})
    return records


def parse_box(values: Sequence[Any], where: str) -> list[float]:
    """
    Check and convert one ``[x, y, w, h]`` box (pixels, top-left corner, width and height) to floats.

    Raises:
        ValueError: not four finite numbers, or a negative width/height; the message says ``where``.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != 4:
        raise ValueError(f"{where}: expected a box [x, y, w, h] of 4 numbers, got {values!r}.")
    try:
        box = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a box [x, y, w, h] of 4 numbers, got {values!r}.") from None
    if not all(math.isfinite(v) for v in box) or box[2] < 0 or box[3] < 0:
        raise ValueError(f"{where}: expected finite box values with w >= 0 and h >= 0, got {box}.")
    return box


def index_files(root: str | os.PathLike, suffixes: Sequence[str]) -> dict[str, str]:
    """
    Index the files under ``root`` (recursively) whose name ends with one of ``suffixes``: name stem -> path.

    When a stem occurs twice, the first path in sorted walk order is kept and the duplicates are logged.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image directory not found: '{root}'.")
    lowered = tuple(s.lower() for s in suffixes)
    index: dict[str, str] = {}
    duplicates = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            low = name.lower()
            for suffix in lowered:
                if low.endswith(suffix):
                    stem = name[: len(name) - len(suffix)]
                    if stem in index:
                        duplicates += 1
                    else:
                        index[stem] = os.path.join(dirpath, name)
                    break
    if duplicates:
        logger.warning("index_files('%s'): %d duplicate file name(s) ignored (first one kept).", root, duplicates)
    return index


class MissingFiles:
    """
    Count (or raise on) missing files while a reader builds its list; ``report`` logs the counts once.

    Args:
        reader: the reader's name, for messages.
        strict: raise ``FileNotFoundError`` at the first missing file instead of counting it.
    """

    def __init__(self, reader: str, strict: bool = False):
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {type(strict).__name__}.")
        self.reader = reader
        self.strict = strict
        self.counts: dict[str, int] = {}

    def exists(self, path: str, what: str = "image") -> bool:
        """True if ``path`` is a file; otherwise count it under ``what`` (or raise when strict)."""
        if os.path.isfile(path):
            return True
        if self.strict:
            raise FileNotFoundError(f"{self.reader}: {what} file not found: '{path}'.")
        self.count(f"missing {what} files")
        return False

    def count(self, reason: str, n: int = 1) -> None:
        """Count ``n`` skipped items under ``reason``."""
        self.counts[reason] = self.counts.get(reason, 0) + n

    def report(self, n_items: int) -> None:
        """Log how many items were kept and, at warning level, how many were skipped and why."""
        if self.counts:
            reasons = ", ".join(f"{n} {r}" for r, n in self.counts.items())
            logger.warning("%s: %d item(s); skipped %s.", self.reader, n_items, reasons)
        else:
            logger.info("%s: %d item(s).", self.reader, n_items)


def check_str(name: str, value: Any, allow_none: bool = False) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is a non-empty string (or None when allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path or string, got {type(value).__name__}.")
    if not os.fspath(value):
        raise ValueError(f"{name} must be non-empty, got ''.")


def check_dir(name: str, value: Any) -> str:
    """Check that ``value`` names an existing directory and return it as a string."""
    check_str(name, value)
    path = os.fspath(value)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{name} is not a directory: '{path}'.")
    return path


def check_bool(name: str, value: Any) -> None:
    """Raise ``TypeError`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}.")
