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

"""Running-mean centring of token features (an option of :class:`monai_afloc.networks.nets.AFLocTextEncoder`)."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["RunningMeanCentering"]


class RunningMeanCentering(nn.Module):
    """
    Subtract a running mean of the valid positions' features: ``x - mean``.

    The mean is a buffer (``mean``, saved with the weights), set from the first batch seen in training mode and then
    moved towards each new training batch's mean with ``momentum``; evaluation mode uses it as it is (and never
    changes it). Sentence encoders are anisotropic — the report vectors of different radiology reports from a frozen
    all-MiniLM-L6-v2 have a mean pairwise cosine of about 0.87 — so contrastive training starts from texts that look
    alike; centred, about 0.0.

    Args:
        dim: feature width ``D``.
        momentum: weight of each new training batch in the running mean, ``0 < momentum <= 1``.

    Example::

        >>> c = RunningMeanCentering(4).train()
        >>> x = torch.ones(2, 3, 4)
        >>> float(c(x, torch.ones(2, 3)).abs().sum())
        0.0
    """

    def __init__(self, dim: int, momentum: float = 0.05) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}.")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum <= 1:
            raise ValueError(f"momentum must be a number in (0, 1], got {momentum!r}.")
        self.momentum = float(momentum)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: ``[B, T, D]`` features.
            mask: ``[B, T]``, nonzero on the valid positions (the only ones the mean is taken over).

        Returns:
            ``x - mean`` (``[B, T, D]``, in ``x``'s dtype), after updating the mean in training mode.
        """
        if x.ndim != 3 or x.shape[-1] != self.mean.numel() or tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"x must be [B, T, {self.mean.numel()}] and mask [B, T], got {tuple(x.shape)} and {tuple(mask.shape)}."
            )
        if self.training:
            with torch.no_grad():
                m = mask.to(x.dtype).unsqueeze(-1)
                batch_mean = ((x.detach() * m).sum((0, 1)) / m.sum().clamp_min(1)).to(self.mean.dtype)
                if bool(self.initialized):
                    self.mean.lerp_(batch_mean, self.momentum)
                else:
                    self.mean.copy_(batch_mean)
                    self.initialized.fill_(True)
        return x - self.mean.to(x.dtype)
