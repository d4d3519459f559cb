"""What was run: versions, hardware and dates, from the saved results (and, marked as such,
the environment that wrote the report)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from groktune.layout import CURVES, ENVIRONMENT, EXPERIMENT, METRICS, RESULT, TRIALS, VERSIONS
from groktune.versions import package_versions

VERSION_FILES = (ENVIRONMENT, VERSIONS)


def report_versions() -> dict[str, str]:
    """Versions of Python and the packages in the environment writing the report."""
    return package_versions()


def _version_dirs(results) -> list[Path]:
    """Folders that may hold a versions file: the results folder and, for a folder of runs,
    each run folder (`groktune train` writes one into its run folder)."""
    root = Path(results.path)
    if results.kind != "runs":
        return [root]
    return [root, *(root / str(t) for t in results.trials["trial_id"])]


def recorded_versions(results) -> dict[str, str]:
    """Versions the results themselves recorded: versions.json written by `train`/`sweep`
    (groktune.versions) or an environment.json, else result.json "versions"/"environment"
    keys; {} when they recorded none. Runs that disagree show every value."""
    files: dict[str, set[str]] = {}
    extras: dict[str, set[str]] = {}

    def add(found: dict, data: dict) -> None:
        for k, v in data.items():
            if not isinstance(v, (dict, list)):
                found.setdefault(str(k), set()).add(str(v))

    for extra in (results.meta.get("runs") or {}).values():
        for key in ("versions", "environment"):
            if isinstance(extra.get(key), dict):
                add(extras, extra[key])
    for folder in _version_dirs(results):
        for name in VERSION_FILES:
            try:
                data = json.loads((folder / name).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                add(files, data)
    return {k: ", ".join(sorted(v)) for k, v in (files or extras).items()}


def _result_files(results) -> list[Path]:
    root = Path(results.path)
    if results.kind == "sweep":
        names = [EXPERIMENT, CURVES, TRIALS]
        return [root / n for n in names if (root / n).exists()]
    dirs = [root] if results.kind == "run" else [root / t for t in results.trials["trial_id"]]
    return [d / n for d in dirs for n in (METRICS, RESULT) if (d / n).exists()]


def _ray_trial_info(root: Path, limit: int = 500) -> dict[str, set]:
    """Dates and hosts from Ray's per-trial result.json (JSON lines) in a sweep dir."""
    info: dict[str, set] = {"date": set(), "hostname": set()}
    for path in sorted(root.glob("*/result.json"))[:limit]:
        try:
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            records = [json.loads(lines[0]), json.loads(lines[-1])] if lines else []
        except (OSError, ValueError):
            continue
        for record in records:
            for key in info:
                if isinstance(record, dict) and record.get(key):
                    info[key].add(str(record[key]))
    return info


def dates(results) -> dict[str, str]:
    """When the results were written (file times; Ray's trial dates for a sweep) and now."""
    out = {}
    times = [p.stat().st_mtime for p in _result_files(results)]
    if times:
        fmt = "%Y-%m-%d %H:%M:%S"
        out["results first written"] = dt.datetime.fromtimestamp(min(times)).strftime(fmt)
        out["results last written"] = dt.datetime.fromtimestamp(max(times)).strftime(fmt)
    if results.kind == "sweep":
        ray = _ray_trial_info(Path(results.path))
        if ray["date"]:
            out["first trial report (Ray)"] = min(ray["date"])
            out["last trial report (Ray)"] = max(ray["date"])
        if ray["hostname"]:
            out["hosts (Ray)"] = ", ".join(sorted(ray["hostname"]))
    out["report written"] = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return out


def hardware_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per device: trials, median wall time, peak memory and CPU time (columns that exist)."""
    frame = trials.copy()
    frame["device"] = frame["device"].fillna("unknown").astype(str) if "device" in frame else "unknown"
    aggs = {"trials": ("trial_id", "count")}
    for col, how, label in (("wall_time", "median", "median wall time (s)"),
                            ("wall_time", "sum", "total wall time (s)"),
                            ("peak_memory_mb", "max", "max peak memory (MB)"),
                            ("cpu_time_s", "sum", "total CPU time (s)")):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
            aggs[label] = (col, how)
    return frame.groupby("device").agg(**aggs).reset_index()
