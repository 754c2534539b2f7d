#!/usr/bin/env bash
# MONAI Label integration CI: build (or reuse) a separate venv with monai_afloc[monailabel] and run its tests there.
#
# MONAI Label 0.8.5 cannot share the core environment: it pulls torchvision (torch 2.14.1, numpy < 2) and its
# pydicom-seg needs pydicom < 3 (and dicomweb-client < 0.60, pynetdicom < 3). The `test` extra cannot be installed
# beside it either (jsonschema >= 4 vs pydicom-seg's jsonschema < 4), so only the test runner is added.
# The tests are required to run here: MONAI_AFLOC_REQUIRE_MONAILABEL=1 turns their skip into a failure.
#
# Usage: .ci/monailabel.sh            (venv at ${MONAI_AFLOC_VENVS:-$HOME/.cache/monai_afloc_venvs}/monailabel)
#        REBUILD=1 .ci/monailabel.sh  (build from scratch)
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
VENV="${MONAI_AFLOC_VENVS:-$HOME/.cache/monai_afloc_venvs}/monailabel"
PY="${PYTHON:-python3}"
PINS=("torch==2.14.1" "torchvision==0.29.1" "numpy<2" "pydicom<3" "dicomweb-client<0.60" "pynetdicom<3")
# the venv is reused when it was completed for the same pins and the same setup.cfg
STAMP_WANT="$(printf '%s\n' "${PINS[@]}" | cat - setup.cfg | sha256sum | cut -c1-16)"
STAMP_FILE="$VENV/.monai_afloc_complete"

if [[ "${REBUILD:-0}" == "1" ]]; then rm -rf "$VENV"; fi
if [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP_WANT" ]] \
    && "$VENV/bin/python" -c "import monailabel, monai_afloc, pytest, parameterized" 2>/dev/null; then
    echo "reusing $VENV"
else
    if [[ -f "$STAMP_FILE" ]]; then why="setup.cfg or pins changed, or an import failed"; else why="no complete venv"; fi
    echo "building $VENV ($why)"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
    # torch 2.14.1 first (a large CUDA build that also runs on CPU), then MONAI Label with its pins
    "$VENV/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1"
    "$VENV/bin/pip" install -q -e ".[monailabel,plot]" "${PINS[@]}" "pytest>=7" "parameterized>=0.9"
    "$VENV/bin/pip" check
    echo "$STAMP_WANT" > "$STAMP_FILE"
fi
"$VENV/bin/python" -c "import monailabel, torch, numpy, pydicom; print('monailabel', monailabel.__version__, \
'torch', torch.__version__, 'numpy', numpy.__version__, 'pydicom', pydicom.__version__)"
MONAI_AFLOC_REQUIRE_MONAILABEL=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" \
    "$VENV/bin/python" -m pytest -q tests/apps/monailabel -p no:cacheprovider
