"""The on-disk run format, defined once: file names, statuses and the atomic write.

A run folder (`groktune train --out DIR`) holds CONFIG, METRICS, RESULT and CHECKPOINT_DIR;
a sweep folder holds EXPERIMENT, CURVES, TRIALS and HEARTBEAT beside Ray's own layout.
Every other module imports these names instead of spelling them out.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Run folder (groktune train, and each sweep trial's own folder).
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
RESULT = "result.json"
CHECKPOINT_DIR = "checkpoints"

# Sweep folder.
EXPERIMENT = "experiment.yaml"
CURVES = "curves.parquet"
TRIALS = "trials.parquet"
# Not *.json: on a resume Tune copies every top-level *.json / *.pkl of the sweep folder into its
# staging dir and copies them back, stale, at each snapshot (ray 2.60, sync_down_experiment_state).
HEARTBEAT = "driver.heartbeat"
# The sweep's ledger (orchestrator.ledger): LEDGER/<trial_id>.json is written atomically the
# moment the driver learns that a trial finished; it is the one source of truth for statuses.
LEDGER = "ledger"
# ASHA's rungs and stop decisions (orchestrator.durable_asha): Ray's snapshot leaves them out.
SCHEDULER_STATE = "scheduler.state"

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


def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temp file in the same folder and a rename.

    Readers see the old file or the new one, never a torn one; the temp file is removed on any
    failure, so nothing half-written is left behind.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = [
    "ABANDONED", "CHECKPOINT_DIR", "LEDGER", "CONFIG", "CURVES", "EXPERIMENT", "FINAL_STATUSES", "HEARTBEAT",
    "LIVE_STATUSES", "METRICS", "RESULT", "SCHEDULER_STATE", "TRAINER_STATUSES", "TRIALS", "sweep_status",
    "write_atomic",
]
