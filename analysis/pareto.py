"""The Pareto front of a multi-objective sweep: which trials no other trial
beats on every objective at once, drawn and tabled in the report.

    front = pareto_mask(costs)             # costs (n, k), lower is better; NaN rows never on it
    objs = sweep_objectives(config)        # [("grok_score", "min"), ("failure_rate", "min")]
    section = pareto_section(ctx)          # the report section (figure + table)

A trial is on the front when no other trial is at least as good on every objective and strictly
better on one (Deb 2001's non-domination). Equal points do not dominate each other, so ties stay
on the front together. The objectives are the sweep's own `search.metric` / `search.mode` lists
(orchestrator.search.multi_objective), read from the saved config; each is compared on the trial's
final value (`final_<metric>` in trials.parquet: the value the searcher was told). Direction
goes through analysis.direction.as_cost, the one place that knows min from max.

Pure except `pareto_figure` (matplotlib, PNG bytes); reads only saved results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis import figures
from analysis.direction import as_cost
from analysis.document import Figure, Section, Table, Text
from analysis.figures import legend_outside, new_figure

if TYPE_CHECKING:
    from analysis.sections import Context

MAX_PARAMS = 8
"""Searched keys shown beside the front (the table stays readable; summary.csv has them all)."""


def pareto_mask(costs) -> np.ndarray:
    """Which rows are non-dominated (lower is better in every column).

    Args:
        costs: an (n, k) array of costs; a row with a NaN is never on the front.
    Returns:
        A bool array of length n.
    """
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"costs: expected an (n, k) array, got shape {c.shape}")
    valid = ~np.isnan(c).any(axis=1)
    out = np.zeros(len(c), dtype=bool)
    rows = c[valid]
    for i, row in zip(np.flatnonzero(valid), rows):
        # dominated: some row is <= everywhere and < somewhere
        no_worse = (rows <= row).all(axis=1)
        better = (rows < row).any(axis=1)
        out[i] = not (no_worse & better).any()
    return out


def sweep_objectives(config: dict) -> list[tuple[str, str]]:
    """The (metric, mode) pairs of a saved experiment config's search section.

    Args:
        config: the experiment config as a dict (experiment.yaml).
    Returns:
        One pair per objective ([("grok_score", "min")] by default); [] without a search section.
    """
    search = (config or {}).get("search") or {}
    if not search:
        return []
    metric, mode = search.get("metric", "grok_score"), search.get("mode", "min")
    metrics = metric if isinstance(metric, list) else [metric]
    modes = mode if isinstance(mode, list) else [mode] * len(metrics)
    return [(str(m), str(d)) for m, d in zip(metrics, modes)]


def objective_costs(summary: pd.DataFrame, objectives: list[tuple[str, str]]) -> np.ndarray:
    """The (n, k) cost array of the trials' final objective values (NaN where missing).

    Args:
        summary: one row per trial with final_<metric> columns.
        objectives: (metric, mode) pairs.
    Returns:
        Costs, lower is better.
    """
    cols = []
    for metric, mode in objectives:
        values = pd.to_numeric(summary.get(f"final_{metric}", pd.Series(np.nan, index=summary.index)),
                               errors="coerce").astype(float)
        cols.append(as_cost(values.to_numpy(), mode))
    return np.column_stack(cols) if cols else np.zeros((len(summary), 0))


def pareto_figure(summary: pd.DataFrame, objectives: list[tuple[str, str]], front: np.ndarray) -> bytes:
    """Every trial on the first two objectives, the front in red joined in order of the first.

    Args:
        summary: the trials (final_<metric> columns).
        objectives: (metric, mode) pairs; the first two are drawn.
        front: pareto_mask over all objectives.
    Returns:
        PNG bytes.
    """
    (mx, dx), (my, dy) = objectives[:2]
    x = pd.to_numeric(summary[f"final_{mx}"], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(summary[f"final_{my}"], errors="coerce").to_numpy(dtype=float)
    fig = new_figure(6.8, 4.0)
    ax = fig.subplots()
    ax.scatter(x[~front], y[~front], s=18, color="#9a9a9a", label="dominated")
    order = np.argsort(as_cost(x[front], dx), kind="stable")
    ax.plot(x[front][order], y[front][order], "o-", color="#d62728", ms=5, lw=1.2,
            label=f"Pareto front ({int(front.sum())})")
    ax.set_xlabel(f"final {mx} ({dx})")
    ax.set_ylabel(f"final {my} ({dy})")
    extra = f"; front over all {len(objectives)} objectives" if len(objectives) > 2 else ""
    ax.set_title(f"{mx} vs {my}{extra}", fontsize=10)
    legend_outside(ax)
    return figures.to_png(fig)  # via the module: tests swap the renderer


def pareto_section(ctx: Context) -> Section | None:
    """The report section: the front's figure and table; None for a single-objective sweep or a run
    (the report leaves the section out), a sentence when the trials lack an objective's value."""
    title = "Pareto front (multi-objective search)"
    objectives = sweep_objectives(ctx.results.config)
    if len(objectives) < 2:  # one objective (or a run, not a sweep): there is no front to draw
        return None
    s = ctx.summary
    missing = [m for m, _ in objectives if f"final_{m}" not in s]
    if missing:
        return Section(title, [Text(f"The trials have no final value of {', '.join(missing)}, so the front "
                                    "cannot be drawn.")])
    costs = objective_costs(s, objectives)
    front = pareto_mask(costs)
    names = ", ".join(f"{m} ({d})" for m, d in objectives)
    valued = int((~np.isnan(costs).any(axis=1)).sum())
    text = (f"Objectives: {names}, each on the trial's final value (what the searcher was told). "
            f"A trial is on the front when no other trial is as good on every objective and better "
            f"on one. {int(front.sum())} of the {valued} trial(s) with every value are on it"
            + (f"; {len(s) - valued} trial(s) lack a value." if valued < len(s) else "."))
    keys = [k for k in ctx.results.searched if k in s][:MAX_PARAMS]
    cols = ["trial_id", *[f"final_{m}" for m, _ in objectives], "steps_to_target", "status", *keys]
    table = s.loc[front, [c for c in dict.fromkeys(cols) if c in s]]
    table = table.iloc[np.argsort(costs[front][:, 0], kind="stable")]
    return Section(title, [Text(text),
                           Figure("pareto_front.png", pareto_figure(s, objectives, front),
                                  f"Pareto front over {names}"),
                           Table(table, "Trials on the Pareto front, best first on the first objective")])


__all__ = ["objective_costs", "pareto_figure", "pareto_mask", "pareto_section", "sweep_objectives"]
