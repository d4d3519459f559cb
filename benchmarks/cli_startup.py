"""How long the command line takes to start: `groktune --help`, `groktune status --help`, and
`groktune status` / `groktune collect` of a finished 100-trial sweep folder.

    python benchmarks/cli_startup.py              # 5 runs each; prints the median wall and CPU time
    python benchmarks/cli_startup.py --repeat 3 --trials 100 --evals 40

The sweep folder is written with the sweep's own writers (tests/orchestrator/fake_sweep.py: a
grid over 100 learning rates, 40 evals per trial, every trial ledgered, the driver finished), so
no Ray sweep runs. CPU time (user + sys of the child) is what to compare on a loaded machine;
wall time is what a user waits.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.orchestrator.fake_sweep import write_sweep  # noqa: E402


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the child) of `python -m orchestrator.cli.main ARGV`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *argv], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--evals", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cli_startup_"))
    try:
        sweep = write_sweep(tmp / "sweep", n_trials=args.trials, n_evals=args.evals)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median of {args.repeat} runs")
        for argv in (["--help"], ["status", "--help"], ["status", str(sweep)], ["collect", str(sweep)]):
            runs = [timed(argv) for _ in range(args.repeat)]
            shown = " ".join(a if a != str(sweep) else f"<{args.trials}-trial sweep>" for a in argv)
            print(f"groktune {shown:<32} wall {statistics.median(r[0] for r in runs):6.2f} s   "
                  f"CPU {statistics.median(r[1] for r in runs):6.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
