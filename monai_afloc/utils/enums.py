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

"""String enums shared across monai_afloc (output keys, options)."""

from __future__ import annotations

from monai.utils import StrEnum

__all__ = ["AFLocKeys", "LossKeys", "LocalizerKeys", "ZeroShotKeys"]


class AFLocKeys(StrEnum):
    """
    Keys of the dictionaries returned by the AFLoc networks and consumed by :class:`monai_afloc.losses.AFLocLoss`.

    Image side (from :class:`monai_afloc.networks.nets.AFLocImageEncoder`):

    - ``IMAGE_WORDS``: word-level region embeddings ``[B, D, h2, w2]`` (layer2 projection).
    - ``IMAGE_SENTENCES``: sentence-level region embeddings ``[B, D, h3, w3]`` (layer3 projection).
    - ``IMAGE_REPORT``: report-level image vector ``[B, D]`` (pooled layer4 projection).

    Text side (from :class:`monai_afloc.networks.nets.AFLocTextEncoder`):

    - ``TEXT_WORDS``: word embeddings ``[B, D, L]``, ``WORD_LENGTHS`` ``[B]`` (CLS + words).
    - ``TEXT_SENTENCES``: sentence embeddings ``[B, D, L]``, ``SENTENCE_LENGTHS`` ``[B]`` (CLS + sentences).
    - ``TEXT_REPORT``: report vector ``[B, D]``.
    """

    IMAGE_WORDS = "image_words"
    IMAGE_SENTENCES = "image_sentences"
    IMAGE_REPORT = "image_report"
    TEXT_WORDS = "text_words"
    WORD_LENGTHS = "word_lengths"
    TEXT_SENTENCES = "text_sentences"
    SENTENCE_LENGTHS = "sentence_lengths"
    TEXT_REPORT = "text_report"


class LossKeys(StrEnum):
    """Keys of the dictionary returned by :class:`monai_afloc.losses.AFLocLoss`."""

    LOSS = "loss"
    GLOBAL = "global_loss"
    SENTENCE = "sentence_loss"
    WORD = "word_loss"


class LocalizerKeys(StrEnum):
    """
    Keys of the dictionary returned by :class:`monai_afloc.inferers.TextPromptLocalizer` (``str`` values, so plain
    strings index it too).

    ``HEATMAPS`` ``[B, K, H, W]`` in the original geometry (a list when sizes differ), ``FRAME_HEATMAPS``
    ``[B, K, S, S]`` and ``FRAME_VALID`` ``[B, 1, S, S]`` in the network frame, ``SCORES`` ``[B, K]`` (cosine of the
    image and prompt report vectors), ``GEOMETRIES``, ``OUTPUT_SIZES`` (per image, the ``(H, W)`` of its heatmaps and
    masks: the original size, or less under ``max_output_size``), ``PROMPTS``, ``SOURCES``, ``THRESHOLD``, and on
    request ``MASKS`` and ``BOXES`` (always in original pixels).
    """

    HEATMAPS = "heatmaps"
    FRAME_HEATMAPS = "frame_heatmaps"
    FRAME_VALID = "frame_valid"
    SCORES = "scores"
    GEOMETRIES = "geometries"
    OUTPUT_SIZES = "output_sizes"
    PROMPTS = "prompts"
    SOURCES = "sources"
    THRESHOLD = "threshold"
    MASKS = "masks"
    BOXES = "boxes"


class ZeroShotKeys(StrEnum):
    """
    Keys of the dictionary returned by :class:`monai_afloc.inferers.ZeroShotClassifier`: ``FINDINGS``, ``SOURCES``,
    ``PROBABILITIES`` ``[B, F]`` (prompt-set softmax, both modes) and ``SCORES`` ``[B, F]`` (the mode's ranking
    score: the probabilities in ``mode="prompt"``, the smoothed map's maximum in ``mode="heatmap"``).
    """

    FINDINGS = "findings"
    SOURCES = "sources"
    PROBABILITIES = "probabilities"
    SCORES = "scores"
