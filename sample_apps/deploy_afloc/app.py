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
The AFLoc MONAI Deploy application folder: ``python sample_apps/deploy_afloc -i DICOM_DIR -o OUT -m MODEL``.

The app itself lives in :mod:`monai_afloc.apps.deploy.app`; this folder adds the default app config
(``afloc_app_config.yaml`` beside this file, used when neither ``-c/--config`` nor ``$AFLOC_APP_CONFIG`` is given)
and the files MONAI Deploy's packager expects (``app.yaml``, ``requirements.txt``). See docs/deploy.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from monai_afloc.apps.deploy.app import CONFIG_ENV, AFLocDeployApp, main, split_config_arg

__all__ = ["DEFAULT_CONFIG", "AFLocDeployApp", "run"]

#: the app config shipped with this folder
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "afloc_app_config.yaml")


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``-c``, default the config to :data:`DEFAULT_CONFIG`, run the app; returns the exit status."""
    argv = list(sys.argv if argv is None else argv)
    _, config = split_config_arg(argv)
    if config is None and not os.environ.get(CONFIG_ENV):
        argv += ["-c", DEFAULT_CONFIG]
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
