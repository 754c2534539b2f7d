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
The settings a checkpoint's heatmaps depend on, kept with the checkpoint so that every entry point (Python API,
CLI, bundle, MONAI Label, Deploy, demo) builds the same localizer from it.

The smoothing rule is written here once: the reference smooths its 19×19 sentence grid (ResNet-50, 299 px input)
with σ = 1.5 cells; a network whose sentence grid has ``g`` cells gets ``σ = 1.5 · g / 19`` cells, the same width
in image pixels. ``g`` comes from the backbone's strides by arithmetic
(:meth:`~monai_afloc.networks.nets.AFLocImageEncoder.feature_grid_sizes`), never from a forward pass
(docs/design.md §7).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from monai_afloc.utils.enums import AFLocKeys
from monai_afloc.utils.validation import check_int, check_number, check_option

__all__ = [
    "REFERENCE_SIGMA",
    "REFERENCE_SENTENCE_GRID",
    "DEFAULT_IMAGE_SIZE",
    "InferenceSettings",
    "sentence_grid_size",
    "grid_scaled_sigma",
    "default_inference_settings",
]

#: the reference's Gaussian σ, in cells of its sentence grid
REFERENCE_SIGMA = 1.5
#: the reference's sentence grid (ResNet-50 layer3 at a 299 px input)
REFERENCE_SENTENCE_GRID = 19
#: the localizer's frame when nothing else is known (the release's ``inference.py`` sets ``imsize = 224``)
DEFAULT_IMAGE_SIZE = 224

_REGION_KEYS = (AFLocKeys.IMAGE_SENTENCES, AFLocKeys.IMAGE_WORDS)
_TEXT_KEYS = (AFLocKeys.TEXT_REPORT,)


@dataclasses.dataclass(frozen=True)
class InferenceSettings:
    """
    What a localizer or zero-shot classifier needs beyond the weights.

    Args:
        image_size: the square frame of the preprocessing (``AFLocImagePreprocess(size=...)``), >= 32.
        sigma: Gaussian σ in sentence-grid cells (>= 0; 0 disables smoothing).
        threshold: mask/box threshold on the [-1, 1] heatmaps.
        region_key: the image output compared with prompts (``image_sentences`` in the reference).
        text_key: the text output used as the prompt vector (``text_report``).
        max_length: prompt token length (97 in the reference).

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range (the message names it).
    """

    image_size: int = DEFAULT_IMAGE_SIZE
    sigma: float = REFERENCE_SIGMA
    threshold: float = 0.5
    region_key: str = str(AFLocKeys.IMAGE_SENTENCES)
    text_key: str = str(AFLocKeys.TEXT_REPORT)
    max_length: int = 97

    def __post_init__(self) -> None:
        check_int("image_size", self.image_size, minimum=32)
        check_number("sigma", self.sigma, minimum=0)
        check_number("threshold", self.threshold, minimum=-1, maximum=1)
        check_option("region_key", self.region_key, _REGION_KEYS)
        check_option("text_key", self.text_key, _TEXT_KEYS)
        check_int("max_length", self.max_length, minimum=2)
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "region_key", str(self.region_key))
        object.__setattr__(self, "text_key", str(self.text_key))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], what: str = "inference settings") -> InferenceSettings:
        """Every field required, no other key allowed (``ValueError`` naming the missing or unknown keys)."""
        if not isinstance(values, Mapping):
            raise TypeError(f"{what} must be a mapping, got {type(values).__name__}.")
        names = cls.field_names()
        missing = [n for n in names if n not in values]
        unknown = sorted(str(k) for k in values if k not in names)
        if missing or unknown:
            raise ValueError(f"{what}: missing keys {missing}, unknown keys {unknown}; expected exactly {list(names)}.")
        return cls(**{n: values[n] for n in names})

    def replace(self, network: nn.Module | None = None, **overrides: Any) -> InferenceSettings:
        """
        These settings with ``overrides`` applied (``None`` values are ignored: "keep the saved one").

        A new ``image_size`` without a new ``sigma`` rescales σ to the new sentence grid of ``network`` (same width
        in image pixels), so that a checkpoint's smoothing follows the frame it is run at.
        """
        unknown = sorted(k for k in overrides if k not in self.field_names())
        if unknown:
            raise TypeError(f"unknown inference setting(s) {unknown}; known: {list(self.field_names())}.")
        given = {k: v for k, v in overrides.items() if v is not None}
        new_size = given.get("image_size")
        if network is not None and new_size is not None and "sigma" not in given and new_size != self.image_size:
            check_int("image_size", new_size, minimum=32)
            old_grid, new_grid = sentence_grid_size(network, self.image_size), sentence_grid_size(network, new_size)
            if old_grid is not None and new_grid is not None:
                given["sigma"] = self.sigma * new_grid / old_grid
        return dataclasses.replace(self, **given)


def _image_encoder(network: nn.Module) -> Any:
    from monai_afloc.networks.nets.image_encoder import AFLocImageEncoder

    if isinstance(network, AFLocImageEncoder):
        return network
    enc = getattr(network, "image_encoder", None)
    return enc if isinstance(enc, AFLocImageEncoder) else None


def sentence_grid_size(network: nn.Module, image_size: int) -> int | None:
    """The sentence-grid height of ``network`` (an ``AFLoc`` or ``AFLocImageEncoder``) at ``image_size``; ``None``
    for other networks (e.g. a TorchScript wrapper), whose grid cannot be read without running them."""
    enc = _image_encoder(network)
    if enc is None:
        return None
    return int(enc.feature_grid_sizes(image_size)[1][0])


def grid_scaled_sigma(network: nn.Module, image_size: int) -> float:
    """
    ``REFERENCE_SIGMA · g / REFERENCE_SENTENCE_GRID`` for the sentence grid ``g`` of ``network`` at ``image_size``
    (1.5 for the reference network at any frame size, since it resizes to 299; ``1.5 · 8 / 19`` for a ResNet that
    keeps a 128 px input). Networks whose grid is unknown get the reference's 1.5.

    Example::

        >>> grid_scaled_sigma(AFLocImageEncoder("resnet18", embed_dim=8, input_size=None), 128)  # 8x8 grid
        0.631578947368421
    """
    grid = sentence_grid_size(network, image_size)
    return REFERENCE_SIGMA if grid is None else REFERENCE_SIGMA * grid / REFERENCE_SENTENCE_GRID


def default_inference_settings(network: nn.Module, image_size: int | None = None, **overrides: Any) -> InferenceSettings:
    """
    The settings of a network trained at ``image_size`` (``None``: :data:`DEFAULT_IMAGE_SIZE`): that frame, the
    grid-scaled σ (:func:`grid_scaled_sigma`), threshold 0.5, the reference's keys and ``max_length`` (the text
    encoder's own when it has one). ``overrides`` (``None`` values ignored) replace fields afterwards.
    """
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    check_int("image_size", size, minimum=32)
    text = getattr(network, "text_encoder", None)
    max_length = getattr(text, "max_length", 97)
    base = InferenceSettings(
        image_size=size,
        sigma=grid_scaled_sigma(network, size),
        max_length=max_length if isinstance(max_length, int) and max_length >= 2 else 97,
    )
    return base.replace(network, **overrides)
