"""`groktune sweep CONFIG [--set K=V ...] [--name NAME] [--storage DIR|URI] [--address ADDR] [--resume] [-v|--quiet]`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from groktune.errors import UserError
from groktune.layout import TUNE_ERROR
from orchestrator.cli.options import add_config_arguments
from orchestrator.cli.paths import check_name_flag, check_parent_folder
from orchestrator.storage.location import check_bucket, parse_storage
from orchestrator.sweep.console import NORMAL, QUIET


def register(sub) -> None:
    p = sub.add_parser("sweep", help="search hyperparameters with Ray Tune (Optuna TPE + ASHA by default)")
    add_config_arguments(p, sweep=True, name="experiment folder name (default: the config's name)")
    p.add_argument("--storage", default="results",
                   help="where the sweep folder goes: a folder (on a cluster, one every node mounts), file:///PATH, "
                        "or a bucket URI such as s3://BUCKET/PATH or gs://BUCKET/PATH (default ./results)")
    p.add_argument("--address", help="join this Ray cluster (default RAY_ADDRESS, else an embedded local Ray)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in STORAGE/NAME after its driver died")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="show Ray Tune's own trial tables and logging instead of the progress line (-vv: more)")
    loud.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(func=run)


def verbosity(args) -> int:
    """orchestrator.sweep.console's QUIET / NORMAL / VERBOSE (and up, one per extra -v) from the flags."""
    return QUIET if args.quiet else NORMAL + args.verbose


def run(args) -> int:
    # deferred: the CLI imports every command to build its parser; configs (torch) load only here
    from orchestrator.config.experiment import load_config
    from orchestrator.search.config import check_trial_device  # deferred: as above (the config tree)

    check_name_flag(args.name)  # one path component: --name ../../x must not leave --storage
    storage = parse_storage(args.storage)  # a folder, file:///PATH or a bucket URI (orchestrator.storage.location)
    if storage.uri is None:
        check_parent_folder(storage.local, "--storage")
    cfg = load_config(args.config, args.overrides)  # validated: nothing starts on a bad config
    if cfg.search is None:
        raise UserError(f"{args.config}: no `search:` section; a sweep needs one (see configs/demo_sweep.yaml)")
    check_gpus(cfg.search.gpus_per_trial, args.address)  # before Ray: it would wait forever
    try:
        check_trial_device(cfg.train.device, cfg.search.gpus_per_trial)  # trials' device = their reservation
    except ValueError as err:
        raise UserError(str(err)) from None
    # deferred: Ray, pandas and the trainer load only once the config is known to be good
    from orchestrator.sweep.results import summary
    from orchestrator.sweep.driver import run_sweep  # deferred: as above
    from orchestrator.sweep.verify import describe  # deferred: pandas, as above

    if storage.uri:  # Ray Tune writes to the bucket, groktune to a local working folder (orchestrator.storage.location)
        from orchestrator.sweep.bucket import run_bucket_sweep  # deferred: Ray and pyarrow, as above

        check_bucket(storage.uri)  # opened as Ray Tune will: a bad one is one line, exit 2, before Ray starts
        outcome = run_bucket_sweep(cfg, storage, args.name, args.address, args.resume, verbosity=verbosity(args))
    else:
        outcome = run_sweep(cfg, storage.local, args.name, args.address, args.resume, verbosity=verbosity(args))
    print(summary(outcome.trials, list(cfg.search.params)))
    if outcome.verified is not None:
        print(describe(outcome.verified))
    print(f"sweep took {outcome.wall_time:.0f}s -> {outcome.path} (curves.parquet, trials.parquet)")
    if storage.uri:
        print(f"uploaded to {storage.display}/{outcome.path.name} (checkpoints, results, ledger, tables)")
    return errored_exit(outcome.trials, outcome.path)


def check_gpus(gpus_per_trial: float, address: str | None) -> None:
    """Refuse GPUs per trial on a machine without one when no cluster is joined.

    The embedded Ray offers only this machine's GPUs; trials asking for one would stay pending
    forever. With --address / RAY_ADDRESS the cluster may have GPUs elsewhere: the sweep's own
    check of the cluster's nodes (orchestrator.sweep.driver.check_resources) decides there.

    Args:
        gpus_per_trial: search.gpus_per_trial.
        address: the --address flag (None when absent).
    Raises:
        UserError naming the key and what to do instead.
    """
    if gpus_per_trial <= 0 or address or os.environ.get("RAY_ADDRESS"):
        return
    import torch  # deferred: heavy, and needed only when GPUs are asked for

    if not torch.cuda.is_available():
        raise UserError(f"search.gpus_per_trial: got {gpus_per_trial:g}, but this machine has no GPU that torch "
                        f"can use (torch.cuda.is_available() is false); set search.gpus_per_trial: 0 to train on "
                        f"CPU, or join a cluster with GPUs (--address)")


def errored_exit(trials, path: Path, shown: int = 3) -> int:
    """Exit status of a finished sweep: 1, with one line naming the error logs, when trials errored.

    Args:
        trials: the trials table (orchestrator.sweep.results), one row per trial with `status`.
        path: the sweep folder (Ray writes an errored trial's traceback to its error.txt).
        shown: error logs named in the line; the rest are counted.
    Returns:
        0 when no trial errored, else 1 (scripts and CI must see that trials failed for good).
    """
    ids = [str(t) for t in trials.loc[trials["status"] == "error", "trial_id"]] if len(trials) else []
    if not ids:
        return 0
    logs = [str(log) for tid in ids for log in sorted(path.glob(f"*{tid}*/{TUNE_ERROR}"))[:1]]
    where = ", ".join(logs[:shown]) + (f" and {len(logs) - shown} more" if len(logs) > shown else "")
    print(f"groktune: {len(ids)} trial(s) errored after their retries (search.max_failures); "
          f"logs: {where or f'{TUNE_ERROR} in the trial folders of {path}'}", file=sys.stderr)
    return 1
