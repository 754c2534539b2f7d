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
"""monai_afloc: AFLoc annotation-free pathology localization as a MONAI extension."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# heavy names resolve on first use, so import monai_afloc stays light
_LAZY = {
    "AFLoc": "monai_afloc.networks.nets",
    "AFLocImageEncoder": "monai_afloc.networks.nets",
    "AFLocTextEncoder": "monai_afloc.networks.nets",
    "afloc_default": "monai_afloc.networks.nets",
    "AFLocLoss": "monai_afloc.losses",
    "load_afloc_checkpoint": "monai_afloc.checkpoint",
    "save_afloc_checkpoint": "monai_afloc.checkpoint",
    "TextPromptLocalizer": "monai_afloc.inferers",
    "ZeroShotClassifier": "monai_afloc.inferers",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'monai_afloc' has no attribute {name!r}")
