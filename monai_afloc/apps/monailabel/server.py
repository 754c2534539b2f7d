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
A guard in front of MONAI Label's ``POST /infer/{model}`` route: ``params`` must be a JSON object.

MONAI Label 0.8.5 parses ``params`` with ``json.loads`` and ``dict.update`` before any task runs, so invalid JSON or
a JSON list gives a 500 (or, for a list of pairs, is silently taken as keys). The guard answers 400/422 with a
message, marks requests that upload a file (their temporary copy is then allowed outside the datastore), and calls
MONAI Label's own ``run_inference`` for the rest. It is installed once, by
:meth:`AFLocMONAILabelApp.on_init_complete`, only inside a running server. Without MONAI Label this module imports,
and its functions raise ``OptionalImportError``.
"""

from __future__ import annotations

import logging

from monai.utils import OptionalImportError

from monai_afloc.apps.monailabel.infer import UPLOADED_IMAGE, http_error
from monai_afloc.apps.monailabel.params import AFLocRequestError, parse_params_json

__all__ = ["install_infer_params_guard", "guarded_run_inference"]

logger = logging.getLogger(__name__)

_GUARD_NAME = "afloc_infer_params_guard"

try:  # FastAPI resolves the route's annotations in this module's globals: real imports, when available
    from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, UploadFile
    from monailabel.config import RBAC_USER, settings
    from monailabel.endpoints import infer as infer_endpoint
    from monailabel.endpoints.user.auth import RBAC, User

    ResultType = infer_endpoint.ResultType
    _IMPORT_ERROR: ImportError | None = None
except ImportError as e:
    _IMPORT_ERROR = e


if _IMPORT_ERROR is None:

    async def guarded_run_inference(
        background_tasks: BackgroundTasks,
        model: str,
        image: str = "",
        session_id: str = "",
        params: str = Form("{}"),
        file: UploadFile = File(None),
        label: UploadFile = File(None),
        output: ResultType | None = None,
        user: User = Depends(RBAC(settings.MONAI_LABEL_AUTH_ROLE_USER)),
    ):
        """MONAI Label's ``/infer/{model}`` with ``params`` checked first (same arguments, same answers otherwise)."""
        try:
            parse_params_json(params)
            if not file and not image and not session_id:
                raise AFLocRequestError(400, "no image: pass ?image=ID (an image id of the datastore) or upload file=.")
        except AFLocRequestError as e:
            raise http_error(e) from None
        token = UPLOADED_IMAGE.set(file is not None)
        try:
            return infer_endpoint.run_inference(background_tasks, model, image, session_id, params, file, label, output)
        finally:
            UPLOADED_IMAGE.reset(token)

else:

    async def guarded_run_inference(*args, **kwargs):
        """Needs MONAI Label and FastAPI."""
        raise OptionalImportError(f"the /infer guard needs MONAI Label and FastAPI: {_IMPORT_ERROR}")


def install_infer_params_guard(app=None) -> bool:
    """Put the guarded route first in ``app``'s routes (default: MONAI Label's server app); once. Returns whether
    it was added now."""
    if _IMPORT_ERROR is not None:
        raise OptionalImportError(f"the /infer guard needs MONAI Label and FastAPI: {_IMPORT_ERROR}")
    if app is None:
        from monailabel.app import app as server_app

        app = server_app
    if any(getattr(r, "name", None) == _GUARD_NAME for r in app.router.routes):
        return False
    router = APIRouter()
    router.add_api_route(
        f"{settings.MONAI_LABEL_API_STR}/infer/{{model}}",
        guarded_run_inference,
        methods=["POST"],
        name=_GUARD_NAME,
        summary=f"{RBAC_USER}Run Inference for supported model (params checked by monai_afloc)",
    )
    app.router.routes[:0] = router.routes
    logger.info("monai_afloc: /infer params guard installed")
    return True
