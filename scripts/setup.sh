#!/usr/bin/env bash
# Create .venv and install groktune with its test extras. Idempotent; sourced by demo.sh and test.sh.
# A second run changes nothing and prints nothing: the install is skipped while the stamp
# .venv/.groktune-installed is newer than pyproject.toml and the packages import.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
STAMP=.venv/.groktune-installed
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && python -c "import orchestrator, groktune" 2>/dev/null; then
  return 0 2>/dev/null || exit 0  # sourced or run: either way, nothing to do
fi
python -m pip install -q --upgrade pip
# torch first: on the groktune dev/CI machines 2.13.0 is a local CPU wheel; the project itself
# asks only for torch>=2.3, so this install is kept and no CUDA packages are pulled.
python -m pip install -q "torch==${GROKTUNE_TORCH_VERSION:-2.13.0}"
# setuptools' "Editable installation" notice is information, not a warning (it says the same on
# every editable install); real build warnings still print.
PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q -e ".[test]"
touch "$STAMP"
