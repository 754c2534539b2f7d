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
MONAI Label integration: text-prompted pre-annotation with AFLoc (``pip install 'monai-afloc[monailabel]'``).

Never imported by ``import monai_afloc``. Without MONAI Label this package still imports (the request checks in
:mod:`~monai_afloc.apps.monailabel.params` work); building the app or a task then raises MONAI's
``OptionalImportError``.
"""

from __future__ import annotations

from monai_afloc.apps.monailabel.app import (
    BUNDLE_TASK,
    DEFAULT_FINDINGS,
    AFLocAppSettings,
    AFLocMONAILabelApp,
    build_bundle_localizer,
    build_localizer,
    build_network,
)
from monai_afloc.apps.monailabel.infer import (
    AFLocPromptInferTask,
    finding_prompt_text,
    has_monailabel,
    label_from_boxes,
    label_from_heatmaps,
)
from monai_afloc.apps.monailabel.params import AFLocRequestError, OutputKind, parse_params_json

__all__ = [
    "AFLocMONAILabelApp",
    "AFLocAppSettings",
    "AFLocPromptInferTask",
    "AFLocRequestError",
    "BUNDLE_TASK",
    "DEFAULT_FINDINGS",
    "OutputKind",
    "build_bundle_localizer",
    "build_localizer",
    "build_network",
    "finding_prompt_text",
    "has_monailabel",
    "label_from_boxes",
    "label_from_heatmaps",
    "parse_params_json",
]
