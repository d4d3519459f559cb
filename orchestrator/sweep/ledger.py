"""The sweep ledger: a finished trial is on disk the moment the driver learns of it.

STORAGE/NAME/ledger/<trial_id>.json holds one finished trial: {trial_id, status, config (the
sampled point), result (the last result Tune had), replay_of}. The LedgerCallback
(orchestrator.sweep.callbacks) writes it atomically (groktune.layout.write_atomic) in
on_trial_complete / on_trial_error: Tune calls those for a trial that returned, one the
scheduler (ASHA) stopped and one whose retries ran out, before its next experiment snapshot. The first record of a trial wins; it
is never rewritten. Statuses everywhere (trials.parquet, `status`, `collect`, the report) come
from here, never from Ray's experiment_state-*.json files.

Why a ledger, and not only a more frequent Tune snapshot (ray 2.60's source, read for this):
Tune saves its state (trials, searcher) into a staging folder under /tmp/ray and copies it to
the experiment folder in a background thread, at most every TUNE_GLOBAL_CHECKPOINT_S (10 s or
more when "auto"). The copy is neither atomic nor in step with trial completions: a SIGKILL
leaves a state that misses the last trials or, mid-copy, a torn file. A faster period narrows
the window (orchestrator.sweep.driver sets 2 s) but cannot close it, so on --resume
(orchestrator.sweep.folder.reconcile):

- a trial Tune restores as unfinished but the ledger has finished starts again and, through
  `run_with_ledger`, reports its ledgered result at once instead of training (no re-run);
- a finished trial the restored state lacks (an "orphan") stays in the results from its
  ledger record; when the restored searcher samples the same point again (a seeded searcher
  does), that new trial claims the orphan and replays its record (replay_of = the orphan's id)
  instead of training, so the searcher and scheduler learn the result and the point is not
  trained twice; tables list the orphan, not the replay;
- a half-trained trial the state lacks is marked ABANDONED: its point is sampled again.

Each real training start is counted in ledger/<trial_id>.starts (one line per start), so a
re-run is visible and testable (tests/orchestrator/test_sweep_crash.py: 7 SIGKILLs of one sweep).
The ledger lives on the driver's file system; trials read it there, so on a multi-node cluster
without shared storage a restarted finished trial falls back to the adapter's own "finished"
checkpoint (orchestrator.sweep.adapter). ASHA's state: orchestrator.search.durable_asha. Not measured: the
cost of the 2 s snapshot period against "auto" (one small JSON and pickle per period).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from groktune.layout import ABANDONED, FINAL_STATUSES, LEDGER, sweep_status, write_atomic

REPLAY_KEY = "ledger_replay_of"
# Tune's own per-result bookkeeping: dropped from a replayed result (Tune adds fresh ones).
RAY_KEYS = {
    "config", "date", "hostname", "node_ip", "pid", "timestamp", "time_this_iter_s", "time_total_s",
    "time_since_restore", "done", "checkpoint_dir_name", "should_checkpoint", "experiment_tag",
    "trial_id", "training_iteration", "iterations_since_restore", "timesteps_total", "episodes_total",
    "timesteps_since_restore", "experiment_id", REPLAY_KEY,
}


def ledger_dir(exp: str | Path) -> Path:
    return Path(exp) / LEDGER


def read_record(exp: str | Path, trial_id: str) -> dict | None:
    """The ledger record of one trial, or None."""
    try:
        return json.loads((ledger_dir(exp) / f"{trial_id}.json").read_text())
    except (OSError, ValueError):
        return None


def read_ledger(exp: str | Path) -> dict[str, dict]:
    """{trial_id: record} of every trial the ledger holds (empty when there is no ledger)."""
    out = {}
    for f in sorted(ledger_dir(exp).glob("*.json")):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # write_atomic never leaves a torn record; skip anything foreign
        if isinstance(rec, dict) and "trial_id" in rec:
            out[str(rec["trial_id"])] = rec
    return out


def final_status(result: dict, errored: bool) -> str:
    """The status a finished trial is recorded with.

    Args:
        result: the trial's last result (the adapter's closing report carries `status`).
        errored: Tune gave up on the trial (its retries ran out).
    Returns:
        One of FINAL_STATUSES: error; else the adapter's closing status; else pruned (the
        scheduler stopped it before its closing report).
    """
    if errored:
        return "error"
    status = sweep_status(str(result.get("status", "")))
    # No closing report: the scheduler stopped the trial before its end.
    return status if status in FINAL_STATUSES else "pruned"


def write_record(exp: str | Path, trial_id: str, status: str, config: dict, result: dict) -> bool:
    """Write ledger/<trial_id>.json unless the trial already has one; True when written."""
    folder = ledger_dir(exp)
    target = folder / f"{trial_id}.json"
    if target.exists():
        return False  # the first record is the truth; a replay or a late duplicate never rewrites it
    folder.mkdir(parents=True, exist_ok=True)
    record = {"trial_id": trial_id, "status": status, "config": _plain(config), "result": _plain(result),
              "replay_of": result.get(REPLAY_KEY), "written": time.time()}
    write_atomic(target, json.dumps(record, sort_keys=True))
    return True


def mark_abandoned(exp: str | Path, trial_id: str, config: dict) -> None:
    """Record a half-trained trial that Tune's restored state does not know (see module doc)."""
    write_record(exp, trial_id, ABANDONED, config, {})


