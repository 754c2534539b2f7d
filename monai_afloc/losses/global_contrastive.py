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

"""Global (report-level) image-text contrastive loss of AFLoc (DESIGN.md §4, "Global")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

from monai_afloc.losses import distributed
from monai_afloc.losses._checks import check_float_tensor, check_positive_number, check_rank_world_size

__all__ = ["GlobalContrastiveLoss", "cosine_similarity_matrix"]


def cosine_similarity_matrix(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """
    All-pairs cosine similarity ``x_i . y_j / max(|x_i| |y_j|, eps)`` (the norm product is clamped, as in the
    AFLoc/GLoRIA reference, so zero vectors give 0, never NaN).

    Args:
        x: ``[N, D]``.
        y: ``[M, D]``.
        eps: lower bound of the norm product.

    Returns:
        ``[N, M]``.

    Example::

        >>> cosine_similarity_matrix(torch.eye(2), torch.ones(1, 2)).shape
        torch.Size([2, 1])
    """
    norms = torch.linalg.vector_norm(x, dim=1)[:, None] * torch.linalg.vector_norm(y, dim=1)[None, :]
    return (x @ y.t()) / norms.clamp(min=eps)


class GlobalContrastiveLoss(_Loss):
    """
    Symmetric InfoNCE between report-level image and text embeddings:
    ``S[i, j] = logit_scale * cos(image_i, text_j)``, ``loss = CE(S, arange(B)) + CE(S^T, arange(B))``
    (each cross-entropy averaged over its rows).

    With ``world_size > 1`` the embeddings of all ranks are gathered (with gradient) through
    :func:`monai_afloc.losses.distributed.gather_features`; this rank's rows are scored against the columns of all
    ranks, with labels offset by ``rank * B`` (every rank must have the same batch size ``B``).

    Args:
        logit_scale: the temperature's inverse (10 in the reference), > 0.
        eps: lower bound of the norm product in the cosine, > 0.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: the number of ranks sharing negatives.

    Raises:
        TypeError/ValueError: on invalid arguments (see each argument).

    Example::

        >>> loss = GlobalContrastiveLoss()
        >>> loss(torch.randn(4, 16), torch.randn(4, 16)).shape
        torch.Size([])
    """

    def __init__(self, logit_scale: float = 10.0, eps: float = 1e-8, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.logit_scale = check_positive_number("logit_scale", logit_scale)
        self.eps = check_positive_number("eps", eps)
        self.rank, self.world_size = check_rank_world_size(rank, world_size)

    def forward(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        """
        Args:
            image_embeddings: ``[B, D]`` (e.g. ``AFLocKeys.IMAGE_REPORT``).
            text_embeddings: ``[B, D]`` (e.g. ``AFLocKeys.TEXT_REPORT``); row ``i`` matches image ``i``.

        Returns:
            the scalar loss (float32 for half-precision inputs; computed in float32 under ``torch.autocast``).

        Raises:
            TypeError: non-tensor or non-floating-point inputs.
            ValueError: inputs not 2-D, empty, of different shapes or on different devices.
        """
        check_float_tensor("image_embeddings", image_embeddings, 2, "[B, D]")
        check_float_tensor("text_embeddings", text_embeddings, 2, "[B, D]")
        if image_embeddings.shape != text_embeddings.shape:
            raise ValueError(
                "image_embeddings and text_embeddings must have the same shape [B, D], got "
                f"{tuple(image_embeddings.shape)} and {tuple(text_embeddings.shape)}."
            )
        if image_embeddings.device != text_embeddings.device:
            raise ValueError(
                f"inputs must be on one device, got {image_embeddings.device} and {text_embeddings.device}."
            )
        device_type = image_embeddings.device.type
        if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type, enabled=False):  # B x B cosines: cheap, kept in float32
                return self.forward(image_embeddings, text_embeddings)
        all_images = distributed.gather_features(image_embeddings, self.rank, self.world_size)
        all_texts = distributed.gather_features(text_embeddings, self.rank, self.world_size)
        dtype = torch.promote_types(torch.promote_types(image_embeddings.dtype, text_embeddings.dtype), torch.float32)
        images, texts = image_embeddings.to(dtype), text_embeddings.to(dtype)
        batch = images.shape[0]
        labels = torch.arange(batch, device=images.device) + self.rank * batch
        logits_per_image = self.logit_scale * cosine_similarity_matrix(images, all_texts.to(dtype), self.eps)
        if self.world_size == 1:
            logits_per_text = logits_per_image.t()
        else:
            logits_per_text = self.logit_scale * cosine_similarity_matrix(texts, all_images.to(dtype), self.eps)
        return F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)
