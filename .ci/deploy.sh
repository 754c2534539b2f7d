#!/usr/bin/env bash
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
#
# CI job for the MONAI Deploy integration (issue 8), in its own virtual environment:
#   - the venv lives at ${MONAI_AFLOC_VENVS:-$HOME/.cache/monai_afloc_venvs}/deploy and is reused when complete
#     (a marker file records what was installed; delete the folder or set MONAI_AFLOC_REBUILD=1 to rebuild);
#   - torch==2.13.0 is installed FIRST (the CPU wheel on local disk) and pinned by a constraint for every later
#     install, so pip never replaces it with a CUDA build;
#   - then the project with the `deploy` extra (monai-deploy-app-sdk 4.0.0, holoscan-cu13 4.6.0, highdicom) and the
#     test runner;
#   - holoscan needs libcudart.so.13: taken from the CUDA toolkit when the dynamic linker (or /usr/local/cuda*)
#     has it, else from the `nvidia-cuda-runtime` wheel on PyPI, exported through LD_LIBRARY_PATH;
#   - the tests run with MONAI_AFLOC_REQUIRE_DEPLOY=1, so a missing monai.deploy fails instead of skipping, and the
#     job fails if pytest reports any skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV="${MONAI_AFLOC_VENVS:-$HOME/.cache/monai_afloc_venvs}/deploy"
MARKER="$VENV/.monai_afloc_deploy_complete"
TORCH_VERSION=2.13.0
WANT="extras=deploy,plot torch=$TORCH_VERSION sdk=4.0.0 holoscan-cu13=4.6.0 setup.cfg=$(sha256sum setup.cfg | cut -c1-16)"

find_cudart_dir() {
    # prints the folder holding libcudart.so.13, or nothing when the dynamic linker already finds it
    if ldconfig -p 2>/dev/null | grep -q 'libcudart\.so\.13 '; then return 0; fi
    for d in /usr/local/cuda-13*/lib64 /usr/local/cuda/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib; do
        if [ -e "$d/libcudart.so.13" ]; then echo "$d"; return 0; fi
    done
    local wheel_dir
    wheel_dir=$("$VENV/bin/python" - <<'EOF' 2>/dev/null || true
import glob, os, site
for sp in site.getsitepackages():
    for hit in glob.glob(os.path.join(sp, "nvidia", "**", "libcudart.so.13*"), recursive=True):
        print(os.path.dirname(hit)); raise SystemExit
EOF
)
    if [ -n "$wheel_dir" ]; then echo "$wheel_dir"; return 0; fi
    return 1
}

venv_complete() {
    [ -x "$VENV/bin/python" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ] || return 1
    "$VENV/bin/python" - <<EOF >/dev/null 2>&1
import importlib.metadata as md
assert md.version("torch").startswith("$TORCH_VERSION"), md.version("torch")
assert md.version("monai-deploy-app-sdk") == "4.0.0"
assert md.version("holoscan-cu13") == "4.6.0"
import highdicom, pydicom, pytest, parameterized, matplotlib, yaml, monai_afloc  # noqa: F401
EOF
}

if [ "${MONAI_AFLOC_REBUILD:-0}" = "1" ] || ! venv_complete; then
    echo "deploy venv: building $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
    PIP="$VENV/bin/python -m pip"
    nice -n 10 $PIP install -q --upgrade pip setuptools wheel
    # 1) torch first, the CPU wheel; then pin it for everything that follows
    nice -n 10 $PIP install -q "torch==$TORCH_VERSION"
    "$VENV/bin/python" -c "import torch, sys; v = torch.__version__; print('torch', v); \
sys.exit(0 if (torch.version.cuda is None) else 'a CUDA torch was installed: ' + v)"
    CONSTRAINTS="$VENV/constraints-deploy.txt"
    echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"
    # 2) the project with the deploy extra + the test runner (only what tests/apps/deploy needs)
    nice -n 10 $PIP install -q -c "$CONSTRAINTS" -e ".[deploy,plot]" "pytest>=7" "parameterized>=0.9"
    # 3) libcudart.so.13 for holoscan: system CUDA toolkit, else the PyPI runtime wheel
    if ! find_cudart_dir >/dev/null; then
        echo "deploy venv: libcudart.so.13 not found on the system; installing nvidia-cuda-runtime from PyPI"
        nice -n 10 $PIP install -q -c "$CONSTRAINTS" "nvidia-cuda-runtime>=13,<14"
    fi
    "$VENV/bin/python" -c "import torch; assert torch.version.cuda is None, torch.__version__"
    echo "$WANT" > "$MARKER"
else
    echo "deploy venv: reusing $VENV"
fi

if ! CUDART_DIR=$(find_cudart_dir); then
    echo "error: libcudart.so.13 (needed by holoscan) not found" >&2
    exit 1
fi
if [ -n "$CUDART_DIR" ]; then export LD_LIBRARY_PATH="$CUDART_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi

export MONAI_AFLOC_REQUIRE_DEPLOY=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
set +e
"$VENV/bin/python" -m pytest -q -rs tests/apps/deploy 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then exit "$status"; fi
if grep -Eq '[0-9]+ skipped' "$LOG"; then
    echo "error: deploy tests were skipped in the deploy venv (see the reasons above)" >&2
    exit 1
fi
if ! grep -Eq '[0-9]+ passed' "$LOG"; then
    echo "error: no deploy test ran" >&2
    exit 1
fi
