"""GrokBench's table: published grokking results beside groktune's, computed from saved runs.

Pure: every function takes the runs' curves (as `groktune train` saved them) and a setting's
spec, and returns rows; nothing here trains, imports torch or reads the bench index (that is
orchestrator.bench). One row per setting, or per grid point plus a summary row for grid
settings (the Liu et al. phase grid, the weight-decay sweep).

Steps to 95 % / 99 % val are groktune.events' rule (first step of `DEFAULT_PATIENCE` evals in
a row at the threshold), the rule the trainer, the score and the report share. A seed that did
not reach a threshold within its budget counts as +inf for the median (so the median is "not
reached" once half the seeds failed) and adds to the failure rate; the spread is min-max over
the seeds that reached it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.safe_text import csv_safe_frame, md_escape
from analysis.grokking import DEFAULT_DELAY_BOUNDARY, PHASES, classify_phase
from groktune.events import DEFAULT_PATIENCE, first_event

CHECKS = ("steps", "censored", "stalls", "generalises", "phases", "wd_trend", "init_trend")
"""How a setting is judged against its paper (configs/bench/index.yaml documents each)."""

COLUMNS = ("setting", "point", "paper", "claim", "paper_steps", "threshold", "seeds", "budget",
           "median_95", "spread_95", "median_99", "spread_99", "failed", "phase", "wall_s_per_run",
           "ratio", "verdict")
"""The table's columns, in order (markdown and csv)."""

WITHIN = 2.0
"""A result reproduces when ours is within this factor of the paper's number."""


@dataclass(frozen=True)
class BenchSetting:
    """One published setting (an entry of configs/bench/index.yaml)."""

    name: str
    config: str
    paper: str
    claim: str
    check: str
    threshold: float = 0.95
    paper_steps: tuple[float, float] | None = None
    """(low, high): the paper's steps to `threshold` (low == high for one number); None: none given."""
    max_seeds: int | None = None
    grid: dict[str, list] = field(default_factory=dict)
    delay_boundary: float = DEFAULT_DELAY_BOUNDARY
    differs: str = ""
    """What differs from the paper's setup, appended to a verdict that does not reproduce."""
    gpu_command: str = ""
    """The command that runs the setting's published budget on a GPU, where it cannot fit a 2-core
    CPU; a table without its runs says so instead of a verdict."""


