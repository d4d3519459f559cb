"""Regenerate the pictures of the documentation site (docs/img/*.png) from real runs.

    python scripts/docs_figures.py                 # train what is missing, redraw, copy into docs/img/
    python scripts/docs_figures.py --work DIR      # keep the runs there (default: a cache folder)
    python scripts/docs_figures.py --fresh         # train everything again

Two real, small jobs, each through the groktune command line, at nice 10:

1. the demo sweep (configs/demo_sweep.yaml: 16 trials of TPE + ASHA on x+y mod 23) and its report;
   the report's figures become docs/img/report_*.png (the steps map with its colour bar in steps,
   the phase diagram, the Kaplan-Meier curve, the best trial's learning curves, steps against each
   searched hyperparameter);
2. GrokBench on two published settings that reproduce quickly (Grokfast EMA and Clip-to-Grok,
   2 seeds each); the bench's val-accuracy figures become docs/img/bench_*.png;
3. GrokBench's committed run summaries (benchmarks/grokbench/runs, copied there by
   scripts/bench_summaries.py): `groktune bench --table-only` rewrites benchmarks/grokbench's table
   and figures from them, training nothing, and the Liu phase diagram, the weight-decay and
   initial-scale plots and each setting's val curves become docs/img/grokbench_*.png
   (`--only grokbench` draws just these, in seconds).

A rerun with the same --work folder trains nothing and only redraws (the sweep is reused, the
bench resumes with nothing left to run). The sweep and the four runs take from minutes to half an
hour on 2 CPU cores, depending on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
DEFAULT_WORK = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "groktune" / "docs-figures"
SWEEP_CONFIG = ROOT / "configs" / "demo_sweep.yaml"
SWEEP_NAME = "demo_sweep"
BENCH_SETTINGS = ("grokfast_ema", "clip_to_grok")
BENCH_SEEDS = 2
COMMITTED_BENCH = ROOT / "benchmarks" / "grokbench"
COMMITTED_SEEDS = 3  # the seeds the committed summaries hold (the index's max_seeds caps each setting)
# report figure -> docs/img name
REPORT_FIGURES = {"steps_map.png": "report_steps_map.png", "phase_diagram.png": "report_phase_diagram.png",
                  "km_all.png": "report_km_all.png", "steps_by_param.png": "report_steps_by_param.png"}


def groktune(*args: str) -> None:
    """Run one groktune command (this checkout's), failing loudly."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], cwd=ROOT, env=env, check=True)


def report_figures(work: Path, fresh: bool) -> list[Path]:
    sweep = work / "sweeps" / SWEEP_NAME
    if fresh and sweep.exists():
        shutil.rmtree(sweep)
    if not (sweep / "trials.parquet").exists():
        shutil.rmtree(sweep, ignore_errors=True)
        groktune("sweep", str(SWEEP_CONFIG), "--storage", str(sweep.parent), "--quiet")
    report = work / "report"
    groktune("report", str(sweep), "--out", str(report), "--force")
    figures = report / "figures"
    copied = []
    for name, target in REPORT_FIGURES.items():
        if (figures / name).exists():
            copied.append(copy(figures / name, target))
    best = sorted(figures.glob("curves_*_best.png"))
    if best:
        copied.append(copy(best[0], "report_curves_best.png"))
    return copied


def bench_figures(work: Path, fresh: bool) -> list[Path]:
    bench = work / "bench"
    if fresh and bench.exists():
        shutil.rmtree(bench)
    resume = ["--resume"] if bench.exists() else []
    groktune("bench", *BENCH_SETTINGS, "--seeds", str(BENCH_SEEDS), "--out", str(bench), *resume)
    return [copy(bench / "figures" / f"{name}_val.png", f"bench_{name}_val.png") for name in BENCH_SETTINGS]


def committed_bench_figures() -> list[Path]:
    """The table and figures of the committed run summaries (no training), copied into docs/img."""
    groktune("bench", "--seeds", str(COMMITTED_SEEDS), "--out", str(COMMITTED_BENCH.relative_to(ROOT)), "--table-only")
    figures = COMMITTED_BENCH / "figures"
    return [copy(png, f"grokbench_{png.name}") for png in sorted(figures.glob("*.png"))]


def copy(src: Path, name: str) -> Path:
    IMG.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, IMG / name)
    return IMG / name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where the runs are kept")
    parser.add_argument("--fresh", action="store_true", help="train everything again")
    parser.add_argument("--only", choices=("report", "bench", "grokbench"), help="draw only one of the three")
    args = parser.parse_args(argv)
    os.nice(10)  # a background job on a shared machine; the children inherit it
    args.work.mkdir(parents=True, exist_ok=True)
    written = []
    if args.only in (None, "report"):
        written += report_figures(args.work, args.fresh)
    if args.only in (None, "bench"):
        written += bench_figures(args.work, args.fresh)
    if args.only in (None, "grokbench"):
        written += committed_bench_figures()
    for path in written:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
