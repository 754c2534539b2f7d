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
The run report of the deploy app: what happened to every file, study and series, written as ``status.json``.

Every problem (an unreadable file, a study without CR/DX series, a 3D series, a failed inference or writer) is logged
once and recorded here; no problem stops the other studies.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from monai_afloc.apps.outputs import save_result_json

__all__ = ["STATUS_FILE", "SeriesStatus", "StudyStatus", "RunReport"]

logger = logging.getLogger("monai_afloc.deploy")

#: the report's file name in the output folder
STATUS_FILE = "status.json"


class SeriesStatus:
    """Status strings of a series."""

    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


class StudyStatus:
    """Status strings of a study."""

    OK = "ok"
    PARTIAL = "partial"
    NO_CR_DX = "no_cr_dx_series"
    FAILED = "failed"


class RunReport:
    """
    Collects per-file, per-study and per-series outcomes; :meth:`write` saves ``status.json``.

    ``status.json``: ``{"status": "ok" | "partial" | "failed" | "no_input", "studies": {uid: {"status", "messages",
    "modalities", "series": {uid: {"status", "message", "modality", "outputs"}}}}, "rejected_files": [{"file",
    "reason"}], "errors": [run-level errors], "elapsed_s"}``.
    """

    def __init__(self) -> None:
        self.studies: dict[str, dict[str, Any]] = {}
        self.rejected_files: list[dict[str, str]] = []
        self.errors: list[str] = []
        self.start = time.perf_counter()
        self.written: str | None = None

    def reject_file(self, path: str, reason: str) -> None:
        logger.warning("input file rejected: %s: %s", path, reason)
        self.rejected_files.append({"file": os.fspath(path), "reason": reason})

    def error(self, message: str) -> None:
        """A run-level error (bad model or config, an operator that failed outside its per-series guard)."""
        logger.error("%s", message)
        self.errors.append(message)

    def study(self, uid: str) -> dict[str, Any]:
        return self.studies.setdefault(str(uid), {"status": None, "messages": [], "modalities": [], "series": {}})

    def study_message(self, uid: str, status: str, message: str) -> None:
        entry = self.study(uid)
        entry["status"] = status
        entry["messages"].append(message)
        logger.warning("study %s: %s", uid, message)

    def series(self, study_uid: str, series_uid: str, **fields: Any) -> dict[str, Any]:
        entry = self.study(study_uid)["series"].setdefault(
            str(series_uid), {"status": None, "message": "", "modality": None, "outputs": {}}
        )
        entry.update(fields)
        return entry

    def series_failed(self, study_uid: str, series_uid: str, status: str, message: str) -> None:
        self.series(study_uid, series_uid, status=status, message=message)
        log = logger.error if status == SeriesStatus.FAILED else logger.warning
        log("study %s series %s %s: %s", study_uid, series_uid, status, message)

    def finalize(self) -> dict[str, Any]:
        statuses = []
        for entry in self.studies.values():
            series = [s["status"] for s in entry["series"].values()]
            if entry["status"] is None:
                if series and all(s == SeriesStatus.OK for s in series):
                    entry["status"] = StudyStatus.OK
                elif any(s == SeriesStatus.OK for s in series):
                    entry["status"] = StudyStatus.PARTIAL
                else:
                    entry["status"] = StudyStatus.FAILED
            statuses.append(entry["status"])
        if self.errors:
            overall = "failed"
        elif not statuses:
            overall = "no_input"
        elif all(s == StudyStatus.OK for s in statuses) and not self.rejected_files:
            overall = "ok"
        elif any(s in (StudyStatus.OK, StudyStatus.PARTIAL) for s in statuses):
            overall = "partial"
        else:
            overall = "failed"
        return {
            "status": overall,
            "studies": self.studies,
            "rejected_files": self.rejected_files,
            "errors": self.errors,
            "elapsed_s": round(time.perf_counter() - self.start, 3),
        }

    def write(self, output_dir: str) -> str:
        os.makedirs(output_dir, exist_ok=True)
        self.written = save_result_json(os.path.join(output_dir, STATUS_FILE), self.finalize())
        return self.written
