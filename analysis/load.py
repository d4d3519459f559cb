"""Loading saved results into tidy frames: a sweep dir, a run dir, or a folder of run dirs.

    results = load("~/groktune_results/modmul_sweep")
    results.curves   # trial_id, step, train_acc, val_acc, ... (one row per eval)
    results.trials   # trial_id, task, status, steps_to_target, <dotted config keys> ...

Only files on disk are read (curves.parquet, trials.parquet, experiment.yaml; config.yaml,
metrics.jsonl, result.json); nothing here imports the trainer or Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.runs import load_run, read_yaml_mapping
from groktune.errors import ResultsError
from groktune.layout import CONFIG, CURVES, EXPERIMENT, METRICS, RESULT, TRIALS, task_label
from groktune.readback import read_ledger_folder
from groktune.space import Dist, parse_space

REQUIRED_CURVES = ("trial_id", "step", "train_acc", "val_acc")


@dataclass
class Results:
    """Everything the report needs from one results folder."""

    kind: str
    """sweep | run | runs"""
    path: Path
    curves: pd.DataFrame
    """One row per eval: trial_id, step, metric columns; sorted, one row per (trial_id, step)."""
    trials: pd.DataFrame
    """One row per trial: trial_id, task, status, steps_to_target, final_*, config columns."""
    config: dict
    """The experiment config (a sweep's experiment.yaml, or the first run's config.yaml)."""
    searched: list[str] = field(default_factory=list)
    """Dotted config keys that were searched (a sweep) or differ between runs (a folder)."""
    params: dict[str, Dist] = field(default_factory=dict)
    """The search space the sweep recorded (its experiment.yaml's `search.space`), parsed by
    groktune.space.parse_space, the parser the sweep itself used: typed distributions by key; {}."""
    meta: dict = field(default_factory=dict)
    """Provenance: files read, dates, versions and hardware found in the results, skips."""


def load(path: str | Path) -> Results:
    """Load a sweep dir, a single `groktune train` run dir, or a folder of run dirs.

    Args:
        path: the results folder.
    Returns:
        Results with tidy curves and trials frames.
    Raises:
        ResultsError: the folder is missing, empty or malformed (one-line message).
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise ResultsError(f"{root}: no such results folder")
    if not root.is_dir():
        raise ResultsError(f"{root}: not a folder; give a sweep dir, a run dir or a folder of runs")
    if (root / CURVES).exists() or (root / TRIALS).exists():
        return _load_sweep(root)
    if (root / METRICS).exists():
        return _load_runs(root, [root], kind="run")
    run_dirs = sorted({p.parent for p in root.rglob(METRICS)})
    if not run_dirs and (root / EXPERIMENT).exists():
        raise ResultsError(f"{root}: a sweep folder without curves.parquet and trials.parquet yet; "
                           f"build them from Ray's files with `groktune collect {root}`")
    if not run_dirs:
        raise ResultsError(
            f"{root}: no results found; expected curves.parquet + trials.parquet (a sweep), "
            "metrics.jsonl (a run) or run folders holding metrics.jsonl")
    return _load_runs(root, run_dirs, kind="runs")


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ResultsError(f"{path}: missing (a sweep dir holds curves.parquet and trials.parquet)")
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise ResultsError(f"{path}: not a readable Parquet file ({type(err).__name__})") from None


def _require(frame: pd.DataFrame, columns, where: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ResultsError(f"{where}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise ResultsError(f"{where}: no rows")


def tidy_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Numeric metric columns, sorted by (trial_id, step), the last record of a repeated step.

    Args:
        curves: raw per-eval records with trial_id and step.
    Returns:
        A new frame; non-scalar and non-numeric metric columns are dropped.
    """
    curves = curves.copy()
    curves["trial_id"] = curves["trial_id"].astype(str)
    curves["step"] = pd.to_numeric(curves["step"], errors="coerce")
    curves = curves.dropna(subset=["step"])
    keep = ["trial_id", "step"]
    for col in curves.columns.drop(keep):
        values = pd.to_numeric(curves[col], errors="coerce")
        if values.notna().any() or curves[col].isna().all():
            curves[col] = values.astype(np.float64)
            keep.append(col)
    curves = curves[keep].astype({"step": np.int64})
    # keep="last": a trial resumed from a checkpoint logs its later steps again
    curves = curves.drop_duplicates(["trial_id", "step"], keep="last")
    return curves.sort_values(["trial_id", "step"], kind="stable").reset_index(drop=True)


def _complete_trials(trials: pd.DataFrame, curves: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Add rows for trials that only have curves, and default task/status columns."""
    trials = trials.copy()
    trials["trial_id"] = trials["trial_id"].astype(str)
    extra = sorted(set(curves["trial_id"]) - set(trials["trial_id"]))
    if extra:
        trials = pd.concat([trials, pd.DataFrame({"trial_id": extra})], ignore_index=True)
    if "status" not in trials:
        trials["status"] = "unknown"
    trials["status"] = trials["status"].fillna("unknown").astype(str)
    if "task" not in trials:
        task = config.get("task") or {}
        default = task_label(task)
        ops = trials["task.op"] if "task.op" in trials else [None] * len(trials)
        trials["task"] = [task_label({**task, "op": op}) if isinstance(op, str) else default
                          for op in ops]
    trials["task"] = trials["task"].fillna("unknown").astype(str)
    return trials.drop_duplicates("trial_id", keep="last").reset_index(drop=True)


def _load_sweep(root: Path) -> Results:
    read_ledger_folder(root)  # the statuses' source: damage there is one line naming it, never a report
    curves = _read_parquet(root / CURVES)
    trials = _read_parquet(root / TRIALS)
    _require(curves, REQUIRED_CURVES, root / CURVES)
    _require(trials, ["trial_id"], root / TRIALS)
    config = read_yaml_mapping(root / EXPERIMENT)
    curves = tidy_curves(curves)
    trials = _complete_trials(trials, curves, config)
    params = recorded_space(config, root / EXPERIMENT)
    searched = [k for k in params if k in trials.columns]
    if not searched:  # no experiment.yaml: fall back on dotted columns that vary
        searched = _varying(trials, [c for c in trials.columns if "." in c])
    meta = {"files": [EXPERIMENT, CURVES, TRIALS], "skipped": []}
    return Results("sweep", root, curves, trials, config, searched, params, meta)


def recorded_space(config: dict, source: Path) -> dict[str, Dist]:
    """The search space a sweep recorded in its experiment config, parsed (groktune.space);
    {} without one. ResultsError naming `source` when it does not parse."""
    space = (config.get("search") or {}).get("space") or {}
    if not isinstance(space, dict):
        raise ResultsError(f"{source}: search.space: got {type(space).__name__}, expected a mapping")
    try:
        return parse_space(space)
    except ValueError as err:
        raise ResultsError(f"{source}: search.{err}") from None


def _varying(trials: pd.DataFrame, columns: list[str]) -> list[str]:
    return [c for c in columns if trials[c].astype(str).nunique(dropna=False) > 1]


def _load_runs(root: Path, run_dirs: list[Path], kind: str) -> Results:
    runs, skipped = [], []
    for run_dir in run_dirs:
        try:
            runs.append(load_run(run_dir, trial_id=_run_id(root, run_dir)))
        except ResultsError as err:
            if kind == "run":
                raise
            skipped.append(str(err))
    if not runs:
        raise ResultsError(f"{root}: no readable runs ({len(skipped)} skipped; first: {skipped[0]})")
    curves = tidy_curves(pd.concat([r.curves for r in runs], ignore_index=True))
    trials = pd.DataFrame([r.row for r in runs])
    config = runs[0].config
    trials = _complete_trials(trials, curves, config)
    config_cols = [c for c in trials.columns if "." in c]
    searched = _varying(trials, config_cols) if len(runs) > 1 else []
    meta = {"files": [CONFIG, METRICS, RESULT], "skipped": skipped,
            "runs": {r.row["trial_id"]: r.extra for r in runs if r.extra}}
    return Results(kind, root, curves, trials, config, searched, {}, meta)


def _run_id(root: Path, run_dir: Path) -> str:
    rel = run_dir.relative_to(root).as_posix()
    return run_dir.name if rel == "." else rel
