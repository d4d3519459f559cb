#!/usr/bin/env bash
# Set up and run the test suite: fast unit tests and the integration tests that really start Ray
# and train (about 10 minutes on 2 cores). `scripts/test.sh --full` adds the long tier (tests
# marked `full`: real Slurm on one and two nodes, three Ray nodes, the crash campaigns, the
# benchmark's tiny run); CI runs that. Other arguments go to pytest, e.g.
# `scripts/test.sh -m "not slow"` for the unit tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m pytest "$@"   # --full is an option of this suite's pytest (tests/conftest.py)
