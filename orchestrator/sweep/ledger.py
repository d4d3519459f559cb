"""The sweep ledger: a finished trial is on disk the moment the driver learns of it.

STORAGE/NAME/ledger/<trial_id>.json holds one finished trial: {trial_id, status, config (the
sampled point), result (the last result Tune had), curve (every record of the trial's
result.json when it finished: its whole learning curve), replay_of}. The LedgerCallback
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
- the curve: a trial Tune restores without a checkpoint starts with an empty result.json in
  Tune's staging folder, which Tune copies over the trial's full one at its next snapshot (a
  replay would leave one line); one restored with a checkpoint starts from the sweep folder's
  copy, which lags by up to a snapshot period. So the record keeps the whole curve (read from
  the staging result.json the moment the trial finished); on --resume, reconcile writes it back
  into the sweep folder's result.json where that lacks evals, and `restore_curve` into the
  staging one before Tune's JSON logger opens it; the tables read a finished trial's curve from
  its record, never from a result.json that a later driver may have rewritten;
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
import math
import os
import time
from pathlib import Path

from groktune.errors import DamagedFile
from groktune.layout import (ABANDONED, FINAL_STATUSES, LEDGER, TIME_ATTR, TUNE_RESULT, TUNE_STATE, sweep_status,
                             write_atomic)
from groktune.readback import EVAL_RECORD, read_json_lines, read_ledger_folder, read_ledger_record
from trials.evalplan import StopRule

REPLAY_KEY = "ledger_replay_of"
# Tune's own per-result bookkeeping: dropped from a replayed result (Tune adds fresh ones).
RAY_KEYS = {
    "config", "date", "hostname", "node_ip", "pid", "timestamp", "time_this_iter_s", "time_total_s",
    "time_since_restore", "done", "checkpoint_dir_name", "should_checkpoint", "experiment_tag",
    "trial_id", "training_iteration", "iterations_since_restore", "timesteps_total", "episodes_total",
    "timesteps_since_restore", "experiment_id", REPLAY_KEY,
}


def scalar_metrics(result: dict) -> dict[str, float]:
    """The finite numeric entries of a Tune result, without Tune's bookkeeping and the step."""
    out = {}
    for key, value in result.items():
        if key in RAY_KEYS or key == TIME_ATTR or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def ledger_dir(exp: str | Path) -> Path:
    return Path(exp) / LEDGER


def read_record(exp: str | Path, trial_id: str) -> dict | None:
    """The ledger record of one trial, or None when it has none (DamagedFile when it is damaged)."""
    path = ledger_dir(exp) / f"{trial_id}.json"
    if not path.exists():
        return None
    return read_ledger_record(path)


def read_ledger(exp: str | Path) -> dict[str, dict]:
    """{trial_id: record} of every trial the ledger holds (empty when there is no ledger).

    Raises:
        DamagedFile: a record is not a ledger record (groktune.readback.read_ledger_record: one
            line naming the file and what is wrong).
    """
    return read_ledger_folder(exp)


def read_curve(result_file: Path) -> list[dict]:
    """A trial's records from its result.json (Tune's per-report log), without the config
    each repeats; [] when there is none. Damage is DamagedFile."""
    if not result_file.is_file():
        return []
    return [{k: v for k, v in r.items() if k != "config"} for r in read_json_lines(result_file, EVAL_RECORD)]


def lineage(rows: list[dict]) -> list[dict]:
    """The eval records of the history the trial ended with, in step order.

    A trial that restarts from a checkpoint (a retry, a resumed sweep, a PBT exploit) reports
    steps it had reported before; whatever came after the restart point in the file replaces
    the older records from that step on. The adapter's closing report repeats the last step.
    """
    kept: list[dict] = []
    for r in rows:
        if "step" not in r:
            continue
        while kept and kept[-1]["step"] >= r["step"]:
            kept.pop()
        kept.append(r)
    return kept


def outcome_from_curve(evals: list[dict], train_cfg) -> tuple[str, int | None]:
    """(status, steps_to_target) by the trainer's StopRule replayed over a finished curve.

    For a trial the scheduler stopped at its very last eval (a rung that falls on the budget):
    the trainer had finished, so its own rule gives the status (see `closing_outcome`)."""
    rule = StopRule(train_cfg.target_val_acc, train_cfg.target_patience)
    stop = None
    for r in evals:
        stop = rule.fold(r)
        if stop is not None:
            break
    status = sweep_status(rule.final_status(stop))
    return status, (rule.event if status == "grokked" else None)


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