def record_trial(exp: str | Path, trial, errored: bool) -> None:
    """Record a Tune Trial that finished (errored: its retries ran out); see LedgerCallback."""
    result = dict(trial.last_result or {})
    write_record(exp, str(trial.trial_id), final_status(result, errored), dict(trial.config), result)


def note_start(exp: str | Path, trial_id: str) -> None:
    """Append one line to ledger/<trial_id>.starts: this trial is about to train (again)."""
    folder = ledger_dir(exp)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{trial_id}.starts", "a") as f:  # one short O_APPEND write per start
        f.write(f"{os.getpid()} {time.time():.3f}\n")


def count_starts(exp: str | Path, trial_id: str) -> int:
    """How many times the trial started training (not counting replays)."""
    try:
        return len((ledger_dir(exp) / f"{trial_id}.starts").read_text().splitlines())
    except OSError:
        return 0


def same_point(a: dict, b: dict) -> bool:
    """Whether two sampled points are equal (compared as the JSON the ledger stores)."""
    return json.dumps(_plain(a), sort_keys=True) == json.dumps(_plain(b), sort_keys=True)


def claim(exp: str | Path, orphan_id: str, trial_id: str) -> bool:
    """Claim orphan `orphan_id` for `trial_id` (once; the same trial may claim again after a resume)."""
    path = ledger_dir(exp) / f"{orphan_id}.claim"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return path.read_text().strip() == trial_id
    os.write(fd, trial_id.encode())
    os.close(fd)
    return True


def replay_for(exp: str | Path, trial_id: str, config: dict, orphans: dict[str, dict]) -> dict | None:
    """The result a starting trial must report instead of training, or None to train.

    Args:
        exp: the experiment folder.
        trial_id: the starting trial.
        config: its sampled point.
        orphans: {trial_id: point} of finished trials the restored Tune state lacks.
    Returns:
        The ledgered last result (Tune's bookkeeping keys dropped, REPLAY_KEY added).
    """
    source = None
    own = read_record(exp, trial_id)
    if own is not None and own.get("status") in FINAL_STATUSES:
        source = own
    else:
        for orphan_id, point in orphans.items():
            if same_point(point, config) and claim(exp, orphan_id, trial_id):
                source = read_record(exp, orphan_id)
                break
    if source is None:
        return None
    result = {k: v for k, v in source["result"].items() if k not in RAY_KEYS}
    result[REPLAY_KEY] = source["trial_id"]
    return result


def run_with_ledger(config: dict, *, inner, exp: str, orphans: dict, **kwargs) -> None:
    """The sweep's trainable: replay a finished trial's ledgered result, else train with `inner`."""
    from ray import tune  # deferred: results and `status` read the ledger without importing Ray

    trial_id = tune.get_context().get_trial_id()
    replay = replay_for(exp, trial_id, config, orphans)
    if replay is not None:
        tune.report(replay)
        return
    note_start(exp, trial_id)
    inner(config, **kwargs)


def _plain(value):
    """JSON-able copy; NaN/inf stay floats, as in Ray's own result.json (diverged trials)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


__all__ = [
    "REPLAY_KEY", "claim", "count_starts", "final_status", "ledger_dir", "mark_abandoned",
    "note_start", "read_ledger", "read_record", "record_trial", "replay_for", "run_with_ledger", "same_point", "write_record",
]
