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
MONAI Label app folder for AFLoc text-prompted pre-annotation (all logic in ``monai_afloc.apps.monailabel``).

    python -m monailabel.main start_server --app sample_apps/monailabel_afloc --studies /data/cxr \
        --host 127.0.0.1 --port 8000 --conf checkpoint /models/afloc

MONAI Label picks the class of this module whose direct base is ``MONAILabelApp``: the imported
``AFLocMONAILabelApp``. To customise, subclass ``MONAILabelApp`` here, or edit the ``--conf`` values
(see docs/monailabel.md).
"""

from __future__ import annotations

from monai_afloc.apps.monailabel.app import AFLocMONAILabelApp

__all__ = ["AFLocMONAILabelApp"]
