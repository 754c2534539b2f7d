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

"""AFLoc contrastive losses: global, local (chunked all-pairs) and their sum, with cross-rank negatives."""

from __future__ import annotations

from .afloc_loss import AFLocLoss
from .distributed import gather_features
from .global_contrastive import GlobalContrastiveLoss, cosine_similarity_matrix
from .local_contrastive import LocalAggregation, LocalContrastiveLoss, local_similarities
from .local_mil import MILLocalContrastiveLoss, mil_similarities

__all__ = [
    "AFLocLoss",
    "GlobalContrastiveLoss",
    "LocalAggregation",
    "LocalContrastiveLoss",
    "MILLocalContrastiveLoss",
    "cosine_similarity_matrix",
    "gather_features",
    "local_similarities",
    "mil_similarities",
]
