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
MONAI Deploy App SDK integration: AFLoc as a DICOM-in, DICOM SEG/SR-out application (extra ``deploy``).

Never imported by ``import monai_afloc``. Importing this package without MONAI Deploy works (the operators and the
app are placeholders that raise ``ImportError`` when used); with it, ``monai.deploy`` (and Holoscan) are imported.
See ``docs/deploy.md``.
"""

from __future__ import annotations

from monai_afloc.apps.deploy.app import AFLocDeployApp, main, run_app
from monai_afloc.apps.deploy.config import DEFAULT_APP_CONFIG, load_app_config
from monai_afloc.apps.deploy.operators import has_deploy
from monai_afloc.apps.deploy.predictor import AFLocPredictor, export_deploy_model, load_deploy_model
from monai_afloc.apps.deploy.report import RunReport

__all__ = [
    "has_deploy",
    "AFLocDeployApp",
    "run_app",
    "main",
    "DEFAULT_APP_CONFIG",
    "load_app_config",
    "AFLocPredictor",
    "export_deploy_model",
    "load_deploy_model",
    "RunReport",
]
