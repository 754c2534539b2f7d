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
"""Fine-tuning glue: start from an AFLoc checkpoint and choose which parts keep training."""

from __future__ import annotations

import torch.nn as nn

__all__ = ["prepare_finetune"]


def prepare_finetune(
    network: nn.Module, freeze_text_encoder: bool = False, freeze_backbone: bool = False, freeze_heads: bool = False
) -> nn.Module:
    """
    Set ``requires_grad`` on an ``AFLoc`` loaded from a checkpoint for fine-tuning on a new modality.

    Args:
        network: an ``AFLoc`` (``image_encoder`` with ``backbone`` and heads, ``text_encoder`` with ``model``).
        freeze_text_encoder: keep the text model fixed (its optional projection still trains).
        freeze_backbone: keep the image backbone fixed (the three projection heads still train).
        freeze_heads: keep the image projection heads fixed too.

    Returns:
        the same network (for use inside a bundle expression).

    Raises:
        TypeError: when ``network`` lacks the AFLoc parts or a flag is not a bool.
    """
    for name, flag in (("freeze_text_encoder", freeze_text_encoder), ("freeze_backbone", freeze_backbone),
                       ("freeze_heads", freeze_heads)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}.")
    image = getattr(network, "image_encoder", None)
    text = getattr(network, "text_encoder", None)
    if not isinstance(network, nn.Module) or image is None or text is None or not hasattr(image, "backbone"):
        raise TypeError(f"network must be an AFLoc with image_encoder.backbone and text_encoder, got {type(network).__name__}.")
    text_model = getattr(text, "model", text)
    for p in text_model.parameters():
        p.requires_grad_(not freeze_text_encoder)
    for p in image.backbone.parameters():
        p.requires_grad_(not freeze_backbone)
    for head in ("local2_embedder", "local_embedder", "global_embedder"):
        if hasattr(image, head):
            for p in getattr(image, head).parameters():
                p.requires_grad_(not freeze_heads)
    return network
