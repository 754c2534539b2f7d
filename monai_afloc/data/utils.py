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
    "clip_box_to_image",
    "table_delimiter",
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


def _text_encoding(path: str) -> str:
    """UTF-16 when the file starts with a UTF-16 byte-order mark, else UTF-8 (with or without its BOM)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(2)
    return "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


def _open_text(path: str):
    encoding = _text_encoding(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def _not_text(path: str, err: UnicodeDecodeError) -> ValueError:
    return ValueError(
        f"table '{path}' is not UTF-8 text ({err.reason} at byte {err.start}: {err.object[err.start:err.start + 4]!r}"
        "); save it as UTF-8 (or UTF-16 with a byte-order mark), e.g. from a Latin-1 file: "
        "iconv -f latin1 -t utf-8."
    )


def table_delimiter(path: str) -> str:
    """The field delimiter of a table file from its suffix: tab for ``.tsv`` (``.tsv.gz``), else comma."""
    base = path[:-3] if path.endswith(".gz") else path
    return "\t" if base.lower().endswith(".tsv") else ","


@contextmanager
def open_csv(
    path: str | os.PathLike, required: Sequence[str] = (), aliases: dict[str, str] | None = None
) -> Iterator[tuple[Iterator[dict[str, str]], list[str]]]:
    """
    Open a CSV table (plain or ``.gz``; a ``.tsv`` is read with tabs) and check its header; yields
    ``(rows, fieldnames)``.

    Header names are stripped of surrounding white space (SIIM's real header is ``"ImageId, EncodedPixels"``), then
    renamed through ``aliases``; a (non-empty) name that occurs twice is an error, not a silent choice. Each row is a
    ``dict`` (column -> raw string, ``""`` when blank) carrying its line number under the key ``"__line__"``. Text is
    UTF-8 (a UTF-8 or UTF-16 byte-order mark is honoured); another encoding is a ``ValueError`` naming the file.

    Args:
        path: the table, with or without ``.gz`` (see :func:`resolve_table_path`).
        required: columns that must be present.
        aliases: optional renaming of (stripped) header names, e.g. ``{"Bbox [x": "x"}``.

    Raises:
        FileNotFoundError: the table does not exist.
        ValueError: the file is empty, not UTF-8/UTF-16 text, has a duplicated column or lacks a required column;
            the message names the file, the columns concerned and the columns found.

    Example::

        with open_csv("stage_2_train_labels.csv", required=("patientId", "Target")) as (rows, columns):
            for row in rows:
                print(row["patientId"], row["Target"])
    """
    path = resolve_table_path(path)
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=table_delimiter(path))
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"table '{path}' is empty (expected a header row).") from None
        except UnicodeDecodeError as e:
            raise _not_text(path, e) from None
        names = [h.strip() for h in header]
        if aliases:
            names = [aliases.get(n, n) for n in names]
        duplicated = sorted({n for n in names if n and names.count(n) > 1})
        if duplicated:
            raise ValueError(f"table '{path}' has the column(s) {duplicated} more than once; columns found: {names}.")
        missing = [c for c in required if c not in names]
        if missing:
            raise ValueError(f"table '{path}' lacks the column(s) {missing}; columns found: {names}.")

        def _rows() -> Iterator[dict[str, str]]:
            try:
                for values in reader:
                    if not values or all(not v.strip() for v in values):
                        continue
                    row = {n: (values[i] if i < len(values) else "") for i, n in enumerate(names) if n}
                    row["__line__"] = str(reader.line_num)
                    yield row
            except UnicodeDecodeError as e:
                raise _not_text(path, e) from None

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
        raise ValueError(
            f"table '{path}': expected a .csv, .tsv, .jsonl or .json file (optionally .gz), got '{suffix}'."
        )
    records: list[dict[str, Any]] = []
    try:
        items = _json_items(path, suffix)
    except UnicodeDecodeError as e:
        raise _not_text(path, e) from None
    for where, rec in items:
        if not isinstance(rec, dict):
            raise ValueError(f"table '{path}' record {where}: expected a JSON object, got {type(rec).__name__}.")
        missing = [c for c in required if c not in rec]
        if missing:
            raise ValueError(f"table '{path}' record {where} lacks the column(s) {missing}; keys: {sorted(rec)}.")
        records.append({**rec, "__line__": where})
    return records


def _json_items(path: str, suffix: str) -> list[tuple[str, Any]]:
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
    return items


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


def clip_box_to_image(box: Sequence[float], width: int, height: int, where: str) -> tuple[list[float], bool]:
    """
    Clip an ``[x, y, w, h]`` box to a ``width`` x ``height`` image; returns ``(box, clipped)``.

    Raises:
        ValueError: the box lies entirely outside the image (the message says ``where``).
    """
    x, y, w, h = (float(v) for v in box)
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
    if x1 < x0 or y1 < y0 or (w > 0 and x1 == x0) or (h > 0 and y1 == y0):
        raise ValueError(f"{where}: box {list(box)} lies outside the {width} x {height} image.")
    out = [x0, y0, x1 - x0, y1 - y0]
    return out, out != [x, y, w, h]


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
    Count (or raise on) missing files while a reader builds its list; ``report`` logs the counts once, naming the
    first few items of each reason (:attr:`MAX_EXAMPLES`).

    Args:
        reader: the reader's name, for messages.
        strict: raise ``FileNotFoundError`` at the first missing file instead of counting it.
    """

    MAX_EXAMPLES = 5

    def __init__(self, reader: str, strict: bool = False):
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {type(strict).__name__}.")
        self.reader = reader
        self.strict = strict
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}

    def exists(self, path: str, what: str = "image") -> bool:
        """True if ``path`` is a file; otherwise count it under ``what`` (or raise when strict)."""
        if os.path.isfile(path):
            return True
        if self.strict:
            raise FileNotFoundError(f"{self.reader}: {what} file not found: '{path}'.")
        self.count(f"missing {what} files", example=repr(path))
        return False

    def count(self, reason: str, n: int = 1, example: str | None = None) -> None:
        """Count ``n`` skipped (or altered) items under ``reason``; ``example`` names one (kept up to a few)."""
        self.counts[reason] = self.counts.get(reason, 0) + n
        examples = self.examples.setdefault(reason, [])
        if example is not None and len(examples) < self.MAX_EXAMPLES:
            examples.append(example)

    def _reason(self, reason: str, n: int) -> str:
        examples = self.examples.get(reason)
        if not examples:
            return f"{n} {reason}"
        more = ", ..." if n > len(examples) else ""
        return f"{n} {reason} ({', '.join(examples)}{more})"

    def report(self, n_items: int) -> None:
        """Log how many items were kept and, at warning level, how many were skipped and why (naming a few)."""
        if self.counts:
            reasons = ", ".join(self._reason(r, n) for r, n in self.counts.items())
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
