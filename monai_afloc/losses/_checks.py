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

"""Private argument checks shared by the monai_afloc losses (errors name what was expected and what came)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "check_float_tensor",
    "check_lengths",
    "check_nonnegative_number",
    "check_positive_int",
    "check_positive_number",
    "check_rank_world_size",
]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive_number(name: str, value) -> float:
    """Return ``value`` as a float; raise if it is not a finite number > 0."""
    if not _is_number(value):
        raise TypeError(f"{name} must be a real number (int or float), got {type(value).__name__}: {value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def check_nonnegative_number(name: str, value) -> float:
    """Return ``value`` as a float; raise if it is not a finite number >= 0."""
    if not _is_number(value):
        raise TypeError(f"{name} must be a real number (int or float), got {type(value).__name__}: {value!r}.")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def check_positive_int(name: str, value) -> int:
    """Return ``value``; raise if it is not an int >= 1."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return value


def check_rank_world_size(rank, world_size) -> tuple[int, int]:
    """Return ``(rank, world_size)``; raise unless ``world_size >= 1`` and ``0 <= rank < world_size``."""
    world_size = check_positive_int("world_size", world_size)
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise TypeError(f"rank must be an int, got {type(rank).__name__}: {rank!r}.")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}.")
    return rank, world_size


def check_float_tensor(name: str, value, ndim: int, shape_doc: str) -> torch.Tensor:
    """Return ``value``; raise unless it is a floating-point tensor with ``ndim`` dimensions and no empty one."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {shape_doc}, got {type(value).__name__}.")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}.")
    if value.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_doc} ({ndim} dimensions), got shape {tuple(value.shape)}.")
    if value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}.")
    return value


def check_lengths(name: str, lengths, batch_size: int, max_length: int, device: torch.device) -> torch.Tensor:
    """
    Return ``lengths`` as an int64 tensor ``[batch_size]`` on ``device``; raise unless every value is in
    ``1..max_length``. Accepts an integer tensor or a sequence of ints; floats and bools are refused.
    """
    if isinstance(lengths, torch.Tensor):
        if lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
            raise TypeError(f"{name} must be an integer tensor, got dtype {lengths.dtype}.")
    elif isinstance(lengths, Sequence) and not isinstance(lengths, (str, bytes)):
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in lengths):
            raise TypeError(f"{name} must hold ints, got {[type(n).__name__ for n in lengths]}.")
        lengths = torch.as_tensor(list(lengths), dtype=torch.long)
    else:
        raise TypeError(f"{name} must be an integer tensor or a sequence of ints, got {type(lengths).__name__}.")
    if lengths.ndim != 1 or lengths.shape[0] != batch_size:
        raise ValueError(f"{name} must have shape [B] = [{batch_size}], got shape {tuple(lengths.shape)}.")
    lengths = lengths.to(device=device, dtype=torch.long)
    low, high = int(lengths.min()), int(lengths.max())
    if low < 1 or high > max_length:
        raise ValueError(
            f"{name} must be in 1..L = 1..{max_length} (the text features' last dimension), "
            f"got values in {low}..{high}."
        )
    return lengths
