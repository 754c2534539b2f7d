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

"""Localization (IoU, Dice, CNR, pointing game, MS-CXR report) and zero-shot classification metrics."""

from __future__ import annotations

from .localization import (
    CNRMetric,
    HeatmapDiceMetric,
    IoUMetric,
    PointingGameMetric,
    compute_cnr,
    compute_dice,
    compute_iou,
    compute_pointing_game,
)
from .report import DEFAULT_THRESHOLDS, localization_report, to_dataframe
from .zero_shot import ZeroShotMetric, compute_zero_shot_metrics

__all__ = [
    "CNRMetric",
    "DEFAULT_THRESHOLDS",
    "HeatmapDiceMetric",
    "IoUMetric",
    "PointingGameMetric",
    "ZeroShotMetric",
    "compute_cnr",
    "compute_dice",
    "compute_iou",
    "compute_pointing_game",
    "compute_zero_shot_metrics",
    "localization_report",
    "to_dataframe",
]
