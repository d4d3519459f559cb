"""`groktune train CONFIG [--set K=V ...] [--out DIR] [--resume] [--force]`: one run into a run dir.

What it does is orchestrator.run.train's (all-or-nothing: nothing is written before the config
and the environment are checked).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.cli.options import add_config_arguments


def register(sub) -> None:
    p = sub.add_parser("train", help="train one model and write a run directory")
    add_config_arguments(p, sweep=False)
    p.add_argument("--out", type=Path, help="run directory (default runs/NAME-TIMESTAMP)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; the seed, task and model "
                        "must match its config.yaml. On a finished run (result.json present) it says so, "
                        "changes nothing and exits 0")
    p.add_argument("--force", action="store_true",
                   help="allow --out to be a non-empty folder that is not a run folder (its own "
                        "config.yaml or result.json are still never overwritten)")
    p.set_defaults(func=run)


def run(args) -> int:
    from orchestrator.run.train import train_run  # deferred: torch, loaded only when a run trains

    return train_run(args.config, args.overrides, args.out, args.resume, args.force)
