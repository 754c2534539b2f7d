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

"""A learned, resolution-free position term for region embeddings (not in the AFLoc reference)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from monai_afloc.utils.validation import check_int

__all__ = ["FourierPositionEncoding"]


class FourierPositionEncoding(nn.Module):
    """
    Adds ``W · φ(x, y)`` to a feature map, where ``φ`` are sines and cosines of the cell-centre coordinates and ``W``
    a learned linear map (no bias) to the feature width.

    The coordinates are normalised to ``[-1, 1]`` over the grid (cell centres), so the same weights apply to any grid
    size: a model trained on a 16x16 grid gives the same position term, resampled, on a 32x32 grid. With
    ``n_frequencies = K`` the features are ``sin(k·π/2·x), cos(k·π/2·x), sin(k·π/2·y), cos(k·π/2·y)`` for
    ``k = 1..K`` (``4K`` features); ``K = 4`` resolves about an eighth of the image.

    Why: a region embedding from a CNN knows its position only through padding effects; reports name positions
    ("left apex", "right lower zone") and findings have typical places, and this term lets the text–region alignment
    learn both from the reports alone (no annotation is involved).

    Args:
        channels: width ``D`` of the feature map it is added to.
        n_frequencies: ``K`` >= 1.
        init_std: standard deviation of the initial weights (small: the term starts near zero).

    Example::

        >>> pos = FourierPositionEncoding(channels=8, n_frequencies=2)
        >>> pos(torch.zeros(2, 8, 4, 5)).shape
        torch.Size([2, 8, 4, 5])

    Raises:
        TypeError, ValueError: a non-int or non-positive ``channels`` / ``n_frequencies``; an input that is not
            ``[B, channels, H, W]``.
    """

    def __init__(self, channels: int, n_frequencies: int = 4, init_std: float = 0.02) -> None:
        super().__init__()
        self.channels = check_int("channels", channels, minimum=1)
        self.n_frequencies = check_int("n_frequencies", n_frequencies, minimum=1)
        self.proj = nn.Linear(4 * self.n_frequencies, self.channels, bias=False)
        nn.init.normal_(self.proj.weight, std=float(init_std))

    def features(self, height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The ``[height, width, 4K]`` sine/cosine features of the cell centres (float32)."""
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * (2.0 / height) - 1.0
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * (2.0 / width) - 1.0
        freq = torch.arange(1, self.n_frequencies + 1, device=device, dtype=torch.float32) * (math.pi / 2)
        fx, fy = xs[:, None] * freq, ys[:, None] * freq  # [W, K], [H, K]
        x_feat = torch.cat([fx.sin(), fx.cos()], dim=-1)[None, :, :].expand(height, -1, -1)
        y_feat = torch.cat([fy.sin(), fy.cos()], dim=-1)[:, None, :].expand(-1, width, -1)
        return torch.cat([x_feat, y_feat], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, channels, H, W]`` -> ``x`` plus the position term (same shape and dtype)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}.")
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must be [B, {self.channels}, H, W], got shape {tuple(x.shape)}.")
        term = self.proj(self.features(x.shape[2], x.shape[3], x.device).to(self.proj.weight.dtype))
        return x + term.permute(2, 0, 1).unsqueeze(0).to(x.dtype)
