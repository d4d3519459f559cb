"""The on-disk run format, defined once: file names, statuses and the atomic write.

A run folder (`groktune train --out DIR`) holds CONFIG, METRICS, RESULT and CHECKPOINT_DIR;
a sweep folder holds EXPERIMENT, CURVES, TRIALS and HEARTBEAT beside Ray's own layout.
Every other module imports these names instead of spelling them out.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

# Run folder (groktune train, and each sweep trial's own folder).
CONFIG = "config.yaml"
VERSIONS = "versions.json"  # package versions that produced the results (also in a sweep folder)
ENVIRONMENT = "environment.json"  # the older name of VERSIONS, still read by the report
METRICS = "metrics.jsonl"
RESULT = "result.json"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "checkpoint.pt"  # inside CHECKPOINT_DIR (and inside each Tune checkpoint)
PROBE_DIR = "probes"  # learning-dynamics probes: PROBE_DIR/<kind>.npz in the run folder
# TensorBoard events: a run folder's, and a sweep folder's (one run per trial, at optimizer steps).
TENSORBOARD = "tensorboard"

# Sweep folder.
EXPERIMENT = "experiment.yaml"
CURVES = "curves.parquet"
TRIALS = "trials.parquet"
VERIFICATION = "verification.csv"  # the verification stage: one row per fresh-seed run
VERIFIED = "verified.csv"  # ... and one row per verified config (orchestrator.verify)
# Not *.json: on a resume Tune copies every top-level *.json / *.pkl of the sweep folder into its
# staging dir and copies them back, stale, at each snapshot (ray 2.60, sync_down_experiment_state).
HEARTBEAT = "driver.heartbeat"
# The sweep's ledger (orchestrator.sweep.ledger): LEDGER/<trial_id>.json is written atomically the
# moment the driver learns that a trial finished; it is the one source of truth for statuses.
LEDGER = "ledger"
# ASHA's rungs and stop decisions (orchestrator.search.durable_asha): Ray's snapshot leaves them out.
SCHEDULER_STATE = "scheduler.state"
# In a bucket sweep's local working folder: the bucket URI Ray Tune writes to (0600: it may hold
# S3 keys). A dot name: orchestrator.sweep.folder.check_fresh does not count it as a foreign file.
STORAGE_URI = ".storage_uri"
# A Slurm job's script, config and logs (`groktune slurm submit`), inside the sweep folder it runs.
SLURM_DIR = "slurm"
# Ray Tune's own files in each trial folder of a sweep (its names, not ours: TUNE_RESULT is Tune's
# per-report log, unrelated to a run folder's RESULT).
TUNE_PARAMS = "params.json"
TUNE_RESULT = "result.json"
TUNE_ERROR = "error.txt"  # an errored trial's traceback
TUNER_PKL = "tuner.pkl"  # in the sweep folder: the Tuner a resume restores
# Inside each Tune checkpoint, beside CHECKPOINT_FILE: the adapter's own state (score tracker,
# the step it resumed from), orchestrator.sweep.adapter.
TUNE_STATE = "tune_state.json"
# In an embedded Ray session's private dir: the processes its watchdog
# (orchestrator.session.watchdog) has seen below the driver and will stop with the session,
# rewritten whenever it sees a new one.
WATCHDOG_PIDS = "watchdog-pids.json"

# Report folder (groktune report --out DIR).
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
SUMMARY_CSV = "summary.csv"
REPORT_FIGURES = "figures"
REPORT_FILES = (REPORT_HTML, REPORT_MD, SUMMARY_CSV)  # the files; REPORT_FIGURES is a folder

# GrokBench folder (groktune bench --out DIR): the table, the run metadata, the figures, and
# BENCH_RUNS/<setting>[/<point>]/seed<K>, one `groktune train` run folder per run.
BENCH_TABLE_MD = "table.md"
BENCH_TABLE_CSV = "table.csv"
BENCH_META = "bench.json"
BENCH_FIGURES = "figures"
BENCH_RUNS = "runs"

# Statuses. The trainer ends a run with one of TRAINER_STATUSES; a sweep records each trial
# with one of FINAL_STATUSES (the scheduler stopping a trial is "pruned", whether ASHA stopped
# it or the trainer's own early stop did) or a live one while it is not finished.
TRAINER_STATUSES = ("grokked", "budget", "diverged", "early_stopped")
FINAL_STATUSES = ("grokked", "budget", "diverged", "pruned", "error")
LIVE_STATUSES = ("running", "pending", "paused")
# Ledger-only word, never a row of trials.parquet: a half-trained trial that a driver kill left
# outside Tune's saved state; the resumed searcher samples its point again under a new id.
ABANDONED = "abandoned"


def sweep_status(trainer_status: str) -> str:
    """The status a sweep records for a trainer's final status (early_stopped -> pruned)."""
    return "pruned" if trainer_status == "early_stopped" else trainer_status