@dataclass
class BenchRun:
    """One finished (or interrupted) run of a setting."""

    point: dict
    """Grid values of this run ({} outside a grid)."""
    seed: int
    curve: pd.DataFrame
    """The run's records: step, train_acc, val_acc (and anything else)."""
    budget: int
    """train.steps of the run."""
    wall_time: float | None
    status: str


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every point of a grid ({key: [values]}), the first key varying slowest; [{}] for no grid."""
    points = [{}]
    for key, values in grid.items():
        points = [{**p, key: v} for p in points for v in values]
    return points


def point_label(point: dict) -> str:
    """'lr=0.001_weight_decay=1' for {'optim.lr': 1e-3, 'optim.weight_decay': 1.0}; '' for {}."""
    return "_".join(f"{key.rsplit('.', 1)[-1]}={value:g}" if isinstance(value, (int, float))
                    else f"{key.rsplit('.', 1)[-1]}={value}" for key, value in point.items())


def run_events(run: BenchRun, threshold: float, delay_boundary: float) -> dict:
    """Steps to 95 % and 99 % val, and the Liu phase at `threshold`, of one run.

    Args:
        run: the run.
        threshold: accuracy that decides memorised/generalised for the phase.
        delay_boundary: steps between the two events that make the phase "grokking".
    Returns:
        {"s95": step or None, "s99": step or None, "phase": one of PHASES}.
    """
    c = run.curve
    s95 = first_event(c["step"], c["val_acc"], threshold=0.95, patience=DEFAULT_PATIENCE)
    s99 = first_event(c["step"], c["val_acc"], threshold=0.99, patience=DEFAULT_PATIENCE)
    mem = first_event(c["step"], c["train_acc"], threshold=threshold, patience=DEFAULT_PATIENCE)
    gen = s95 if threshold == 0.95 else s99 if threshold == 0.99 else \
        first_event(c["step"], c["val_acc"], threshold=threshold, patience=DEFAULT_PATIENCE)
    return {"s95": s95, "s99": s99, "phase": classify_phase(mem, gen, delay_boundary=delay_boundary)}


def median_failures_as_inf(steps: list[int | None]) -> float:
    """The plain median with runs that never reached counted as +inf (inf once half or more
    failed): GrokBench's number, comparable with papers' medians over seeds. The report's
    estimator, which censors a run at its last step instead, is analysis.summary.kaplan_meier_median."""
    values = [math.inf if s is None else float(s) for s in steps]
    return float(statistics.median(values)) if values else math.nan


def _spread(steps: list[int | None]) -> str:
    reached = [s for s in steps if s is not None]
    return f"{min(reached)}–{max(reached)}" if reached else "–"


def _fmt_steps(value: float, budget: int) -> str:
    if math.isnan(value):
        return "–"
    return f"> {budget}" if math.isinf(value) else f"{value:g}"


def _ratio(ours: float, paper: tuple[float, float] | None) -> float | None:
    """ours / paper; for a range, 1 inside it and the ratio to the nearer bound outside."""
    if paper is None or not math.isfinite(ours):
        return None
    low, high = paper
    return 1.0 if low <= ours <= high else ours / (low if ours < low else high)


def _paper_text(paper: tuple[float, float] | None) -> str:
    if paper is None:
        return "–"
    low, high = paper
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


def _group_rows(setting: BenchSetting, runs: list[BenchRun]) -> list[dict]:
    """One row per grid point (one in all outside a grid), verdict filled for non-grid checks."""
    groups: dict[str, list[BenchRun]] = {}
    for run in runs:
        groups.setdefault(point_label(run.point), []).append(run)
    rows = []
    for label, members in groups.items():
        events = [run_events(r, setting.threshold, setting.delay_boundary) for r in members]
        key = "s95" if setting.threshold == 0.95 else "s99"
        at = [e[key] for e in events]
        budget = max(r.budget for r in members)
        median = median_failures_as_inf(at)
        phases = [e["phase"] for e in events]
        walls = [r.wall_time for r in members if r.wall_time is not None]
        stopped = sum(r.status == "incomplete" for r in members)  # no result.json: killed or still going
        ratio = _ratio(median, setting.paper_steps)
        rows.append({
            "setting": setting.name, "point": label or "–", "paper": setting.paper, "claim": setting.claim,
            "paper_steps": _paper_text(setting.paper_steps), "threshold": setting.threshold,
            "seeds": len(members), "budget": budget,
            "median_95": _fmt_steps(median_failures_as_inf([e["s95"] for e in events]), budget),
            "spread_95": _spread([e["s95"] for e in events]),
            "median_99": _fmt_steps(median_failures_as_inf([e["s99"] for e in events]), budget),
            "spread_99": _spread([e["s99"] for e in events]),
            "failed": f"{sum(s is None for s in at)}/{len(at)}" + (f" ({stopped} interrupted)" if stopped else ""),
            "phase": max(PHASES, key=phases.count),
            "wall_s_per_run": f"{statistics.median(walls):.1f}" if walls else "–",
            "ratio": f"{ratio:.2f}×" if ratio is not None else "–",
            "verdict": _verdict(setting, median, budget),
            "_median": median, "_point": members[0].point,
        })
    return rows


def _verdict(setting: BenchSetting, median: float, budget: int) -> str:
    """The verdict of one group for the checks that judge a single number."""
    differs = f"; {setting.differs}" if setting.differs else ""
    reached = math.isfinite(median)
    if setting.check == "steps":
        low, high = setting.paper_steps or (math.nan, math.nan)
        if not reached:
            return f"does not reproduce (not reached in {budget} steps{differs})"
        if low / WITHIN <= median <= high * WITHIN:
            return "reproduces within 2×"
        return f"does not reproduce ({median:g} vs {_paper_text(setting.paper_steps)}{differs})"
    if setting.check == "censored":
        if not reached:
            return f"consistent, censored: not reached in {budget} < {_paper_text(setting.paper_steps)} steps"
        return f"does not reproduce (reached at {median:g}, paper {_paper_text(setting.paper_steps)}{differs})"
    if setting.check == "stalls":
        return (f"reproduces (no generalisation in {budget} steps)" if not reached
                else f"does not reproduce (generalised at {median:g}{differs})")
    if setting.check == "generalises":
        return (f"reproduces (generalises at {median:g})" if reached
                else f"does not reproduce (not in {budget} steps{differs})")
    return ""  # grid checks: judged over all points in summary_row


TRENDS = {"wd_trend": ("optim.weight_decay", "fall", "weight decay"),
          "init_trend": ("model.init_scale", "rise", "initial weight scale")}
"""Grid checks that judge the medians' direction along one key: (key, direction, words)."""