def closing_outcome(result: dict, errored: bool, curve: list[dict], train_cfg=None) -> tuple[str, int | None]:
    """(status, steps_to_target) a finished trial is recorded with: `final_status`, except that a
    trial the scheduler stopped at its last eval (step >= train.steps) gets the trainer's own
    outcome (`outcome_from_curve`). The ledger is the one place this is decided.

    Args:
        result: the trial's last result; errored: its retries ran out.
        curve: its records (result.json lines); train_cfg: the experiment's TrainConfig, or None.
    """
    status = final_status(result, errored)
    stt = result.get("steps_to_target")
    evals = lineage(curve)
    if status == "pruned" and train_cfg is not None and evals and evals[-1]["step"] >= train_cfg.steps:
        return outcome_from_curve(evals, train_cfg)
    return status, (int(stt) if isinstance(stt, (int, float)) and not isinstance(stt, bool) and math.isfinite(stt)
                    else None)


def write_record(exp: str | Path, trial_id: str, status: str, config: dict, result: dict,
                 curve: list[dict] | None = None, steps_to_target: int | None | str = "",
                 extra: dict | None = None) -> bool:
    """Write ledger/<trial_id>.json unless the trial already has one; True when written.

    Args:
        curve: the trial's records as its result.json held them when it finished (see module doc).
        steps_to_target: its outcome's (closing_outcome); "" leaves it out of the record.
        extra: more keys (a packed trial's: "points" in a pack's record, "pack" and "member" in
            its points', orchestrator.sweep.packing).
    """
    folder = ledger_dir(exp)
    target = folder / f"{trial_id}.json"
    if target.exists():
        return False  # the first record is the truth; a replay or a late duplicate never rewrites it
    folder.mkdir(parents=True, exist_ok=True)
    record = {"trial_id": trial_id, "status": status, "config": _plain(config), "result": _plain(result),
              "replay_of": result.get(REPLAY_KEY), "written": time.time(), "curve": _plain(list(curve or []))}
    if steps_to_target != "":
        record["steps_to_target"] = steps_to_target
    record.update(_plain(extra or {}))
    write_atomic(target, json.dumps(record, sort_keys=True))
    return True


def mark_abandoned(exp: str | Path, trial_id: str, config: dict) -> None:
    """Record a half-trained trial that Tune's restored state does not know (see module doc)."""
    write_record(exp, trial_id, ABANDONED, config, {})


def record_trial(exp: str | Path, trial, errored: bool, train_cfg=None, extra: dict | None = None) -> None:
    """Record a Tune Trial that finished (errored: its retries ran out); see LedgerCallback.

    Args:
        train_cfg: the experiment's TrainConfig (closing_outcome), or None.
        extra: more keys for the record (write_record).
    """
    trial_id = str(trial.trial_id)
    if (ledger_dir(exp) / f"{trial_id}.json").exists():
        return  # replayed, or a late duplicate: the first record stands
    result = dict(trial.last_result or {})
    curve = finished_curve(trial)
    if result.get("step") is not None and not any(r.get("step") == result["step"] for r in curve):
        curve.append({k: v for k, v in result.items() if k != "config"})
    status, steps = closing_outcome(result, errored, curve, train_cfg)
    write_record(exp, trial_id, status, dict(trial.config), result, curve, steps, extra)


def with_checkpoint_evals(rows: list[dict], saved: list[dict]) -> list[dict]:
    """A finished trial's result.json rows, with the evals its latest checkpoint carries (every
    report up to it, orchestrator.sweep.adapter) that the rows lack put back in step order.

    A restarted trial's staging file can lag the checkpoint it continued from (restore_curve
    mends it at the restart, but not when the driver was killed again before Tune synced it);
    the latest checkpoint holds every eval before any restart point, so the record misses none.
    Returns the rows unchanged when they lack nothing, else their lineage with the evals added."""
    have = lineage(rows)
    steps = {r["step"] for r in have}
    missing = [r for r in lineage(saved) if r["step"] not in steps]
    if not missing:
        return rows
    return sorted(have + missing, key=lambda r: r["step"])


