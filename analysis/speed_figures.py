"""Figures of grokking speed: Kaplan-Meier curves per condition, steps over each searched
hyperparameter (trials that never generalised kept apart by how they ended) and importances
with their bootstrap intervals. PNG bytes, matplotlib's object API (see analysis.figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import figures
from analysis.figures import NEVER_STYLES, _setup_axis, legend_outside, new_figure, scaled_axis
from analysis.survival import Survival


def km_curves(curves: dict[str, Survival], title: str) -> bytes:
    """Share of runs generalised by each step (Kaplan-Meier), one line per condition, with the
    pointwise confidence band; each line runs flat to the last step any of its runs reached.

    Args:
        curves: condition label -> its Kaplan-Meier estimate.
        title: the axes title.
    Returns:
        PNG bytes.
    """
    fig = new_figure(8.0, 3.8)
    ax = fig.subplots()
    for i, (label, km) in enumerate(curves.items()):
        color = f"C{i % 10}"
        steps = np.array((1.0, *km.steps, max(km.horizon, km.steps[-1] if km.steps else 1.0)))
        steps = np.maximum(steps, 1.0)  # the log-step axis has no place for step 0
        share = np.array((0.0, *km.share, km.share[-1] if km.share else 0.0))
        low = np.array((0.0, *km.low, km.low[-1] if km.low else 0.0))
        high = np.array((0.0, *km.high, km.high[-1] if km.high else 0.0))
        median = "not reached" if km.median is None else f"{km.median:.0f}"
        ax.step(steps, share, where="post", color=color, lw=1.6,
                label=f"{label}: median {median} ({km.events}/{km.n})")
        ax.fill_between(steps, low, high, step="post", color=color, alpha=0.12, lw=0)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("share generalised (Kaplan–Meier)")
    ax.set_title(title, fontsize=10)
    legend_outside(ax)
    return figures.to_png(fig)  # via the module: tests swap the renderer


def importance_bars(values: dict[str, float], evaluator: str,
                    spread: dict[str, tuple[float, float]] | None = None) -> bytes:
    """Horizontal bars of importances, most important on top, with bootstrap intervals."""
    fig = new_figure(6.4, 0.5 + 0.45 * max(len(values), 1))
    ax = fig.subplots()
    names = list(values)[::-1]
    widths = [values[n] for n in names]
    xerr = None
    if spread and all(n in spread for n in names):
        lo = [max(values[n] - spread[n][0], 0.0) for n in names]
        hi = [max(spread[n][1] - values[n], 0.0) for n in names]
        xerr = np.array([lo, hi])
    ax.barh(names, widths, color="#1f77b4", xerr=xerr, capsize=3, ecolor="#333333")
    ax.set_xlabel(f"importance ({evaluator}; whiskers: 2.5–97.5 % over bootstrap resamples)")
    ax.set_xlim(0, 1)
    return figures.to_png(fig)  # via the module: tests swap the renderer


def steps_by_param(summary: pd.DataFrame, keys: list[str], logs: dict[str, bool]) -> bytes:
    """One scatter per hyperparameter of steps to generalise; never-generalised drawn on top."""
    keys = keys[:9]
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig = new_figure(3.4 * cols + 2.4, 3.0 * rows)  # + the legend beside the panels
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    steps = pd.to_numeric(summary["generalized_step"], errors="coerce").to_numpy(float)
    ok = np.isfinite(steps)
    outcomes = (summary["outcome"].astype(str).to_numpy() if "outcome" in summary
                else np.full(len(summary), "budget"))
    longest = pd.to_numeric(summary.get("last_step", pd.Series(dtype=float)), errors="coerce").max()
    horizon = max(float(np.nanmax(steps)) if ok.any() else 1.0,
                  float(longest) if pd.notna(longest) else 1.0)
    for ax, key in zip(axes, keys):
        xs, labels, log = scaled_axis(summary[key], logs.get(key, False))
        if ok.any():
            ax.scatter(xs[ok], steps[ok], s=22, color="#1f77b4", label="generalised")
        for kind, (marker, color, label) in NEVER_STYLES.items():
            mask = ~ok & (outcomes == kind)
            if mask.any():  # drawn above the longest run, one style per way of ending
                ax.scatter(xs[mask], np.full(mask.sum(), 1.5 * horizon), s=24, marker=marker,
                           color=color, label=f"never: {label}")
        ax.axhline(horizon, color="grey", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_ylabel("steps to generalise", fontsize=8)
        _setup_axis(ax, "x", key, labels, log)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    legend_outside(axes[min(cols, len(keys)) - 1])
    return figures.to_png(fig)  # via the module: tests swap the renderer
