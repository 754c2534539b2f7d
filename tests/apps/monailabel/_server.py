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
"""Test helpers: start a real MONAI Label server with the AFLoc sample app in a subprocess, stop it by PID."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

__all__ = ["HAS_MONAILABEL", "REQUIRED", "skip_without_monailabel", "check_monailabel", "free_port", "ServerProcess",
           "REPO_ROOT", "SAMPLE_APP"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SAMPLE_APP = os.path.join(REPO_ROOT, "sample_apps", "monailabel_afloc")
HAS_MONAILABEL = importlib.util.find_spec("monailabel") is not None
#: CI sets MONAI_AFLOC_REQUIRE_MONAILABEL=1 in the MONAI Label venv: the tests then fail instead of skipping
REQUIRED = os.environ.get("MONAI_AFLOC_REQUIRE_MONAILABEL", "") == "1"


def skip_without_monailabel(obj):
    """Skip when monailabel is not installed, unless MONAI_AFLOC_REQUIRE_MONAILABEL=1 (then the test fails)."""
    return unittest.skipIf(not HAS_MONAILABEL and not REQUIRED, "optional module not present: monailabel")(obj)


def check_monailabel() -> None:
    if not HAS_MONAILABEL:
        raise RuntimeError("MONAI_AFLOC_REQUIRE_MONAILABEL=1 but monailabel is not importable in this interpreter "
                           f"({sys.executable}); build its venv with .ci/monailabel.sh.")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """
    ``python -m monailabel.main start_server`` on a free localhost port with a copy of the sample app (MONAI Label
    writes model/, logs/, lib/, bin/ into the app folder) under ``workdir``; ``start()`` waits for ``/info/``.
    """

    def __init__(self, workdir: str, studies: str, conf: dict[str, str], timeout: float = 180.0) -> None:
        self.workdir, self.studies, self.conf, self.timeout = workdir, studies, conf, timeout
        self.app_dir = os.path.join(workdir, "app")
        self.log_path = os.path.join(workdir, "server.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.start_seconds = float("nan")

    def start(self) -> "ServerProcess":
        import requests

        ignore = shutil.ignore_patterns("model", "logs", "lib", "bin", "__pycache__")
        shutil.copytree(SAMPLE_APP, self.app_dir, ignore=ignore)
        cmd = [sys.executable, "-m", "monailabel.main", "start_server", "--app", self.app_dir, "--studies",
               self.studies, "--host", "127.0.0.1", "--port", str(self.port)]
        for k, v in self.conf.items():
            cmd += ["--conf", k, v]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH", "")) if p)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["MONAI_LABEL_DATASTORE_AUTO_RELOAD"] = "false"  # fixtures are written before the start
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/info/", timeout=2).status_code == 200:
                    self.start_seconds = time.perf_counter() - t0
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"no /info/ answer within {self.timeout} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the server's PID, SIGKILL after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
