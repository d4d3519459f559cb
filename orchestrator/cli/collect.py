"""`groktune collect DIR`: rebuild curves.parquet and trials.parquet from Ray's files (also mid-sweep)."""

from __future__ import annotations

from groktune.layout import CURVES, TRIALS


def register(sub) -> None:
    p = sub.add_parser("collect", help="rebuild curves.parquet and trials.parquet of a sweep folder")
    p.add_argument("dir", help="the sweep folder, STORAGE/NAME (a path or file:///PATH; for a bucket sweep, "
                               "URI/NAME names its local working copy)")
    p.set_defaults(func=run)


def run(args) -> int:
    from orchestrator.sweep.results import collect  # deferred: pandas and the configs: loaded only when this command runs
    from orchestrator.storage.location import local_sweep_folder

    path = local_sweep_folder(args.dir)
    curves, trials = collect(path)
    print(f"{len(trials)} trials, {len(curves)} evals -> {path / CURVES}, {path / TRIALS}")
    return 0
