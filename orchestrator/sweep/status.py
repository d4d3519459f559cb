"""`groktune status DIR`: a running or finished sweep at a glance, as text or one JSON object.

Reads the experiment folder only (result.json files, the ledger that holds every finished
trial's status, driver.heartbeat written by the sweep's Heartbeat callback); it never connects
to Ray, so it works while the sweep runs, after it finished and after its driver died.

    text = describe("results/demo_sweep")        # counts, best, driver line, per-trial table
    data = status_data("results/demo_sweep")     # the same as plain data (`--json`)
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pandas as pd

from groktune.errors import DamagedFile, UserError
from groktune.layout import FINAL_STATUSES, HEARTBEAT, LIVE_STATUSES
from groktune.readback import HEARTBEAT_DATA, check_schema, read_json_object
from orchestrator.search.algos import expected_trials
from orchestrator.sweep.results import best_trial, build_tables, load_experiment_config, summary

STALE_S = 60.0
TABLE_LIMIT = 40  # rows of the text table by default (live trials first, then the best)
# Driver states: `finished`, `running`, `stopped` (died or killed: --resume continues it), `not started`.
DRIVER_STATES = ("finished", "running", "stopped", "not started")


def read_json_mapping(path: Path) -> dict:
    """A JSON object from a file groktune wrote (heartbeat, result); UserError if it is not one.

    Args:
        path: the file.
    Returns:
        The parsed dict.
    Raises:
        UserError: one line naming the file (unreadable, not UTF-8, not JSON, not an object).
    """
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise UserError(f"{path}: not valid JSON ({' '.join(str(err).split())[:80]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def describe(path: str | Path, limit: int = TABLE_LIMIT) -> str:
    """The status text of the sweep folder `path`.

    Args:
        path: the sweep folder, STORAGE/NAME.
        limit: rows of the per-trial table; 0 shows every trial.
    Returns:
        A heading line, the summary (counts, best), the driver line, then the table.
    Raises:
        UserError (one line) when `path` is not a sweep folder.
    """
    path, cfg, trials = _load(path)
    keys = list(cfg.search.params)
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    expected = expected_trials(cfg.search)
    finished = sum(v for k, v in counts.items() if k in FINAL_STATUSES)
    lines = [
        f"sweep {path.name}: {expected} trials planned, {len(trials)} started; "
        f"{counts.get('running', 0)} running, {counts.get('pending', 0) + max(expected - len(trials), 0)} pending, "
        f"{finished} finished ({counts.get('grokked', 0)} grokked)",
        summary(trials, keys),
        driver_line(driver_state(path)),
    ]
    if len(trials):
        lines += ["", *trial_table(trials, keys, limit)]
    return "\n".join(lines)


def status_data(path: str | Path) -> dict:
    """The sweep's status as plain data (what `groktune status DIR --json` prints).

    Args:
        path: the sweep folder.
    Returns:
        {"sweep", "path", "status" (DRIVER_STATES), "driver", "planned", "started", "counts"
        ({status: n}), "best" (a trial entry or None), "trials" ([{trial_id, status, params,
        seed, step, val_acc, grok_score, steps_to_target, node, restarts}], ordered as the table)}.
    Raises:
        UserError (one line) when `path` is not a sweep folder.
    """
    path, cfg, trials = _load(path)
    keys = list(cfg.search.params)
    driver = driver_state(path)
    best = best_trial(trials) if len(trials) else None
    return {
        "sweep": path.name,
        "path": str(path),
        "status": driver["state"],
        "driver": driver,
        "planned": expected_trials(cfg.search),
        "started": len(trials),
        "counts": {str(k): int(v) for k, v in trials["status"].value_counts().items()} if len(trials) else {},
        "best": None if best is None else trial_entry(best, keys),
        "trials": [trial_entry(row, keys) for _, row in _ordered(trials).iterrows()],
    }


def _load(path: str | Path):
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such sweep folder")
    cfg = load_experiment_config(path)  # UserError when it is not a sweep folder
    _, trials = build_tables(path, cfg)
    return path, cfg, trials


def _ordered(trials: pd.DataFrame) -> pd.DataFrame:
    """Live trials first (running, paused, pending), then finished ones best first: earliest
    steps to target, then lowest final grok_score."""
    if not len(trials):
        return trials
    live = trials["status"].map(lambda s: LIVE_STATUSES.index(s) if s in LIVE_STATUSES else len(LIVE_STATUSES))
    def numbers(column: str) -> pd.Series:
        if column not in trials:
            return pd.Series(math.nan, index=trials.index)
        return pd.to_numeric(trials[column].astype("object"), errors="coerce")

    key = pd.DataFrame({"live": live, "stt": numbers("steps_to_target"), "score": numbers("final_grok_score")},
                       index=trials.index)
    order = key.sort_values(["live", "stt", "score"], na_position="last", kind="stable").index
    return trials.loc[order]


def trial_entry(row: pd.Series, keys: list[str]) -> dict:
    """One trial as plain JSON-able data (NaN and missing values become None)."""
    return {
        "trial_id": str(row["trial_id"]),
        "status": str(row["status"]),
        "params": {k: _plain(row.get(k)) for k in keys},
        "seed": _plain(row.get("seed")),
        "step": _plain(row.get("final_step")),
        "val_acc": _plain(row.get("final_val_acc")),
        "grok_score": _plain(row.get("final_grok_score")),
        "steps_to_target": _plain(row.get("steps_to_target")),
        "node": {k: _plain(row.get(k)) for k in ("hostname", "node_ip", "node_id", "nodes")},
        "restarts": _plain(row.get("restarts")),
    }


def trial_table(trials: pd.DataFrame, keys: list[str], limit: int = TABLE_LIMIT) -> list[str]:
    """The per-trial table: trial, status, searched values, seed, step, val_acc, steps to target, node.

    Args:
        trials: the trials table (orchestrator.sweep.results.build_tables).
        keys: the searched keys (columns, shown by their last component when that is unique).
        limit: rows shown (0: all); a last line counts the rest.
    Returns:
        Lines of aligned text.
    """
    short = {k: k.rsplit(".", 1)[-1] for k in keys}
    if len(set(short.values())) < len(short):
        short = {k: k for k in keys}
    header = ["trial", "status", *short.values(), "seed", "step", "val_acc", "to target", "node"]
    ordered = _ordered(trials)
    shown = ordered if limit <= 0 else ordered.head(limit)
    rows = [[str(r["trial_id"]), str(r["status"]), *(_cell(r.get(k)) for k in keys), _cell(r.get("seed")),
             _cell(r.get("final_step")), _cell(r.get("final_val_acc"), ".3f"), _cell(r.get("steps_to_target")),
             _node(r)] for _, r in shown.iterrows()]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *rows]]
    if len(ordered) > len(shown):
        lines.append(f"... {len(ordered) - len(shown)} more trial(s) (--limit 0 shows all, --json gives every one)")
    return lines


def _node(row: pd.Series) -> str:
    """The node a trial last reported from: a short Ray node id (several nodes share one IP on a
    machine), else its IP or host; `+N` when it also ran on N other nodes (a retry elsewhere)."""
    node_id = _plain(row.get("node_id"))
    text = str(node_id)[:8] if node_id else str(_plain(row.get("node_ip")) or _plain(row.get("hostname")) or "-")
    others = len(str(_plain(row.get("nodes")) or "").split(",")) - 1
    return text + (f"+{others}" if others > 0 else "")


def _cell(value, fmt: str = ".3g") -> str:
    value = _plain(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, fmt)
    return str(value)


def _plain(value):
    """Python scalars for numpy/pandas ones; None for NaN, infinity, NA and missing values."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    return value


