"""Reading one `groktune train` run dir: config.yaml, metrics.jsonl and result.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from groktune.errors import DamagedFile, ResultsError
from groktune.layout import CONFIG, METRICS, RESULT, task_label
from groktune.readback import EVAL_RECORD, RUN_RESULT, check_schema, read_json_lines, read_json_object
from groktune.yamlio import load_yaml_file

# result.json keys that become trial columns; any other key is kept as provenance (`extra`).
RESULT_KEYS = ("status", "steps_to_target", "final_step", "wall_time", "final")


@dataclass
class LoadedRun:
    curves: pd.DataFrame
    row: dict
    """The run's row of the trials frame."""
    config: dict
    extra: dict = field(default_factory=dict)
    """Keys of result.json beyond the contract (versions, device, ...), shown in the report."""


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested config -> {dotted key: scalar}; lists become comma-joined strings.

    Args:
        config: a nested mapping.
        prefix: prepended to every key (used in recursion).
    Returns:
        A flat dict of dotted keys.
    """
    flat = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{dotted}."))
        elif isinstance(value, (list, tuple)):
            flat[dotted] = ",".join(map(str, value))
        else:
            flat[dotted] = value
    return flat


def read_metrics(path: Path) -> list[dict]:
    """Eval records from metrics.jsonl; a damaged last line (a run killed mid-write) is skipped.

    Raises:
        ResultsError: the file is empty, a line before the last is not a JSON object, or a
            record's key has the wrong type (groktune.readback.EVAL_RECORD).
    """
    try:
        records = read_json_lines(path, EVAL_RECORD, torn_tail=True)
    except DamagedFile as err:
        raise ResultsError(str(err)) from None
    if not records:
        raise ResultsError(f"{path}: no eval records")
    return records


def _read_json(path: Path) -> dict:
    """A run's result.json, its types checked (groktune.readback.RUN_RESULT); {} when absent."""
    if not path.exists():
        return {}
    try:
        data = read_json_object(path, RUN_RESULT)
        check_schema(path, data.get("final") or {}, EVAL_RECORD, where="final.")
    except DamagedFile as err:
        raise ResultsError(str(err)) from None
    return data


def read_yaml_mapping(path: Path) -> dict:
    """A YAML mapping from `path`, {} when the file is missing or empty; ResultsError if malformed."""
    if not path.exists():
        return {}
    data = load_yaml_file(path, ResultsError)  # the one loader: duplicate keys, alias limits, 1e-3
    if data is not None and not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a mapping of config sections")
    return data or {}


def load_run(run_dir: Path, trial_id: str) -> LoadedRun:
    """Read one run dir into its curves, its trials row and its config.

    Args:
        run_dir: a folder holding metrics.jsonl (config.yaml and result.json are optional:
            a run still going or killed has no result.json; its status is "incomplete").
        trial_id: the id given to the run (its path relative to the folder loaded).
    Returns:
        LoadedRun(curves, row, config, extra).
    Raises:
        ResultsError: a file is malformed or metrics.jsonl lacks step/train_acc/val_acc.
    """
    records = read_metrics(run_dir / METRICS)
    scalars = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in records]
    curves = pd.DataFrame(scalars)
    missing = [c for c in ("step", "train_acc", "val_acc") if c not in curves]
    if missing:
        raise ResultsError(f"{run_dir / METRICS}: records lack {', '.join(missing)}")
    curves.insert(0, "trial_id", trial_id)
    config = read_yaml_mapping(run_dir / CONFIG)
    result = _read_json(run_dir / RESULT)
    row = {"trial_id": trial_id, **flatten(config)}
    row.update(_outcome(result, curves.sort_values("step").iloc[-1], config))
    extra = {k: v for k, v in result.items() if k not in RESULT_KEYS}
    return LoadedRun(curves=curves, row=row, config=config, extra=extra)


def _outcome(result: dict, last: pd.Series, config: dict) -> dict:
    """Trial columns from result.json, falling back on the last eval record."""
    final = result.get("final") or {}

    def pick(metric: str):
        value = final.get(metric, last.get(metric))
        return None if value is None else float(value)

    return {
        "task": task_label(config.get("task") or {}),
        "seed": config.get("seed"),
        "status": result.get("status", "incomplete"),
        "steps_to_target": result.get("steps_to_target"),
        "final_step": int(result.get("final_step", last["step"])),
        "final_val_acc": pick("val_acc"),
        "final_train_acc": pick("train_acc"),
        "final_val_loss": pick("val_loss"),
        "wall_time": result.get("wall_time", last.get("wall_time")),
        "device": result.get("device", (config.get("train") or {}).get("device")),
    }
