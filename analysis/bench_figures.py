"""GrokBench's figures: val curves per setting, the Liu phase diagram, the wd- and init-dependence plots.

Each takes the runs and rows analysis.bench_table computed and returns PNG bytes; the Nanda
progress measures reuse analysis.probe_figures.progress_measures (orchestrator.bench calls it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.bench_table import TRENDS, BenchRun, BenchSetting, point_label, run_events
from analysis.figures import legend_outside, new_figure, phase_diagram, to_png


def val_curves(setting: BenchSetting, runs: list[BenchRun]) -> bytes:
    """Val accuracy of every run of a setting (one colour per grid point), threshold and paper marked.

    Args:
        setting: the setting's spec.
        runs: its runs.
    Returns:
        PNG bytes.
    """
    fig = new_figure(9, 3.8)
    ax = fig.subplots()
    labels = sorted({point_label(r.point) for r in runs})
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    drawn = set()
    for run in sorted(runs, key=lambda r: (point_label(r.point), r.seed)):
        c = run.curve[run.curve["step"] > 0].sort_values("step")
        label = point_label(run.point) or setting.name
        ax.plot(c["step"], c["val_acc"], color=colors[point_label(run.point)], lw=1, alpha=0.8,
                label=None if label in drawn else label)
        drawn.add(label)
    ax.axhline(setting.threshold, color="grey", ls=":", lw=1)
    if setting.paper_steps is not None:
        low, high = setting.paper_steps
        ax.axvspan(max(low, 1), max(high, 1) * 1.01, color="black", alpha=0.12,
                   label=f"paper ({low:g})" if low == high else f"paper ({low:g}–{high:g})")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("val accuracy")
    ax.set_title(f"{setting.name}: {setting.claim}", fontsize=9)
    legend_outside(ax)
    return to_png(fig)


def liu_phase_diagram(setting: BenchSetting, rows: list[dict]) -> bytes:
    """The grid's points coloured by their (majority) Liu phase, over its two keys.

    Args:
        setting: a grid setting with exactly two keys.
        rows: its group rows (analysis.bench_table.setting_rows without the summary row).
    Returns:
        PNG bytes.
    """
    x, y = list(setting.grid)[:2]
    frame = pd.DataFrame([{x: r["_point"][x], y: r["_point"][y], "phase": r["phase"]} for r in rows])
    logs = {k: bool((frame[k] > 0).all()) for k in (x, y)}
    return phase_diagram(frame, x, y, logs)


def wd_dependence(setting: BenchSetting, runs: list[BenchRun]) -> bytes:
    """Steps to the threshold over the trend's key (weight decay, or the initial weight scale of an
    init_trend): each seed a dot, the median a line; failures on top.

    Args:
        setting: the sweep's spec (a wd_trend or init_trend grid, analysis.bench_table.TRENDS).
        runs: its runs.
    Returns:
        PNG bytes.
    """
    fig = new_figure(6.4, 4.2)
    ax = fig.subplots()
    key, _, words = TRENDS[setting.check]
    by_wd: dict[float, list[float]] = {}
    budget = max(r.budget for r in runs)
    for run in runs:
        e = run_events(run, setting.threshold, setting.delay_boundary)
        step = e["s95"] if setting.threshold == 0.95 else e["s99"]
        by_wd.setdefault(float(run.point[key]), []).append(math.inf if step is None else step)
    wds = sorted(by_wd)
    for wd in wds:
        values = np.array(by_wd[wd])
        ok = np.isfinite(values)
        ax.scatter([wd] * int(ok.sum()), values[ok], color="C0", s=25)
        if (~ok).any():
            ax.scatter([wd] * int((~ok).sum()), [budget] * int((~ok).sum()), marker="^", color="C3", s=40)
    medians = [float(np.median(by_wd[wd])) for wd in wds]
    ax.plot(wds, [m if math.isfinite(m) else budget for m in medians], color="black", lw=1.2, label="median")
    ax.scatter([], [], marker="^", color="C3", label=f"not reached in {budget} steps")
    ax.set_xscale("log")
    ax.set_xlabel(words)
    ax.set_ylabel(f"steps to {setting.threshold:.0%} val")
    ax.set_title(f"{setting.name}: {setting.claim}", fontsize=9)
    legend_outside(ax)
    return to_png(fig)
