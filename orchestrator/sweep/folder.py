"""A sweep folder's state on disk: fresh, resumable or stuck, and its reconciliation on --resume.

All-or-nothing: `groktune sweep` creates STORAGE/NAME only after the config is valid,
Ray is up and the resources fit (orchestrator.sweep.driver), and removes it again when the sweep fails
before Tune saved any state. A folder that holds experiment.yaml / tuner.pkl but no usable
experiment state (a driver killed during start-up) holds nothing resumable: a rerun treats it
as empty, and --resume says so.

Tune picks the experiment_state-<session>.json with the greatest name and restores the searcher
from the same session's files. A SIGKILL during Tune's background copy can tear them; `usable`
sessions are those whose files all load, and `drop_torn` moves a torn newest session aside so
Tune restores from the one before (the ledger keeps what finished since, see orchestrator.sweep.ledger).

Tune deletes a trial's older checkpoints the moment it books a newer one (CheckpointConfig.num_to_keep),
but writes its state only every few seconds: a driver killed in between leaves a state whose trial
restarts from a checkpoint that is gone (Ray: "Could not recover from checkpoint as it does not exist
on storage anymore", the trial's every retry). `restore_missing_checkpoints` puts such a checkpoint back
before Tune restores, from the oldest newer one of the same trial, which Tune had booked (it deletes
only once num_to_keep newer ones were booked), so the trial continues from a later step it really
reached; the evals past that step are superseded by the resumed run (orchestrator.sweep.results.lineage).
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

from groktune.errors import UserError
from groktune.layout import (EXPERIMENT, FINAL_STATUSES, HEARTBEAT, LEDGER, SCHEDULER_STATE, SLURM_DIR,
                             TUNE_PARAMS, TUNE_RESULT, TUNER_PKL, VERSIONS)
from groktune.readback import read_scheduler_state
from orchestrator.sweep.ledger import ledger_dir, mark_abandoned, read_ledger, write_curve

STATE_GLOB = "experiment_state-*.json"
_SESSION = re.compile(r"experiment_state-(.+)\.json$")


def session_files(path: Path, session: str) -> list[Path]:
    """Every file Tune saved for one driver session (state, searcher, callbacks)."""
    return sorted(p for p in path.glob(f"*-{session}.*") if p.is_file())


def _loads(f: Path) -> bool:
    """Whether a saved state file loads (JSON, or a pickle: basic-variant-state-*.json is one)."""
    try:
        data = f.read_bytes()
    except OSError:
        return False
    for load in (json.loads, pickle.loads):
        try:
            load(data)  # noqa: S301 - Tune's own files in the user's own sweep folder
            return True
        except Exception:  # noqa: BLE001 - torn, or the other format
            continue
    return False


def newest_state(path: Path, drop_torn: bool = False) -> Path | None:
    """The experiment_state file Tune would restore from, if all its session's files load.

    Args:
        path: the sweep folder.
        drop_torn: rename a torn newest session's files to .torn-* (so Tune takes the previous one).
    Returns:
        The usable state file, or None when there is none.
    """
    for state in sorted(path.glob(STATE_GLOB), reverse=True):
        session = _SESSION.search(state.name).group(1)
        files = session_files(path, session)
        if all(_loads(f) for f in files):
            return state
        if not drop_torn:
            return None  # Tune would pick this torn one; only a --resume may move it aside
        for f in files:
            f.rename(f.with_name(f".torn-{f.name}"))
    return None


def resumable(path: Path) -> bool:
    """Whether Tuner.restore can continue the sweep in `path`."""
    return (path / TUNER_PKL).exists() and newest_state(path) is not None


def check_fresh(path: Path) -> None:
    """Refuse a fresh sweep into a folder that holds one (or anything that is not a sweep)."""
    if not path.exists():
        return
    if resumable(path) or newest_state(path) is not None or read_ledger(path):
        raise UserError(f"{path}: already holds a sweep; pass --resume to continue it, or choose another --name")
    # SLURM_DIR: `groktune slurm submit` writes the job's script there before the job runs the sweep.
    ours = {EXPERIMENT, TUNER_PKL, HEARTBEAT, VERSIONS, LEDGER, SCHEDULER_STATE, SLURM_DIR}
    # trial_* folders: checkpoints of trials Tune never saved in a state; a rerun uses new ids.
    foreign = [p.name for p in path.iterdir()
               if p.name not in ours and not p.name.startswith((".", "trial_"))]
    if foreign:
        raise UserError(f"{path}: exists and is not a groktune sweep folder (holds {foreign[0]}); "
                        f"choose another --name or --storage")
    # experiment.yaml / tuner.pkl but no Tune state: a start that never got going; start over.


def check_resume(path: Path) -> None:
    """Refuse --resume when nothing in `path` can be resumed, in one line saying why."""
    if not (path / TUNER_PKL).exists():
        raise UserError(f"--resume: {path} holds no sweep to resume (no Tune state found)")
    # What the resumed driver reads back, checked before anything starts: one line naming a damaged file.
    read_ledger(path)
    if (path / SCHEDULER_STATE).exists():
        read_scheduler_state(path / SCHEDULER_STATE)
    if newest_state(path, drop_torn=True) is None:
        raise UserError(f"--resume: {path} holds no sweep to resume (it stopped before Tune saved any state); "
                        f"rerun without --resume to start it afresh")


def tune_trial_ids(path: Path) -> set[str]:
    """Trial ids in the experiment state Tune will restore from."""
    state = newest_state(path)
    if state is None:
        return set()
    data = json.loads(state.read_text())
    return {str(json.loads(t)["trial_id"]) for t, _ in data.get("trial_data", [])}


_CHECKPOINT = re.compile(r"checkpoint_(\d+)$")


def restore_missing_checkpoints(path: Path) -> list[str]:
    """Before Tuner.restore: put back the checkpoints the state to restore refers to but Tune deleted.

    A missing latest checkpoint becomes a copy of the trial's oldest newer one (empty when there is
    none: the trial then trains from its start); a missing older one that Tune still tracks becomes an
    empty folder (Tune only deletes those). Checkpoints in a bucket are left as they are.

    Returns:
        The trial ids whose latest checkpoint was put back.
    """
    # deferred: Ray's own reader of its trial state, only on --resume
    from ray.tune.experiment.trial import _TrainingRunMetadata

    state = newest_state(path)
    if state is None:
        return []
    restored = []
    for trial_json, metadata in json.loads(state.read_text()).get("trial_data", []):
        manager = _TrainingRunMetadata.from_json_state(metadata).checkpoint_manager
        if manager is None:
            continue
        latest = manager.latest_checkpoint_result
        tracked = [r for r in manager.best_checkpoint_results if r is not latest]
        for result, is_latest in [(r, False) for r in tracked] + ([(latest, True)] if latest else []):
            if result.checkpoint.filesystem.type_name != "local":
                continue
            where = Path(result.checkpoint.path)
            missing = path / where.parent.name / where.name
            if missing.exists() or not missing.parent.is_dir():
                continue
            newer = sorted((int(m.group(1)), p) for p in missing.parent.iterdir()
                           if (m := _CHECKPOINT.match(p.name)) and p.is_dir() and int(m.group(1)) > _index(where))
            if is_latest and newer:
                shutil.copytree(newer[0][1], missing)
                restored.append(str(json.loads(trial_json)["trial_id"]))
            else:
                missing.mkdir()
    return restored


def _index(checkpoint: Path) -> int:
    m = _CHECKPOINT.match(checkpoint.name)
    return int(m.group(1)) if m else -1


def reconcile(path: Path) -> dict[str, dict]:
    """Before Tuner.restore: align the ledger with the state Tune will restore.

    Finished trials the state lacks become orphans (returned, for run_with_ledger to replay
    when their point is sampled again); a finished trial's result.json that lags its ledger
    record gets the whole curve from the record (Tune copies trial files to the sweep folder only
    periodically, and copies that file back to restart a trial from its checkpoint: a replay
    would then append to a shortened curve); claims by trials the state lacks are released; trial
    folders of half-trained trials the state lacks are marked ABANDONED; checkpoints the state
    names but Tune had deleted are put back (restore_missing_checkpoints).

    Returns:
        {orphan trial_id: its sampled point}.
    """
    known = tune_trial_ids(path)
    for tid in restore_missing_checkpoints(path):
        print(f"groktune: trial {tid} continues from its next checkpoint (Tune had deleted the one its saved "
              f"state names)", flush=True)
    ledger = read_ledger(path)
    # A packed trial's points (records with "pack") are not Tune trials: their pack is the orphan.
    orphans = {tid: rec.get("config") or {} for tid, rec in ledger.items()
               if tid not in known and rec.get("status") in FINAL_STATUSES and rec.get("replay_of") in (None, tid)
               and "pack" not in rec}
    for tid, rec in ledger.items():
        folder = path / f"trial_{tid}"
        if folder.is_dir() and rec.get("replay_of") in (None, tid):
            write_curve(folder / TUNE_RESULT, rec, rec["config"])
    for claim_file in ledger_dir(path).glob("*.claim"):
        if claim_file.read_text().strip() not in known:
            claim_file.unlink()  # the claiming trial is gone with the lost state; a new one may claim
    for params in path.glob(f"*/{TUNE_PARAMS}"):
        tid = params.parent.name.removeprefix("trial_")
        if tid not in known and tid not in ledger:
            try:
                point = json.loads(params.read_text())
            except ValueError:
                point = {}
            mark_abandoned(path, tid, point)
    return orphans


__all__ = ["check_fresh", "check_resume", "newest_state", "reconcile", "restore_missing_checkpoints",
           "resumable", "tune_trial_ids"]
