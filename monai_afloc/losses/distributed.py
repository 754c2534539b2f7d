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
Cross-rank gathering for the contrastive losses (open_clip style: every rank scores its own rows against the
columns of all ranks, so the negatives come from the global batch).

The losses call :func:`gather_features` through this module (``distributed.gather_features``), so tests can
monkeypatch it to simulate several ranks on one CPU process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["gather_features"]


def gather_features(tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """
    Concatenate ``tensor`` from all ranks along dimension 0, in rank order, keeping the gradient.

    Floating-point tensors are gathered with ``torch.distributed.nn.functional.all_gather`` (its backward sums the
    gradients of every rank into each rank's slice); other tensors (e.g. lengths) with ``all_gather``. The local
    slice of the result is ``tensor`` itself. Every rank must pass a tensor of the same shape.

    Args:
        tensor: the local tensor ``[B, ...]``.
        rank: this process's rank in the default process group.
        world_size: the number of ranks; ``1`` returns ``tensor`` unchanged without touching ``torch.distributed``.

    Returns:
        ``[world_size * B, ...]``, rows ``rank * B .. (rank + 1) * B - 1`` being ``tensor``.

    Raises:
        RuntimeError: ``world_size > 1`` but no default process group is initialised.
        ValueError: ``rank``/``world_size`` disagree with the process group.

    Example::

        all_images = gather_features(image_embeddings, rank=dist.get_rank(), world_size=dist.get_world_size())
    """
    if world_size == 1:
        return tensor
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            f"world_size={world_size} needs an initialised torch.distributed process group, found none "
            "(call torch.distributed.init_process_group first, or use world_size=1)."
        )
    if dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise ValueError(
            f"rank/world_size ({rank}/{world_size}) differ from the process group's "
            f"({dist.get_rank()}/{dist.get_world_size()})."
        )
    if tensor.is_floating_point():
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(tensor.contiguous()), dim=0)
    parts = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(parts, tensor.contiguous())
    parts[rank] = tensor
    return torch.cat(parts, dim=0)
