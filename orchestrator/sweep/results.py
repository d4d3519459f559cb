"""curves.parquet and trials.parquet from the sweep's files — also while a sweep is running.

Reads only plain files in the experiment folder: each trial's result.json (one JSON line per
report), its params.json (the sampled point), the ledger (orchestrator.sweep.ledger: the one source
of statuses and of a finished trial's curve, written the moment a trial finishes) and
experiment.yaml. Each is checked as it is read (groktune.readback): damage is one line naming
the file and key (exit 2), and nothing is written, so a good trials.parquet or curves.parquet
is never replaced by what could not be read. Nothing here talks to
Ray, and no status is guessed from Ray's experiment_state-*.json files. A trial the ledger
holds but whose result.json lags (Tune copies it to the folder periodically) still gets its row,
from the ledgered final result; a replay of an orphan (see orchestrator.sweep.ledger) and an
abandoned trial get none.

curves.parquet: trial_id, step and every scalar metric, one row per eval (a record repeated
after a retry from a checkpoint, or the adapter's closing report, counts once: the last copy
wins); val_acc_per_class stays as a list column.

trials.parquet: one row per trial — trial_id; one column per searched key, named by the dotted
key ("optim.lr"); seed; task (e.g. "modular:x*y"); status grokked|budget|diverged|pruned|error
from the ledger (a trial not in it yet: running once it reported, else pending); steps_to_target (nullable int);
final_<metric> for every scalar metric of the last eval; wall_time; device; hostname, node_ip,
node_id (the Ray node of the last report) and nodes (every node id it ran on); peak_memory_mb;
cpu_time_s; restarts (starts from a checkpoint: failure retries, resumed sweeps, PBT exploits).

A packed trial (search.pack > 1) gives one row and one curve per point, trial_id
"<trial>_p<j>" (orchestrator.sweep.packing.split_pack), each with its own status: a point's
ledger record once it stopped (its curve, status and steps_to_target, as an unpacked trial's),
else what its pack reported so far; the pack's own record gives no row.

A population trial (search.seeds_per_trial > 1) reports its members' median record, so its curves
are the median curves (plus members_live and grokked_fraction), seed is the first member's, and
status and steps_to_target are the median member's; member_steps_to_target is the JSON text
{"<seed>": steps or null, ...} of every member (steps_to_target rounds an even K's median down).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa

from groktune.errors import DamagedFile, UserError
from groktune.layout import (
    ABANDONED,
    CURVES,
    EXPERIMENT,
    FINAL_STATUSES,
    TRIALS,
    TUNE_PARAMS,
    TUNE_RESULT,
    write_atomic_with,
)
from groktune.errors import ConfigError
from groktune.readback import EVAL_RECORD, check_point, read_json_lines, read_json_object
from orchestrator.config.experiment import load_config, with_values
from orchestrator.sweep.ledger import REPLAY_KEY, lineage, read_ledger
from orchestrator.search.space import CONTINUOUS, PER_VALUE, parse_space
from orchestrator.sweep.packing import OUTCOMES_KEY, PACK_KEY, POINTS_KEY, split_pack
from orchestrator.config.trial import searched_values, task_label, trial_seed

# Ray's bookkeeping keys and per-trial facts kept out of the per-eval curves.
NOT_CURVES = {
    "config", "date", "hostname", "node_ip", "pid", "timestamp", "time_this_iter_s", "time_total_s",
    "time_since_restore", "done", "checkpoint_dir_name", "should_checkpoint", "experiment_tag",
    "status", "steps_to_target", "device", "experiment_id", "member_steps_to_target", REPLAY_KEY, "node_id",
    POINTS_KEY, OUTCOMES_KEY,
}
# Per-trial columns of their own in trials.parquet, or Ray's counters: no final_<key> copy.
NOT_FINAL = {"wall_time", "cpu_time_s", "peak_memory_mb", "resumed_from_step", "training_iteration",
             "iterations_since_restore"}


def read_results(trial_dir: Path) -> list[dict]:
    """The JSON lines of one trial's result.json; a torn last line (a live writer) is skipped.

    Raises:
        DamagedFile: a record before the last is not JSON, or a key has the wrong type.
    """
    path = trial_dir / TUNE_RESULT
    if not path.exists():
        return []
    return read_json_lines(path, EVAL_RECORD, torn_tail=True)


def trial_dirs(path: Path) -> list[Path]:
    return sorted(p.parent for p in path.glob(f"*/{TUNE_PARAMS}"))


def ray_statuses(path: Path) -> dict[str, str]:
    """trial_id -> Ray's trial status in the experiment state Tune would restore from ({} if none).

    Diagnostics only (e.g. what Tune's restore will see): statuses come from the ledger. The
    newest file is the greatest name, as Tune picks it; modification times lie (Tune rewrites
    every session's file when it copies its staging folder).
    """
    files = sorted(path.glob("experiment_state-*.json"))
    for state_file in reversed(files):
        try:
            state = json.loads(state_file.read_text())
            out = {}
            for trial_json, _ in state.get("trial_data", []):
                trial = json.loads(trial_json)
                out[str(trial["trial_id"])] = str(trial["status"])
            return out
        except (ValueError, KeyError, TypeError):
            continue  # being rewritten, or a newer layout: fall back to an older file
    return {}


def curves_frame(trial_id: str, rows: list[dict]) -> pd.DataFrame:
    """One row per eval of the trial's final history (see `lineage`)."""
    evals = [{k: v for k, v in r.items() if k not in NOT_CURVES} for r in lineage(rows)]
    if not evals:
        return pd.DataFrame()
    frame = pd.DataFrame(evals)
    frame["trial_id"] = trial_id
    return frame[["trial_id", "step", *[c for c in frame.columns if c not in ("trial_id", "step")]]]


def trial_row(trial_id: str, rows: list[dict], point: dict, cfg, ledger_status: str | None,
              source: str | Path = TUNE_PARAMS, ledger_steps: int | None | str = "") -> dict:
    """One trials.parquet row from a trial's reports, its sampled point and the experiment config.

    Args:
        trial_id: the trial.
        rows: its result.json records (the ledgered final result appended when result.json lags).
        point: its sampled point.
        cfg: the experiment config.
        ledger_status: its ledger status, None while it is not finished.
        source: the file the point came from, named when it does not fit the search space.
        ledger_steps: the ledger's steps_to_target of a finished trial ("" when its record
            has none: records from before the ledger kept it).
    Returns:
        The row as a dict.
    """
    search = cfg.search
    values = point_values(point, search.space, source)
    row: dict = {"trial_id": trial_id, **values, "seed": trial_seed(point, search.seeds)}
    try:
        # Without the search section: re-checking the whole space per trial made a grid sweep's
        # tables quadratic in its size (each check builds a config per grid value).
        row["task"] = task_label(with_values(dataclasses.replace(cfg, search=None), values))
    except Exception:  # noqa: BLE001 - an invalid sampled point errors in the trial; label from base
        row["task"] = task_label(cfg)
    evals = lineage(rows)
    last = rows[-1] if evals and "step" in rows[-1] else (evals[-1] if evals else {})
    row["status"] = trial_status(last, ledger_status)
    stt = ledger_steps if ledger_status in FINAL_STATUSES and ledger_steps != "" else last.get("steps_to_target")
    row["steps_to_target"] = int(stt) if isinstance(stt, (int, float)) and math.isfinite(stt) else None
    if "member_steps_to_target" in last:  # a population trial
        row["member_steps_to_target"] = last["member_steps_to_target"]
    for key, value in last.items():
        if key not in NOT_CURVES | NOT_FINAL and key != "step" and _is_scalar(value):
            row[f"final_{key}"] = value
    row["final_step"] = last.get("step")
    row["wall_time"] = last.get("wall_time")
    row["device"] = last.get("device")
    row.update(trial_nodes(rows, last))
    row["peak_memory_mb"] = max((r.get("peak_memory_mb") or 0.0 for r in evals), default=None)
    row["cpu_time_s"] = last.get("cpu_time_s")
    # Starts from a checkpoint: failure retries, resumed sweeps, PBT exploits.
    row["restarts"] = sum(1 for r in rows if r.get("iterations_since_restore") == 1 and r.get("training_iteration", 1) > 1
                          and REPLAY_KEY not in r)  # a ledger replay is not a restart: nothing trains
    return row


def point_values(point: dict, space: dict, source: str | Path) -> dict:
    """searched_values of a point read back from a file; DamagedFile when a value cannot be one
    the space samples (a string for a range, a missing key a per-value range needs)."""
    dists = parse_space(space)
    for key, value in point.items():
        kind = dists[key].kind if key in dists else None
        if kind in CONTINUOUS + PER_VALUE and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DamagedFile(f"{source}: {key}: got {value!r:.40}, expected a number (search.space samples {kind})")
    try:
        return searched_values(point, space)
    except (ValueError, TypeError, KeyError) as err:
        raise DamagedFile(f"{source}: the sampled point does not fit search.space ({err})") from None


def trial_nodes(rows: list[dict], last: dict) -> dict:
    """Where a trial ran: hostname, node_ip and Ray node_id of its last report, and `nodes`, every
    node id it reported from in order (two after a retry on another node).

    Ray's own hostname and node_ip are the same for every node of one machine; the adapter's
    node_id (orchestrator.sweep.adapter) tells them apart.
    """
    nodes = list(dict.fromkeys(str(r["node_id"]) for r in rows if r.get("node_id")))
    return {"hostname": last.get("hostname"), "node_ip": last.get("node_ip"), "node_id": last.get("node_id"),
            "nodes": ",".join(nodes) or None}


def trial_status(last: dict, ledger_status: str | None) -> str:
    """The ledger's status; a trial not in the ledger is running once it reported, else pending."""
    if ledger_status in FINAL_STATUSES:
        return ledger_status
    return "running" if last else "pending"


def _is_scalar(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_experiment_config(path: Path):
    """The experiment config saved in a sweep folder; UserError when it is not one."""
    if not (path / EXPERIMENT).exists():
        raise UserError(f"{path}: not a groktune sweep folder ({EXPERIMENT} not found)")
    return load_named(path / EXPERIMENT)


def load_named(file: Path):
    """load_config(file), its errors naming the file (a key's type error alone does not)."""
    try:
        return load_config(file)
    except ConfigError as err:
        message = str(err)
        if message.startswith(str(file)):
            raise
        raise DamagedFile(f"{file}: {message}") from None


def build_tables(path: str | Path, cfg=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curves, trials) DataFrames from the experiment folder, without writing anything; `cfg`:
    its experiment config when the caller has loaded it already (loading checks the whole space).

    Raises:
        UserError: not a sweep folder; DamagedFile (a UserError) naming the first damaged file.
    """
    path = Path(path)
    cfg = cfg if cfg is not None else load_experiment_config(path)
    ledger = read_ledger(path)
    curves, trials = [], []
    for trial_id, rows, point, source in _trials(path, ledger, cfg.search.space):
        record = ledger.get(trial_id) or {}
        if record.get("status") == ABANDONED or record.get("replay_of") not in (None, trial_id):
            continue  # never to finish, or a replay of another trial's record: that trial has the row
        if PACK_KEY in point:  # a packed trial: one trial per point (orchestrator.sweep.packing)
            for point_id, point_rows, one, status in split_pack(trial_id, rows, point[PACK_KEY], record.get("status")):
                own = ledger.get(point_id)  # a point's ledger record, once it stopped, is its truth
                if own is not None:
                    point_rows, status = _with_ledgered(_ledgered_curve(point_rows, own), own), own["status"]
                curves.append(curves_frame(point_id, point_rows))
                trials.append(trial_row(point_id, point_rows, one, cfg, status, ledger_steps=(own or {}).get(
                    "steps_to_target", "")))
            continue
        curves.append(curves_frame(trial_id, rows))
        trials.append(trial_row(trial_id, rows, point, cfg, record.get("status"), source,
                                record.get("steps_to_target", "")))
    curve_frame = pd.concat([c for c in curves if len(c)], ignore_index=True) if any(len(c) for c in curves) \
        else pd.DataFrame(columns=["trial_id", "step"])
    trial_frame = pd.DataFrame(trials)
    if len(trial_frame):
        trial_frame["steps_to_target"] = trial_frame["steps_to_target"].astype("Int64")
    return curve_frame, trial_frame


def _trials(path: Path, ledger: dict[str, dict], space: dict):
    """(trial_id, rows, point, source of the point) of every trial folder and every ledgered
    trial without one.

    A finished trial's rows are its ledger record's curve (what its result.json held when it
    finished): a later driver may have rewritten result.json (orchestrator.sweep.ledger).
    """
    seen = set()
    for tdir in trial_dirs(path):
        rows = read_results(tdir)
        trial_id = _trial_id(tdir, rows)
        seen.add(trial_id)
        point, source = _point(tdir, rows, space)
        yield trial_id, _with_ledgered(_ledgered_curve(rows, ledger.get(trial_id)), ledger.get(trial_id)), point, source
    for trial_id, record in ledger.items():
        if trial_id not in seen and "pack" not in record:  # a point: read with its pack
            source = path / "ledger" / f"{trial_id}.json"
            rows = _ledgered_curve([], record)
            yield trial_id, _with_ledgered(rows, record), record.get("config") or {}, source


def _ledgered_curve(rows: list[dict], record: dict | None) -> list[dict]:
    """The finished trial's curve as its ledger record keeps it, else `rows` (no record yet, or
    a record from before records kept curves)."""
    if record and record.get("status") in FINAL_STATUSES and record.get("curve"):
        return list(record["curve"])
    return rows


def _with_ledgered(rows: list[dict], record: dict | None) -> list[dict]:
    """rows, plus the ledgered final result when result.json lags behind it (a driver kill)."""
    final = (record or {}).get("result") or {}
    if "step" not in final:
        return rows
    steps = [r["step"] for r in rows if "step" in r]
    if steps and steps[-1] >= final["step"] and ("status" not in final or "status" in rows[-1]):
        return rows
    return [*rows, final]


def _point(tdir: Path, rows: list[dict], space: dict) -> tuple[dict, Path]:
    """(the trial's sampled point, the file it came from): its latest reported config (PBT
    changes it), else params.json. Damage is DamagedFile."""
    params = tdir / TUNE_PARAMS
    point = check_point(params, read_json_object(params))  # checked even when a report carries the config
    point_values(point, space, params)
    for r in reversed(rows):
        if isinstance(r.get("config"), dict):
            return check_point(tdir / TUNE_RESULT, r["config"]), tdir / TUNE_RESULT
    return point, params


def _trial_id(tdir: Path, rows: list[dict]) -> str:
    for r in rows:
        if "trial_id" in r:
            return str(r["trial_id"])
    return tdir.name.removeprefix("trial_")


def collect(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rebuild STORAGE/NAME/curves.parquet and trials.parquet (atomically); return both frames.

    Every file is read and checked before either table is written: damage raises DamagedFile
    and leaves both tables as they were.
    """
    path = Path(path)
    curves, trials = build_tables(path)
    encoded = {name: _parquet_bytes(path, frame, name) for frame, name in ((curves, CURVES), (trials, TRIALS))}
    for name, data in encoded.items():  # both encoded first: a table that cannot be written changes neither
        write_atomic_with(path / name, lambda f, data=data: f.write(data))
    return curves, trials


def _parquet_bytes(path: Path, frame: pd.DataFrame, name: str) -> bytes:
    """The frame as Parquet bytes; a column of mixed types (a value of the wrong type in some
    trial's files that no check named) is a UserError naming the table and column."""
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except (pa.ArrowException, ValueError, TypeError) as err:
        detail = " ".join(str(err).split())[:160]
        raise DamagedFile(f"{path}: cannot write {name}: a column holds values of different types in "
                          f"different trials' files ({detail})") from None
    return buffer.getvalue()


def summary(trials: pd.DataFrame, space_keys: list[str]) -> str:
    """A few lines: counts by status and the best trial (earliest steps_to_target, else best score)."""
    if not len(trials):
        return "no trials yet"
    counts = trials["status"].value_counts()
    lines = [f"{len(trials)} trials: " + ", ".join(f"{counts[s]} {s}" for s in counts.index)]
    best = best_trial(trials)
    if best is not None:
        values = ", ".join(f"{k}={_fmt(best[k])}" for k in [*space_keys, "seed"] if k in best)
        reached = f"steps to target {int(best['steps_to_target'])}" if pd.notna(best["steps_to_target"]) \
            else f"not grokked (val_acc {_fmt(best.get('final_val_acc'))})"
        lines.append(f"best: {best['trial_id']} {reached}; {values}")
    return "\n".join(lines)


def best_trial(trials: pd.DataFrame):
    if "steps_to_target" in trials and trials["steps_to_target"].notna().any():
        return trials.loc[trials["steps_to_target"].astype("float").idxmin()]
    if "final_grok_score" in trials and trials["final_grok_score"].notna().any():
        return trials.loc[trials["final_grok_score"].astype("float").idxmin()]
    return None


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = ["CURVES", "TRIALS", "best_trial", "build_tables", "collect", "lineage", "ray_statuses", "summary"]
