"""`groktune bench [SETTINGS...] [--seeds N] [--out DIR] [--steps-scale F] [--resume]`: GrokBench.

Runs published grokking settings (configs/bench/index.yaml) over seeds and writes DIR/table.md,
table.csv, bench.json and figures/, with one `groktune train` folder per run under DIR/runs.
Every run's config is validated before DIR is created; an existing non-empty DIR is refused
unless --resume, which keeps its finished runs, continues interrupted ones from their
checkpoints and rewrites only the derived table and figures (never a run's files).
"""

from __future__ import annotations

import math
import shlex
import time
from pathlib import Path

from groktune.errors import UserError
from groktune.layout import METRICS

MAX_SEEDS = 100
MAX_SCALE = 100.0


def register(sub) -> None:
    p = sub.add_parser("bench", help="reproduce published grokking results over seeds and write a table")
    p.add_argument("settings", nargs="*", metavar="SETTING",
                   help="settings of the bench index to run (default: all)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per setting and grid point (default 5; "
                   "a setting's max_seeds in the index caps it)")
    p.add_argument("--out", type=Path, help="bench folder (default bench-TIMESTAMP); must be new or empty")
    p.add_argument("--steps-scale", type=float, default=1.0, dest="steps_scale",
                   help="multiply every config's train.steps budget by this (e.g. 0.1 for a quick look)")
    p.add_argument("--resume", action="store_true",
                   help="continue in an existing --out: keep finished runs, continue interrupted ones, "
                        "rewrite the table and figures")
    p.add_argument("--table-only", action="store_true", dest="table_only",
                   help="train nothing: rewrite the table and figures of an existing --out from the runs "
                        "it holds (an interrupted run counts as stopped at its last eval; runs never "
                        "started are left out)")
    p.add_argument("--index", type=Path, help="bench index (default configs/bench/index.yaml: orchestrator.bench.INDEX)")
    p.set_defaults(func=run)


def _check_args(args) -> Path:
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds: got {args.seeds}, must be in [1, {MAX_SEEDS}]")
    if not (math.isfinite(args.steps_scale) and 0 < args.steps_scale <= MAX_SCALE):
        raise UserError(f"--steps-scale: got {args.steps_scale}, must be in (0, {MAX_SCALE:g}]")
    out = args.out or Path(f"bench-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, expected a folder")
    keep = args.resume or args.table_only
    if keep and not out.is_dir():
        raise UserError(f"--{'resume' if args.resume else 'table-only'}: {out}: no such bench folder")
    if not keep and out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out {out}: not empty; choose a new folder or pass --resume to continue it")
    return out


def _command(args, out: Path) -> str:
    """The command line that reproduces this bench (recorded with the table)."""
    words = ["groktune", "bench", *args.settings, "--seeds", str(args.seeds), "--out", str(out)]
    if args.steps_scale != 1.0:
        words += ["--steps-scale", f"{args.steps_scale:g}"]
    if args.table_only:
        words.append("--table-only")
    if args.index is not None:
        words += ["--index", str(args.index)]
    return shlex.join(words)


def run(args) -> int:
    # deferred: analysis (pandas, matplotlib) loads only when this command runs; `groktune --help` stays fast
    from orchestrator.bench import INDEX, collect, finished, load_index, machine_meta, plan_runs, run_one, validate_plans, write_outputs

    out = _check_args(args)
    settings = load_index(args.index or INDEX)
    plans = plan_runs(settings, list(args.settings), args.seeds, args.steps_scale, out)
    validate_plans(plans)  # every config and override, before DIR is created
    out.mkdir(parents=True, exist_ok=True)
    start = machine_meta()
    meta = {"command": _command(args, out), "started": start["time"], "load_start": start["load"], "runs": len(plans)}
    not_run: tuple[str, ...] = ()
    if args.table_only:  # the runs that exist; a planned run never started is left out (and said so)
        missing = [p for p in plans if not (p.out / METRICS).is_file() or not (p.out / METRICS).stat().st_size]
        if len(missing) == len(plans):
            raise UserError(f"--table-only: {out}: holds none of the {len(plans)} planned runs")
        for plan in missing:
            print(f"missing (left out of the table): {plan.out}")
        planned = list(dict.fromkeys(p.setting for p in plans))
        plans = [p for p in plans if p not in missing]
        not_run = tuple(name for name in planned if name not in {p.setting for p in plans})  # a row each saying why
        plans_to_run = []
    else:
        plans_to_run = plans
    for i, plan in enumerate(plans_to_run, 1):
        print(f"[{i}/{len(plans)}] {plan.setting} {' '.join(plan.overrides)}" + (" (kept)" if finished(plan) else ""),
              flush=True)
        run_one(plan, args.resume)
    end = machine_meta()
    meta.update(finished=end["time"], load_end=end["load"], cpus=end["cpus"])
    written = write_outputs(out, settings, collect(plans), plans, meta, not_run)
    print(f"bench: {len(plans)} runs -> {written[0]}")
    return 0
