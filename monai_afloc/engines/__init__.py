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
Training glue for MONAI's Ignite engines: AFLoc train/validation iterations, handlers (wall-clock budget, resumable
training checkpoints, own-format best/last model saver, progress bar, model selection on the localization of an
annotated validation split) and a split-aware datalist helper.
"""

from __future__ import annotations

from .amp import AMP_MODES, cpu_has_native_bf16, resolve_amp
from .datalist import image_text_split_datalist
from .finetune import prepare_finetune
from .handlers import (
    AFLocModelSaver,
    AFLocProgressBar,
    CosineLRHandler,
    ResumableCheckpointHandler,
    StepBudgetHandler,
    WallClockBudgetHandler,
    distributed_rank,
    latest_checkpoint,
    saved_training_settings,
    unwrap_network,
)
from .iterations import TEXT_INPUT_KEYS, AFLocEvalIteration, AFLocTrainIteration, prepare_afloc_batch
from .localization import (
    LOCALIZATION_METRICS,
    FollowTrainer,
    LocalizationValidationHandler,
    heatmap_overlay,
    localization_key_metric,
)

__all__ = [
    "TEXT_INPUT_KEYS",
    "prepare_afloc_batch",
    "AFLocTrainIteration",
    "AFLocEvalIteration",
    "WallClockBudgetHandler",
    "StepBudgetHandler",
    "CosineLRHandler",
    "ResumableCheckpointHandler",
    "AFLocModelSaver",
    "AFLocProgressBar",
    "LocalizationValidationHandler",
    "FollowTrainer",
    "LOCALIZATION_METRICS",
    "localization_key_metric",
    "heatmap_overlay",
    "latest_checkpoint",
    "saved_training_settings",
    "unwrap_network",
    "distributed_rank",
    "image_text_split_datalist",
    "AMP_MODES",
    "cpu_has_native_bf16",
    "resolve_amp",
    "prepare_finetune",
]
