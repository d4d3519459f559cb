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
full=0
args=()
for arg in "$@"; do
    if [ "$arg" = --full ]; then full=1; else args+=("$arg"); fi
done
# The fast tier in two pytest-xdist workers: tests that read the session's shared sweep share a
# worker, every other test its file's (tests/conftest.py). A later `-n 0` among the arguments
# runs it in one process.
rc=0
python -m pytest -n 2 --dist loadgroup ${args[@]+"${args[@]}"} || rc=$?
if [ "$full" = 1 ]; then
    # The long tier (tests marked `full`), one test at a time: its crash campaigns kill drivers
    # at chosen moments and its clusters share the machine's two cores.
    python -m pytest --full -m full ${args[@]+"${args[@]}"} || rc=$?
fi
exit $rc