def _trend_verdict(setting: BenchSetting, rows: list[dict], differs: str) -> tuple[str, str]:
    """(verdict, medians chain) of a wd_trend or init_trend setting over its grid rows."""
    key, direction, words = TRENDS[setting.check]
    ordered = sorted(rows, key=lambda r: float(r["_point"].get(key, 0.0)))
    medians = [r["_median"] for r in ordered]
    pairs = list(zip(medians, medians[1:]))
    if direction == "fall":
        ok = all(b <= a for a, b in pairs) and medians[-1] < medians[0]
    else:
        ok = all(b >= a for a, b in pairs) and medians[-1] > medians[0]
    budget = max(r["budget"] for r in rows)
    chain = " → ".join(_fmt_steps(m, budget) for m in medians)
    if ok:
        return f"reproduces: steps {direction} as {words} rises ({chain})", chain
    return f"does not reproduce (medians by rising {words}: {chain}{differs})", chain


def summary_row(setting: BenchSetting, rows: list[dict]) -> dict | None:
    """The verdict row of a grid setting ("phases", "wd_trend" or "init_trend"); None for other checks."""
    if setting.check not in ("phases", *TRENDS):
        return None
    differs = f"; {setting.differs}" if setting.differs else ""
    ran = {r["point"] for r in rows}
    absent = [label for label in (point_label(p) for p in grid_points(setting.grid)) if label not in ran]
    if setting.check == "phases":
        found = [p for p in PHASES if any(r["phase"] == p for r in rows)]
        missing = [p for p in PHASES if p not in found]
        verdict = ("reproduces: all four phases" if not missing else
                   f"does not reproduce (found {', '.join(found) or 'none'}; missing {', '.join(missing)}{differs})")
        counts = ", ".join(f"{p} {sum(r['phase'] == p for r in rows)}" for p in found)
    else:
        verdict, counts = _trend_verdict(setting, rows, differs)
    if absent:  # a grid verdict needs every point: never judge a trend or the phases on part of it
        verdict = f"incomplete: {len(absent)} of {len(absent) + len(ran)} grid points not run ({', '.join(absent)})"
    base = {c: "" for c in COLUMNS}
    base.update({"setting": setting.name, "point": "all", "paper": setting.paper, "claim": setting.claim,
                 "paper_steps": _paper_text(setting.paper_steps), "threshold": setting.threshold,
                 "seeds": sum(r["seeds"] for r in rows), "phase": counts, "verdict": verdict})
    return base


def not_run_row(setting: BenchSetting) -> dict:
    """The row of a setting with no runs in the bench folder: why, and (if marked) its GPU command."""
    row = {c: "" for c in COLUMNS}
    why = (f"not run: its budget does not fit a 2-core CPU; on a GPU: {setting.gpu_command}" if setting.gpu_command
           else "not run in this bench folder")
    row.update({"setting": setting.name, "point": "–", "paper": setting.paper, "claim": setting.claim,
                "paper_steps": _paper_text(setting.paper_steps), "threshold": setting.threshold,
                "seeds": 0, "verdict": why})
    return row


def setting_rows(setting: BenchSetting, runs: list[BenchRun]) -> list[dict]:
    """All table rows of one setting: its groups, then its summary row if it is a grid.

    Args:
        setting: the setting's spec.
        runs: its runs (any order).
    Returns:
        Rows with the keys of COLUMNS (plus private `_median`, `_point` keys on group rows).
    """
    rows = _group_rows(setting, runs)
    summary = summary_row(setting, rows)
    return rows + ([summary] if summary else [])


def table_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as a DataFrame with exactly COLUMNS, in order."""
    return pd.DataFrame([{c: r.get(c, "") for c in COLUMNS} for r in rows], columns=list(COLUMNS))


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub markdown table of `frame`, every cell escaped (analysis.safe_text.md_escape)."""
    def cell(value) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else md_escape(value)

    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in frame.itertuples(index=False))


def to_csv(frame: pd.DataFrame) -> str:
    """The table as CSV text, guarded against spreadsheet formulas (analysis.safe_text.csv_safe_frame)."""
    return csv_safe_frame(frame).to_csv(index=False)
