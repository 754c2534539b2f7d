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
Request parameters of the MONAI Label infer tasks, checked without MONAI Label (pure Python, testable anywhere).

A MONAI Label ``POST /infer/{model}`` request carries a ``params`` form field holding a JSON object; the server
overlays it on the task's ``config()`` defaults and hands the result to the task as a ``dict``. The keys read here:

- ``prompt``: one prompt (a string) or several (a list of strings); the free-text task needs it, a finding task
  takes finding names (default: all of its findings);
- ``threshold``: mask/box threshold on the ``[-1, 1]`` heatmaps (a number, or a string holding one);
- ``output``: ``"mask"`` (a label image, value ``k + 1`` where prompt ``k`` is the strongest above the threshold),
  ``"heatmap"`` (the ``[-1, 1]`` heatmaps as a NIfTI volume) or ``"boxes"`` (a label image of the filled boxes).

Every problem raises :class:`AFLocRequestError` with an HTTP status (4xx) and a message saying what was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from monai.utils import StrEnum

__all__ = [
    "AFLocRequestError",
    "OutputKind",
    "MAX_PROMPTS",
    "MAX_PROMPT_CHARS",
    "parse_params_json",
    "parse_prompts",
    "parse_threshold",
    "parse_output_kind",
    "check_request_mapping",
]

#: a label image is uint8: value k + 1 for prompt k
MAX_PROMPTS = 255
#: longer prompts are refused (the text encoder truncates at 97 tokens anyway)
MAX_PROMPT_CHARS = 1000


class AFLocRequestError(ValueError):
    """A bad request: ``status`` is the HTTP status to answer (4xx), ``str(error)`` the message."""

    def __init__(self, status: int, message: str) -> None:
        if not isinstance(status, int) or not 400 <= status < 500:
            raise ValueError(f"status must be an HTTP 4xx code, got {status!r}.")
        super().__init__(message)
        self.status = status


class OutputKind(StrEnum):
    """What the label image of an answer holds (the JSON part always has scores and boxes)."""

    MASK = "mask"
    HEATMAP = "heatmap"
    BOXES = "boxes"


def parse_params_json(params: Any) -> dict[str, Any]:
    """
    The ``params`` form field of an infer request: a JSON object (``""``/``None`` mean ``{}``).

    Raises:
        AFLocRequestError: 400 when it is not valid JSON, 422 when it is valid JSON but not an object.
    """
    if params is None or (isinstance(params, str) and not params.strip()):
        return {}
    if isinstance(params, (bytes, bytearray)):
        params = params.decode("utf-8", errors="replace")
    if not isinstance(params, str):
        raise AFLocRequestError(400, f"params must be a JSON object in a string, got {type(params).__name__}.")
    try:
        value = json.loads(params)
    except ValueError as e:
        raise AFLocRequestError(400, f"params is not valid JSON ({e}); expected a JSON object such as "
                                     '{"prompt": "pleural effusion"}.') from None
    if not isinstance(value, dict):
        raise AFLocRequestError(422, f"params must be a JSON object, got a JSON {type(value).__name__}: "
                                     f"{params[:80]!r}.")
    return value


def parse_prompts(value: Any, choices: Sequence[str] | None = None) -> list[str]:
    """
    The ``prompt`` parameter as a non-empty list of stripped, non-empty strings (at most :data:`MAX_PROMPTS`).

    With ``choices`` (a finding task), every prompt must name one of them (case-insensitive); the canonical
    spelling from ``choices`` is returned. A comma-separated string is *not* split: send a list for several.

    Raises:
        AFLocRequestError: 400 for a missing/empty prompt, a non-string item, too many prompts, or an unknown
            finding name.
    """
    if value is None:
        raise AFLocRequestError(400, "missing 'prompt': send a string or a list of strings in params.")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise AFLocRequestError(400, f"'prompt' must be a string or a list of strings, got {type(value).__name__}.")
    if len(items) == 0:
        raise AFLocRequestError(400, "'prompt' is an empty list: send at least one prompt.")
    if len(items) > MAX_PROMPTS:
        raise AFLocRequestError(400, f"at most {MAX_PROMPTS} prompts per request (uint8 label), got {len(items)}.")
    prompts = []
    for i, p in enumerate(items):
        if not isinstance(p, str):
            raise AFLocRequestError(400, f"prompt #{i} must be a string, got {type(p).__name__}: {p!r}.")
        p = " ".join(p.split())
        if not p or not any(c.isalnum() for c in p):
            raise AFLocRequestError(400, f"prompt #{i} is empty (no letters or digits): {items[i]!r}.")
        if len(p) > MAX_PROMPT_CHARS:
            raise AFLocRequestError(400, f"prompt #{i} is longer than {MAX_PROMPT_CHARS} characters ({len(p)}).")
        if p in prompts:
            raise AFLocRequestError(400, f"prompt #{i} repeats an earlier prompt: {p!r}.")
        prompts.append(p)
    if choices is not None:
        known = {c.lower(): c for c in choices}
        unknown = [p for p in prompts if p.lower() not in known]
        if unknown:
            raise AFLocRequestError(400, f"unknown finding(s) {unknown} for this model; expected some of "
                                         f"{list(choices)} (use the free-text model for other prompts).")
        prompts = [known[p.lower()] for p in prompts]
    return prompts


def parse_threshold(value: Any) -> float:
    """
    The ``threshold`` parameter: a finite number in ``[-1, 1]`` (the heatmaps' range), or a string holding one.

    Raises:
        AFLocRequestError: 400 otherwise (booleans are refused too).
    """
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise AFLocRequestError(400, f"'threshold' must be a number in [-1, 1], got {value!r}.") from None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise AFLocRequestError(400, f"'threshold' must be a number in [-1, 1], got {type(value).__name__}: "
                                     f"{value!r}.")
    number = float(number)
    if not math.isfinite(number) or not -1.0 <= number <= 1.0:
        raise AFLocRequestError(400, f"'threshold' must be a number in [-1, 1] (heatmap range), got {value!r}.")
    return number


def parse_output_kind(value: Any) -> OutputKind:
    """The ``output`` parameter: ``mask``, ``heatmap`` or ``boxes`` (case-insensitive); 400 otherwise."""
    if isinstance(value, str) and value.strip().lower() in {k.value for k in OutputKind}:
        return OutputKind(value.strip().lower())
    raise AFLocRequestError(400, f"'output' must be one of {[k.value for k in OutputKind]}, got {value!r}.")


def check_request_mapping(data: Any) -> Mapping[str, Any]:
    """A task's ``data`` must be a mapping (MONAI Label passes a dict)."""
    if not isinstance(data, Mapping):
        raise AFLocRequestError(422, f"the request must be a JSON object, got {type(data).__name__}.")
    return data
