"""`groktune collect DIR`: rebuild curves.parquet and trials.parquet from Ray's files (also mid-sweep)."""

from __future__ import annotations

from pathlib import Path

from groktune.layout import CURVES, TRIALS


def register(sub) -> None:
    p = sub.add_parser("collect", help="rebuild curves.parquet and trials.parquet of a sweep folder")
    p.add_argument("dir", type=Path, help="the sweep folder, STORAGE/NAME")
    p.set_defaults(func=run)


def run(args) -> int:
    from orchestrator.results import collect  # pandas and the configs: loaded only when this command runs

    curves, trials = collect(args.dir)
    print(f"{len(trials)} trials, {len(curves)} evals -> {args.dir / CURVES}, {args.dir / TRIALS}")
    return 0
