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
Argument checks with one policy: a value of the wrong *type* raises ``TypeError``, a value of the right type but
out of range (or not among the options) raises ``ValueError``; both messages name the argument, what was expected
and what was received. ``bool`` is never accepted as a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["check_int", "check_number", "check_option", "check_bool"]


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within the bounds. Example: ``check_int("image_size", 224, minimum=32)`` -> 224."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int{_range_text(minimum, maximum)}, got {type(value).__name__} {value!r}.")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int{_range_text(minimum, maximum)}, got {value!r}.")
    return int(value)


def check_number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None) -> float:
    """``value`` as a float within the bounds (NaN is out of every range). Example: ``check_number("sigma", 1.5,
    minimum=0)`` -> 1.5."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number{_range_text(minimum, maximum)}, got {type(value).__name__} {value!r}.")
    value = float(value)
    if value != value or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be a number{_range_text(minimum, maximum)}, got {value!r}.")
    return value


def check_option(name: str, value: Any, options: Iterable[str]) -> str:
    """``value`` if it is one of ``options`` (str). Example: ``check_option("mode", "prompt", ("prompt",))``."""
    options = tuple(str(o) for o in options)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(options)}, got {type(value).__name__} {value!r}.")
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}.")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool. Example: ``check_bool("return_masks", True)``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}.")
    return value
