"""`groktune sweep CONFIG [--set K=V ...] [--name NAME] [--storage DIR] [--address ADDR] [--resume] [-v | --quiet]`."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("sweep", help="search hyperparameters with Ray Tune (Optuna TPE + ASHA by default)")
    p.add_argument("config", help="experiment YAML with a `search:` section")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override a config value, e.g. --set search.num_samples=24 (repeatable)")
    p.add_argument("--name", help="experiment folder name (default: the config's name)")
    p.add_argument("--storage", type=Path, default=Path("results"), help="parent folder of experiments (default ./results)")
    p.add_argument("--address", help="join this Ray cluster (default RAY_ADDRESS, else an embedded local Ray)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in STORAGE/NAME after its driver died")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="show Ray Tune's own trial tables and logging instead of the progress line (-vv: more)")
    loud.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(func=run)


def verbosity(args) -> int:
    """orchestrator.console's QUIET / NORMAL / VERBOSE (and up, one per extra -v) from the flags."""
    from orchestrator.console import NORMAL, QUIET

    return QUIET if args.quiet else NORMAL + args.verbose


def run(args) -> int:
    from orchestrator.config import load_config
    from orchestrator.paths import check_name_flag, check_parent_folder

    check_name_flag(args.name)  # one path component: --name ../../x must not leave --storage
    check_parent_folder(args.storage, "--storage")
    cfg = load_config(args.config, args.overrides)  # validated: nothing starts on a bad config
    if cfg.search is None:
        from orchestrator.errors import UserError

        raise UserError(f"{args.config}: no `search:` section; a sweep needs one (see configs/demo_sweep.yaml)")
    from orchestrator.results import summary
    from orchestrator.sweep import run_sweep

    outcome = run_sweep(cfg, args.storage, args.name, args.address, args.resume, verbosity=verbosity(args))
    print(summary(outcome.trials, list(cfg.search.space)))
    print(f"sweep took {outcome.wall_time:.0f}s -> {outcome.path} (curves.parquet, trials.parquet)")
    errored = int((outcome.trials["status"] == "error").sum()) if len(outcome.trials) else 0
    if errored:  # exit 1: scripts and CI must see that some trials failed for good
        print(f"groktune: {errored} trial(s) errored (retries exhausted); see their error.txt in {outcome.path}",
              file=sys.stderr)
        return 1
    return 0