def finished_curve(trial, last: dict | None = None) -> list[dict]:
    """The rows a finished (or partly finished: a pack's stopped points) trial is recorded with:
    its staging result.json, plus `last` (a result Tune has not logged yet) when the file lacks
    its training_iteration, plus the evals the trial's latest checkpoint carries that the file
    lost (with_checkpoint_evals). Packed trials' points are cut from these rows too
    (orchestrator.sweep.packing.record_points)."""
    rows = _staged_curve(trial)
    if last and not any(r.get("training_iteration") == last.get("training_iteration") for r in rows):
        rows.append({k: v for k, v in last.items() if k != "config"})
    return with_checkpoint_evals(rows, checkpoint_curve(trial.checkpoint))


def _staged_curve(trial) -> list[dict]:
    """The records Tune's JSON logger wrote for `trial` (its staging result.json), [] if none."""
    if not trial.local_path:
        return []
    try:
        return read_curve(Path(trial.local_path) / TUNE_RESULT)
    except DamagedFile:
        return []  # Tune's own log, torn by something else: the record keeps the last result


def restore_curve(exp: str | Path, trial) -> bool:
    """Before Tune's JSON logger opens a restarted trial's result.json (its staging copy): make it
    hold the trial's whole curve so far, so what the trial reports next appends to it.

    - The ledger holds the trial as finished: Tune restored it without a checkpoint, so nothing
      was copied back; the ledger's curve is written there (the replay appends one line).
    - Tune restarts it from a checkpoint: the file is the sweep folder's copy, which lags the
      checkpoint by up to a snapshot period; the evals the checkpoint carries (every report up to
      it, orchestrator.sweep.adapter) that the file lacks are put back (mend_curve).

    Returns:
        True if the file was written.
    """
    try:
        record = read_record(exp, str(trial.trial_id))
    except DamagedFile:
        return False
    if not trial.local_path:
        return False
    target = Path(trial.local_path) / TUNE_RESULT
    if record is not None:
        return write_curve(target, record, dict(trial.config))
    return mend_curve(target, checkpoint_curve(trial.checkpoint), dict(trial.config))


def checkpoint_curve(checkpoint) -> list[dict]:
    """The reports a trial's Tune checkpoint carries (its adapter state's "curve"), [] when it has
    none or cannot be read here (the trial names a damaged checkpoint itself when it restores)."""
    if checkpoint is None:
        return []
    try:
        with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{TUNE_STATE}") as f:
            saved = json.loads(f.read())
    except (OSError, ValueError):
        return []
    curve = saved.get("curve") if isinstance(saved, dict) else None
    return [r for r in curve if isinstance(r, dict) and "step" in r] if isinstance(curve, list) else []


def mend_curve(target: Path, saved: list[dict], config: dict) -> bool:
    """Rewrite result.json `target` (atomically) as the history of `saved` (a checkpoint's
    reports) when it lacks any of its evals: each eval as the file has it where it has it (with
    Tune's own keys), else as the checkpoint has it; each line carries `config`, as Tune's do.
    Evals after the checkpoint are left out: the restarted trial reports them again. True if written."""
    want = lineage(saved)
    try:
        have = {r["step"]: r for r in lineage(read_curve(target))}
    except DamagedFile:
        have = {}
    if all(r["step"] in have for r in want):
        return False
    rows = [have.get(r["step"], r) for r in want]
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, "".join(json.dumps({**_plain(r), "config": _plain(config)}) + "\n" for r in rows))
    return True


def write_curve(target: Path, record: dict, config: dict) -> bool:
    """Write a finished record's curve to the result.json `target` (atomically) when `target`
    lacks any of its steps; each line carries `config`, as Tune's lines do. True if written."""
    if record["status"] not in FINAL_STATUSES or not record.get("curve"):
        return False
    try:
        have = {r.get("step") for r in read_curve(target)}
    except DamagedFile:
        have = set()
    if {r.get("step") for r in record["curve"]} <= have:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, "".join(json.dumps({**r, "config": _plain(config)}) + "\n" for r in record["curve"]))
    return True


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
    result = {k: v for k, v in source["result"].items() if k not in RAY_KEYS}  # source: checked by read_record
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
    "REPLAY_KEY", "claim", "closing_outcome", "lineage", "outcome_from_curve", "count_starts", "final_status", "ledger_dir", "mark_abandoned",
    "checkpoint_curve", "finished_curve", "mend_curve", "note_start", "read_curve", "read_ledger", "read_record", "record_trial", "replay_for", "restore_curve",
    "run_with_ledger", "same_point", "scalar_metrics", "write_curve", "write_record",
]
