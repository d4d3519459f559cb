"""The text of `groktune status DIR`: trial counts, best so far, the driver and its resources.

Reads the experiment folder only (result.json files, the ledger that holds every finished
trial's status, driver.heartbeat written by the sweep's Heartbeat callback); it never connects to Ray.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from groktune.layout import FINAL_STATUSES, HEARTBEAT
from orchestrator.errors import UserError
from orchestrator.paths import read_json_mapping
from orchestrator.results import build_tables, load_experiment_config, summary
from orchestrator.sweep_algos import expected_trials

STALE_S = 60.0


def describe(path: str | Path) -> str:
    """The status text of the sweep folder `path` (UserError when it is not one)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such sweep folder")
    cfg = load_experiment_config(path)
    _, trials = build_tables(path)
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    expected = expected_trials(cfg.search)
    finished = sum(v for k, v in counts.items() if k in FINAL_STATUSES)
    lines = [
        f"sweep {path.name}: {expected} trials planned, {len(trials)} started; "
        f"{counts.get('running', 0)} running, {counts.get('pending', 0) + max(expected - len(trials), 0)} pending, "
        f"{finished} finished ({counts.get('grokked', 0)} grokked)",
        summary(trials, list(cfg.search.space)),
        driver_line(path),
    ]
    return "\n".join(lines)


def driver_line(path: Path) -> str:
    """Whether the driver is alive, and the cluster resources it last saw in use."""
    beat = path / HEARTBEAT
    if not beat.exists():
        return "driver: no heartbeat yet"
    data = read_json_mapping(beat)  # corrupt: one line, exit 2 (orchestrator.paths)
    age = time.time() - data.get("updated", 0)
    if data.get("finished"):
        state = "finished"
    elif age > STALE_S or not _alive(data.get("pid")):
        state = f"not running (last heartbeat {age:.0f}s ago; resume with groktune sweep CONFIG --resume)"
    else:
        state = f"running (pid {data.get('pid')}, heartbeat {age:.0f}s ago)"
    res = data.get("resources") or {}
    total, free = res.get("total", {}), res.get("available", {})
    used = ", ".join(f"{k} {total[k] - free.get(k, 0):g}/{total[k]:g}" for k in ("CPU", "GPU") if k in total)
    return f"driver: {state}" + (f"; resources in use: {used}" if used and state.startswith("running") else "")


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


__all__ = ["describe"]