def trainer_status(status: str) -> str:
    """The trainer's final status of a sweep status (sweep_status inverted: pruned -> early_stopped)."""
    return "early_stopped" if status == "pruned" else status


# Every eval record's optimizer step: the time axis of the curves and of every scheduler (ASHA
# rungs, PBT intervals, Optuna's intermediate values, TensorBoard's x axis).
TIME_ATTR = "step"

# Eval-record keys that must all be finite, else the run diverged (the trainer's stop rule, the
# population members, the sweep score and the collected status all ask the same question).
FINITE_KEYS = ("train_loss", "val_loss", "param_norm")


def losses_finite(record: Mapping[str, Any]) -> bool:
    """True when every FINITE_KEYS value of an eval record is finite (a missing key counts as finite).

    Args:
        record: one eval record (metrics.jsonl line or a reported dict).
    Returns:
        False on any NaN or infinity among the losses and the parameter norm.
    """
    return all(math.isfinite(float(record.get(k, 0.0))) for k in FINITE_KEYS)


# Mixture labels join their op names with this; no op name contains it (tests/groktune checks),
# unlike "+", which "x+y" does.
OPS_SEPARATOR = ","


def task_label(task: Mapping[str, Any]) -> str:
    """A short label for a config's task section, the same for sweeps and run folders.

    Args:
        task: the `task` mapping of an experiment config as plain data (may be empty or partial).
    Returns:
        "modular:x*y", "s5:xy", "sparse_parity:n40k3", "mixture:x+y,x*y", "lm:tokens.bin",
        or the task name when the fields that qualify it are absent.
    """
    name = str(task.get("name", "unknown"))
    if name in ("modular", "s5") and task.get("op"):
        return f"{name}:{task['op']}"
    if name == "sparse_parity" and "n_bits" in task:
        return f"{name}:n{task['n_bits']}k{task.get('k_bits', '?')}"
    if name == "mixture" and task.get("ops"):
        return f"{name}:{OPS_SEPARATOR.join(map(str, task['ops']))}"
    if name == "lm" and task.get("path"):
        return f"{name}:{str(task['path']).replace(chr(92), '/').rsplit('/', 1)[-1]}"
    return name


def write_atomic_with(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Let `write` fill a binary temp file in path's folder, then rename it onto path.

    Readers see the old file or the new one, never a torn one; the temp file is removed on any
    failure, so nothing half-written is left behind. The one rename dance of the code base.

    Args:
        path: the file to (re)place; its folder must exist.
        write: called once with the open temp file (torch.save(obj, f), np.savez(f, ...), ...).
    Returns:
        path.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write text (UTF-8) to path atomically (see write_atomic_with)."""
    write_atomic_with(path, lambda f: f.write(text.encode()))


__all__ = [
    "ABANDONED", "BENCH_FIGURES", "BENCH_META", "BENCH_RUNS", "BENCH_TABLE_CSV", "BENCH_TABLE_MD",
    "CHECKPOINT_DIR", "CHECKPOINT_FILE", "CONFIG", "CURVES", "ENVIRONMENT", "EXPERIMENT",
    "FINAL_STATUSES", "FINITE_KEYS", "HEARTBEAT", "LEDGER", "LIVE_STATUSES", "METRICS",
    "OPS_SEPARATOR", "PROBE_DIR", "REPORT_FIGURES", "REPORT_FILES", "REPORT_HTML", "REPORT_MD",
    "RESULT", "SCHEDULER_STATE", "SLURM_DIR", "STORAGE_URI", "SUMMARY_CSV", "TENSORBOARD",
    "TIME_ATTR", "TRAINER_STATUSES", "TRIALS", "TUNER_PKL", "TUNE_ERROR", "TUNE_PARAMS",
    "TUNE_RESULT", "TUNE_STATE", "VERSIONS", "losses_finite", "sweep_status", "trainer_status", "task_label",
    "write_atomic", "write_atomic_with",
]
