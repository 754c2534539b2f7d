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
"""Zero-shot classification with AFLoc: positive vs negative prompt sets per finding (CheXzero style)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.utils import look_up_option

from monai_afloc.inferers.localizer import PromptEncoder, encode_frames, prepare_images
from monai_afloc.inferers.prompts import DEFAULT_FINDING_PROMPTS, finding_prompts
from monai_afloc.inferers.similarity import similarity_map
from monai_afloc.transforms.image.array import AFLocImagePreprocess
from monai_afloc.transforms.image.geometry import valid_frame_masks
from monai_afloc.inference_settings import InferenceSettings
from monai_afloc.utils.enums import AFLocKeys, ZeroShotKeys

__all__ = ["ZeroShotClassifier", "zero_shot_probabilities"]


def zero_shot_probabilities(
    image_reports: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, logit_scale: float = 10.0
) -> torch.Tensor:
    """
    ``softmax(logit_scale · [cos(image, positive_f), cos(image, negative_f)])[0]`` for every image and finding.

    Args:
        image_reports: ``[B, D]`` image report vectors.
        positive, negative: ``[F, D]`` prompt vectors per finding (normalised here).

    Returns:
        ``[B, F]`` probabilities that each finding is present.
    """
    if image_reports.ndim != 2 or positive.shape != negative.shape or positive.shape[-1] != image_reports.shape[-1]:
        raise ValueError(
            f"expected image_reports [B, D] and positive/negative [F, D]; got {tuple(image_reports.shape)}, "
            f"{tuple(positive.shape)}, {tuple(negative.shape)}."
        )
    img = F.normalize(image_reports, dim=1)
    cos_p = img @ F.normalize(positive.to(img.device), dim=1).T
    cos_n = img @ F.normalize(negative.to(img.device), dim=1).T
    return (logit_scale * torch.stack([cos_p, cos_n], dim=-1)).softmax(-1)[..., 0]


class ZeroShotClassifier:
    """
    Per-finding probabilities from positive and negative prompt sets.

    ``mode="prompt"`` (default): each prompt set's embeddings are averaged and L2-normalised; the image report
    vector (normalised) is compared with both and ``p = softmax(logit_scale · [cos_pos, cos_neg])[0]``.
    ``mode="heatmap"``: the score is the maximum of the finding's raw (smoothed, un-rescaled) similarity map over the
    image's valid grid cells, using the averaged positive prompts; useful for detection AUROC, not a probability.

    Args:
        network: an ``AFLoc`` network.
        findings: finding names; default all of :data:`DEFAULT_FINDING_PROMPTS`.
        prompts: optional ``{finding: {"positive": [...], "negative": [...]}}`` overriding/adding prompt sets.
        tokenizer: prompt tokenizer; default the network's own.
        mode: ``"prompt"`` or ``"heatmap"``.
        logit_scale: the temperature of the softmax (10, the training loss's global scale).
        sigma: smoothing for ``mode="heatmap"`` (grid cells).
        image_size: the square frame of the preprocessing.
        batch_size: images encoded per forward pass.
        preprocess: the image chain; default :class:`AFLocImagePreprocess` (``image_size``).
        max_length: prompt token length (97 in the reference).
        region_key: the image output compared with prompts in ``mode="heatmap"``.

    Build it from a checkpoint with :meth:`from_checkpoint` (the checkpoint's frame size, σ and max length).

    ``classifier(images)`` returns ``{"findings": [...], "probabilities" [B, F]`` (prompt mode) or ``"scores"
    [B, F]`` (both modes)``}``.
    """

    def __init__(
        self,
        network: nn.Module,
        findings: Sequence[str] | None = None,
        prompts: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        tokenizer: Any = None,
        mode: str = "prompt",
        logit_scale: float = 10.0,
        sigma: float = 1.5,
        image_size: int = 224,
        batch_size: int = 8,
        preprocess: AFLocImagePreprocess | None = None,
        max_length: int = 97,
        region_key: str = AFLocKeys.IMAGE_SENTENCES,
    ) -> None:
        if not isinstance(network, nn.Module) or not hasattr(network, "encode_image"):
            raise TypeError(f"network must be an AFLoc network (with encode_image), got {type(network).__name__}.")
        self.mode = look_up_option(mode, ("prompt", "heatmap"))
        table = {k: dict(v) for k, v in DEFAULT_FINDING_PROMPTS.items()}
        for name, sets in (prompts or {}).items():
            if not isinstance(sets, Mapping) or not sets.get("positive") or not sets.get("negative"):
                raise ValueError(f"prompts[{name!r}] must hold non-empty 'positive' and 'negative' lists, got {sets!r}.")
            table[name] = {"positive": list(sets["positive"]), "negative": list(sets["negative"])}
        if findings is None:
            findings = list(prompts) if prompts else list(DEFAULT_FINDING_PROMPTS)
        if isinstance(findings, str) or len(findings) == 0:
            raise ValueError(f"findings must be a non-empty list of names, got {findings!r}.")
        self.findings = list(findings)
        self.prompt_sets = {f: table.get(f) or finding_prompts(f) for f in self.findings}
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        self.settings = InferenceSettings(image_size=image_size, sigma=sigma, region_key=region_key,
                                          max_length=max_length)
        self.network = network
        self.logit_scale = float(logit_scale)
        self.sigma = self.settings.sigma
        self.batch_size = batch_size
        self.prompt_encoder = PromptEncoder(network, tokenizer, max_length=max_length)
        self.preprocess = preprocess if preprocess is not None else AFLocImagePreprocess(size=image_size)
        self._class_vectors: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device | None = None,
        text_model_name_or_path: str | None = None,
        findings: Sequence[str] | None = None,
        prompts: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        mode: str = "prompt",
        logit_scale: float = 10.0,
        batch_size: int = 8,
        **overrides: Any,
    ) -> ZeroShotClassifier:
        """
        The classifier of a checkpoint: its network on ``device`` (``None``: CPU) with the checkpoint's frame size,
        σ and max length (see :meth:`TextPromptLocalizer.from_checkpoint
        <monai_afloc.inferers.TextPromptLocalizer.from_checkpoint>`; the same ``overrides``, ``None`` keeps the
        saved value).

        Example::

            >>> clf = ZeroShotClassifier.from_checkpoint("models/best", findings=["Pleural Effusion"])
        """
        from monai_afloc.checkpoint import load_afloc_for_inference

        net, settings = load_afloc_for_inference(path, device, text_model_name_or_path, **overrides)
        return cls(net, findings=findings, prompts=prompts, mode=mode, logit_scale=logit_scale,
                   sigma=settings.sigma, image_size=settings.image_size, batch_size=batch_size,
                   max_length=settings.max_length, region_key=settings.region_key)

    def class_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Averaged, normalised positive and negative prompt vectors, ``[F, D]`` each (computed once)."""
        if self._class_vectors is None:
            pos, neg = [], []
            for f in self.findings:
                pos.append(F.normalize(F.normalize(self.prompt_encoder(self.prompt_sets[f]["positive"]), dim=1).mean(0), dim=0))
                neg.append(F.normalize(F.normalize(self.prompt_encoder(self.prompt_sets[f]["negative"]), dim=1).mean(0), dim=0))
            self._class_vectors = (torch.stack(pos), torch.stack(neg))
        return self._class_vectors

    def __call__(self, images: Any) -> dict[str, Any]:
        frames, geometries, names = prepare_images(images, self.preprocess)
        regions, reports = encode_frames(self.network, frames, self.batch_size, self.settings.region_key)
        pos, neg = (v.to(reports.device) for v in self.class_vectors())
        K = ZeroShotKeys
        result: dict[str, Any] = {K.FINDINGS: list(self.findings), K.SOURCES: names}
        result[K.PROBABILITIES] = zero_shot_probabilities(reports, pos, neg, self.logit_scale)
        if self.mode == "heatmap":
            sim = similarity_map(regions, pos, sigma=self.sigma)  # [B, F, h, w]
            valid = valid_frame_masks(geometries, device=sim.device).float()
            valid = F.interpolate(valid, size=sim.shape[-2:], mode="area") > 0.5
            result[K.SCORES] = torch.where(valid, sim, torch.full_like(sim, -torch.inf)).amax(dim=(-2, -1))
        else:
            result[K.SCORES] = result[K.PROBABILITIES]
        return result
