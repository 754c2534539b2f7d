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
from __future__ import annotations

from .localizer import PromptEncoder, TextPromptLocalizer, encode_frames, prepare_images
from .prompts import (
    CHEXPERT_FINDINGS,
    DEFAULT_FINDING_PROMPTS,
    LOCALIZATION_PROMPT_TEMPLATE,
    MS_CXR_FINDINGS,
    clean_prompt,
    finding_prompts,
)
from .similarity import gaussian_kernel1d, gaussian_smooth2d, rescale_to_unit_range, similarity_map, upsample_maps
from .zero_shot import ZeroShotClassifier, zero_shot_probabilities

__all__ = [
    "CHEXPERT_FINDINGS",
    "DEFAULT_FINDING_PROMPTS",
    "LOCALIZATION_PROMPT_TEMPLATE",
    "MS_CXR_FINDINGS",
    "PromptEncoder",
    "TextPromptLocalizer",
    "ZeroShotClassifier",
    "clean_prompt",
    "encode_frames",
    "finding_prompts",
    "gaussian_kernel1d",
    "gaussian_smooth2d",
    "prepare_images",
    "rescale_to_unit_range",
    "similarity_map",
    "upsample_maps",
    "zero_shot_probabilities",
]