def driver_state(path: Path) -> dict:
    """What the heartbeat says: {"state" (DRIVER_STATES), "pid", "host", "heartbeat_age_s",
    "resources_in_use" ({resource: [used, total]}, only while running)}."""
    beat = path / HEARTBEAT
    if not beat.exists():
        return {"state": "not started", "pid": None, "host": None, "heartbeat_age_s": None, "resources_in_use": {}}
    data = read_json_object(beat, HEARTBEAT_DATA)  # damaged: one line naming it, exit 2
    res = check_schema(beat, data.get("resources") or {}, {"total": "dict", "available": "dict"}, where="resources.")
    for part in ("total", "available"):
        for key, value in (res.get(part) or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DamagedFile(f"{beat}: resources.{part}.{key}: got {value!r:.40}, expected a number")
    age = time.time() - float(data.get("updated", 0) or 0)
    if data.get("finished"):
        state = "finished"
    elif age > STALE_S or not _alive(data.get("pid")):
        state = "stopped"
    else:
        state = "running"
    total, free = res.get("total", {}), res.get("available", {})
    used = {k: [total[k] - free.get(k, 0), total[k]] for k in ("CPU", "GPU") if k in total} if state == "running" else {}
    return {"state": state, "pid": data.get("pid"), "host": data.get("host"), "heartbeat_age_s": round(age, 1),
            "resources_in_use": used}


def driver_line(driver: dict) -> str:
    """One line from driver_state: alive or not, and the resources it last saw in use."""
    state, age = driver["state"], driver["heartbeat_age_s"]
    if state == "not started":
        return "driver: no heartbeat yet"
    if state == "stopped":
        return f"driver: not running (last heartbeat {age:.0f}s ago; resume with groktune sweep CONFIG --resume)"
    if state == "finished":
        return "driver: finished"
    used = ", ".join(f"{k} {u:g}/{t:g}" for k, (u, t) in driver["resources_in_use"].items())
    return f"driver: running (pid {driver['pid']}, heartbeat {age:.0f}s ago)" + (f"; resources in use: {used}" if used else "")


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["DRIVER_STATES", "TABLE_LIMIT", "describe", "driver_line", "driver_state", "read_json_mapping", "status_data",
           "trial_table"]
