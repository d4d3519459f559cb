"""Report figures as PNG bytes. Matplotlib's object API on the Agg canvas only (no pyplot,
no display, no global state), so figures can be drawn from any thread or process."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.colors import LogNorm
from matplotlib.ticker import NullFormatter

from groktune.layout import FINAL_STATUSES, LIVE_STATUSES

PHASE_COLORS = {"comprehension": "#2ca02c", "grokking": "#1f77b4", "memorization": "#ff7f0e",
                "confusion": "#d62728", "pruned": "#8c564b", "diverged": "#e377c2",
                "error": "#7f7f7f", "unfinished": "#bcbd22", "no data": "#9e9e9e"}
# Trials that did not generalise, kept apart by how they ended.
NEVER_STYLES = {"pruned": ("v", "#8c564b", "pruned (stopped by the scheduler)"),
                "budget": ("^", "#d62728", "budget (ran out of steps)"),
                "diverged": ("X", "#e377c2", "diverged"), "error": ("s", "#7f7f7f", "error"),
                "unfinished": ("D", "#bcbd22", "unfinished")}
DPI = 100
# Statuses of trials that ended before their budget: their phase is the one they stopped in.
# ("incomplete": a run folder without result.json, analysis.runs.)
STOPPED_EARLY = (tuple(s for s in FINAL_STATUSES if s not in ("grokked", "budget")) + ("early_stopped",)
                 + LIVE_STATUSES + ("incomplete",))


def new_figure(width: float = 9.0, height: float = 3.6) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def legend_outside(ax, **kw) -> None:
    """A legend to the right of the axes, off the data (constrained layout makes room)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


def _positive_steps(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["step"] > 0]  # the log-step axis has no place for step 0


def mark_events(ax, events: dict) -> None:
    """Dashed lines at the memorised and generalised steps, the delay shaded between them."""
    mem, gen = events.get("memorized_step"), events.get("generalized_step")
    if _present(mem):
        ax.axvline(float(mem), color="#555555", ls="--", lw=1, label=f"memorised @ {int(mem)}")
    if _present(gen):
        ax.axvline(float(gen), color="black", ls="-.", lw=1, label=f"generalised @ {int(gen)}")
    if _present(mem) and _present(gen) and gen > mem:
        ax.axvspan(float(mem), float(gen), color="#bbbbbb", alpha=0.25, lw=0)


def _present(value) -> bool:
    return value is not None and not pd.isna(value) and float(value) > 0


def mark_collapses(ax, collapses, end: float) -> None:
    """Shade each post-generalisation collapse from its first eval below to its recovery."""
    for i, col in enumerate(collapses or ()):
        stop = col.recovered_step if col.recovered_step is not None else end
        ax.axvspan(float(col.step), float(max(stop, col.step + 1)), color="#d62728", alpha=0.18,
                   lw=0, label=f"collapses ({len(collapses)})" if i == 0 else None)


def seed_band(ax, band: list[pd.DataFrame], column: str) -> None:
    """The min-max band of `column` across the curves of every seed of one config."""
    frames = [_positive_steps(b) for b in band if column in b]
    if not frames:
        return
    grid = np.unique(np.concatenate([f["step"].to_numpy(float) for f in frames]))
    ys = np.vstack([np.interp(grid, f["step"].to_numpy(float), f[column].to_numpy(float),
                              left=np.nan, right=np.nan) for f in frames])
    with np.errstate(all="ignore"):
        lo, hi = np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)
    ax.fill_between(grid, lo, hi, color="#1f77b4", alpha=0.15, lw=0,
                    label=f"val, {len(frames)} seeds (min–max)")


def learning_curves(curve: pd.DataFrame, events: dict, title: str, threshold: float, *,
                    collapses=(), band: list[pd.DataFrame] | None = None,
                    seed_steps: str | None = None) -> bytes:
    """Train/val accuracy and loss on a log-step axis, with the detected events marked.

    Args:
        curve: one trial's rows of the curves frame.
        events: memorized_step, generalized_step, dd_peak (any may be missing or NA).
        title: the figure title.
        threshold: accuracy threshold, drawn as a dotted line.
        collapses: the trial's post-generalisation collapses (groktune.events.Collapse), shaded.
        band: curves of the other seeds of the same config; with `curve` they make a min-max band.
        seed_steps: per-seed steps to generalise ("0: 175, 1000: never, ..."), written on the plot.
    Returns:
        PNG bytes.
    """
    c = _positive_steps(curve)
    fig = new_figure(10.5, 3.8)
    acc, loss = fig.subplots(1, 2)
    if band:
        seed_band(acc, band + [curve], "val_acc")
    if seed_steps:
        acc.text(0.02, 0.97, f"steps by seed: {seed_steps}", transform=acc.transAxes, fontsize=7,
                 va="top", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    for ax, metric, label in ((acc, "acc", "accuracy"), (loss, "loss", "loss")):
        for split, color in (("train", "#d62728"), ("val", "#1f77b4")):
            if f"{split}_{metric}" in c:
                ax.plot(c["step"], c[f"{split}_{metric}"], color=color, lw=1.4, label=split)
        ax.set_xscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(label)
        mark_events(ax, events)
    acc.axhline(threshold, color="grey", ls=":", lw=1)
    mark_collapses(acc, collapses, float(c["step"].max()) if len(c) else 1.0)
    acc.set_ylim(-0.02, 1.02)
    if (c.filter(like="_loss") > 0).all().all() and not c.filter(like="_loss").empty:
        loss.set_yscale("log")
    if _present(events.get("dd_peak")):
        loss.axvline(float(events["dd_peak"]), color="purple", ls=":", lw=1.2,
                     label="double-descent peak")
    legend_outside(acc)
    legend_outside(loss)
    fig.suptitle(title, fontsize=10)
    return to_png(fig)


def norm_curves(curves: dict[str, pd.DataFrame], title: str) -> bytes:
    """Val accuracy beside the parameter norm (and per-layer norms of the first trial).

    Args:
        curves: label -> one trial's rows of the curves frame (first = most prominent).
        title: the figure title.
    Returns:
        PNG bytes.
    """
    fig = new_figure()
    acc, norm = fig.subplots(1, 2)
    for i, (label, curve) in enumerate(curves.items()):
        c = _positive_steps(curve)
        acc.plot(c["step"], c["val_acc"], color=f"C{i}", lw=1.4, label=label)
        if "param_norm" in c:
            norm.plot(c["step"], c["param_norm"], color=f"C{i}", lw=1.6, label=f"{label}: total")
        if i == 0:
            layers = [k for k in c.columns if k.startswith("param_norm/")][:8]
            for j, layer in enumerate(layers):  # colours after the trials' own C0, C1
                norm.plot(c["step"], c[layer], lw=0.8, alpha=0.7, ls="--",
                          color=f"C{j + 2}", label=layer.split("/", 1)[1])
    for ax, label in ((acc, "val accuracy"), (norm, "parameter L2 norm")):
        ax.set_xscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(label)
        legend_outside(ax)
    acc.set_ylim(-0.02, 1.02)
    fig.suptitle(title, fontsize=10)
    return to_png(fig)


def axis_values(values: pd.Series, log: bool = False,
                categorical: bool = False) -> tuple[np.ndarray, list[str] | None, bool]:
    """Plot positions for a hyperparameter column.

    Args:
        values: the column (numeric or categorical).
        log: put a numeric column on a log axis.
        categorical: a choice parameter (e.g. batch_size 0 = full batch): one evenly spaced
            position per value, in numeric order where the values are numbers.
    Returns:
        (positions, category labels or None for numeric columns, use a log axis).
    """
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and not categorical:
        return numeric.to_numpy(float), None, bool(log)
    if numeric.notna().all():
        order = sorted(set(numeric.tolist()))
        labels = [f"{v:g}" for v in order]
        return numeric.map(order.index).to_numpy(float), labels, False
    labels = sorted(values.astype(str).unique())
    return values.astype(str).map(labels.index).to_numpy(float), labels, False


def scaled_axis(values: pd.Series, scale) -> tuple[np.ndarray, list[str] | None, bool]:
    """axis_values for a scale from Context.logs(): True/"log", False/"linear" or "category"."""
    return axis_values(values, log=scale in (True, "log"), categorical=scale == "category")


def _setup_axis(ax, which: str, key: str, labels, log: bool) -> None:
    getattr(ax, f"set_{which}label")(key)
    if labels is not None:
        getattr(ax, f"set_{which}ticks")(range(len(labels)), labels, rotation=0, fontsize=8)
    elif log:
        getattr(ax, f"set_{which}scale")("log")
        lo, hi = (ax.dataLim.intervalx if which == "x" else ax.dataLim.intervaly)
        if 0 < lo < hi < 10 * lo:  # under a decade matplotlib labels every minor tick: overlap
            ticks = np.geomspace(lo, hi, 3)
            axis = getattr(ax, f"{which}axis")
            axis.set_minor_formatter(NullFormatter())
            getattr(ax, f"set_{which}ticks")(ticks, [f"{t:.2g}" for t in ticks], fontsize=8)


def step_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Round step counts (1, 2, 5 × 10^k) for a log colour bar from lo to hi, at most `most`.

    Args:
        lo, hi: the colour bar's range, 0 < lo <= hi.
        most: the largest number of ticks returned.
    Returns:
        The ticks inside [lo, hi]; when fewer than two round values fit, three values spaced
        evenly on the log scale, rounded to two significant digits.
    """
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
                 for m in mantissas if lo <= m * 10.0 ** k <= hi]
        if len(ticks) <= most:
            break
    else:  # a range so wide that even the decades are too many: every other decade
        ticks = ticks[::2]
    if len(ticks) >= 2:
        return ticks
    # under a decade with no round value inside: three values, two significant digits, kept inside
    inside = [t for t in (float(f"{v:.2g}") for v in np.geomspace(lo, hi, 3)) if lo <= t <= hi]
    return sorted(set(inside)) or [lo, hi]


def steps_norm(steps: np.ndarray) -> LogNorm:
    """A log colour scale over step counts (widened by half a step either side of a single value)."""
    lo, hi = float(np.min(steps)), float(np.max(steps))
    if hi <= lo * 1.01:
        lo, hi = lo / 1.5, hi * 1.5
    return LogNorm(vmin=lo, vmax=hi)


def steps_colorbar(fig: Figure, mappable, ax, norm: LogNorm, label: str):
    """A colour bar on a log scale whose ticks read in steps (200, 500, 1,000), not in log10."""
    bar = fig.colorbar(mappable, ax=ax, label=label)
    ticks = step_ticks(norm.vmin, norm.vmax)
    bar.set_ticks(ticks, labels=[f"{t:,.0f}" if t >= 1 else f"{t:g}" for t in ticks])
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    return bar


def steps_map(summary: pd.DataFrame, x: str, y: str, logs: dict[str, bool]) -> bytes:
    """Steps to generalise over two hyperparameters; trials that never did are grey crosses.

    Args:
        summary: trial_summary output.
        x, y: the two hyperparameter columns.
        logs: key -> whether to draw it on a log axis.
    Returns:
        PNG bytes.
    """
    fig = new_figure(6.4, 4.8)
    ax = fig.subplots()
    xs, xl, xlog = scaled_axis(summary[x], logs.get(x, False))
    ys, yl, ylog = scaled_axis(summary[y], logs.get(y, False))
    steps = pd.to_numeric(summary["generalized_step"], errors="coerce").to_numpy(float)
    ok = np.isfinite(steps)
    if ok.any():
        shown = np.maximum(steps[ok], 1)
        norm = steps_norm(shown)
        sc = ax.scatter(xs[ok], ys[ok], c=shown, norm=norm, cmap="viridis_r",
                        s=60, edgecolors="black", linewidths=0.4)
        steps_colorbar(fig, sc, ax, norm, "steps to generalise")
    outcomes = (summary["outcome"].astype(str).to_numpy() if "outcome" in summary
                else np.full(len(summary), "budget"))
    for kind, (marker, color, label) in NEVER_STYLES.items():
        mask = ~ok & (outcomes == kind)
        if mask.any():
            ax.scatter(xs[mask], ys[mask], marker=marker, color=color, s=40, label=f"never: {label}")
    fig.set_figwidth(8.4)  # room for the legend beside the axes
    legend_outside(ax)
    _setup_axis(ax, "x", x, xl, xlog)
    _setup_axis(ax, "y", y, yl, ylog)
    ax.set_title(f"steps to generalise over {x} × {y}", fontsize=10)
    return to_png(fig)


def phase_diagram(summary: pd.DataFrame, x: str, y: str, logs: dict[str, bool]) -> bytes:
    """Each trial placed by two hyperparameters and coloured by its phase (see steps_map).

    Trials that stopped before their budget (pruned, diverged, ...) are hollow: their phase is
    only the phase they were in when they stopped.
    """
    fig = new_figure(6.4, 4.8)
    ax = fig.subplots()
    xs, xl, xlog = scaled_axis(summary[x], logs.get(x, False))
    ys, yl, ylog = scaled_axis(summary[y], logs.get(y, False))
    early = summary["status"].isin(STOPPED_EARLY).to_numpy() if "status" in summary else \
        np.zeros(len(summary), dtype=bool)
    for phase, color in PHASE_COLORS.items():
        mask = (summary["phase"] == phase).to_numpy()
        if mask.any():
            label = f"{phase} ({int(mask.sum())})"
            if (mask & ~early).any():
                ax.scatter(xs[mask & ~early], ys[mask & ~early], color=color, s=70,
                           edgecolors="black", linewidths=0.4, label=label)
                label = None
            if (mask & early).any():
                ax.scatter(xs[mask & early], ys[mask & early], facecolors="none",
                           edgecolors=color, s=70, linewidths=1.5, label=label)
    if early.any():
        ax.scatter([], [], facecolors="none", edgecolors="black", s=70,
                   label=f"hollow: stopped early ({int(early.sum())})")
    _setup_axis(ax, "x", x, xl, xlog)
    _setup_axis(ax, "y", y, yl, ylog)
    legend_outside(ax)
    ax.set_title(f"phase by {x} × {y}", fontsize=10)
    return to_png(fig)


def double_descent_plot(points: pd.DataFrame, model_dd, example: pd.DataFrame | None,
                        example_dd, size_key: str, example_label: str) -> bytes:
    """Model-wise error over size (left) and an epoch-wise val-loss example (right)."""
    panels = [p for p in (not points.empty, example is not None) if p]
    fig = new_figure(4.6 * max(len(panels), 1), 3.6)
    axes = list(np.atleast_1d(fig.subplots(1, max(len(panels), 1))))
    if not points.empty:
        ax = axes.pop(0)
        ax.plot(points["size"], points["error"], "o-", color="#1f77b4")
        ax.set_xscale("log")
        ax.set_xticks(points["size"], [f"{v:g}" for v in points["size"]], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel(size_key)
        ax.set_ylabel("median final val error")
        _mark_dd(ax, model_dd)
    if example is not None:
        ax = axes.pop(0)
        c = _positive_steps(example)
        ax.plot(c["step"], c["val_loss"], color="#1f77b4", lw=1.2)
        ax.set_xscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("val loss")
        ax.set_title(example_label, fontsize=9)
        _mark_dd(ax, example_dd)
    return to_png(fig)


def _mark_dd(ax, found) -> None:
    if found is None:
        return
    for x, label, style in ((found.first_min, "first min", ":"), (found.peak, "peak", "--"),
                            (found.second_min, "second min", ":")):
        ax.axvline(x, color="purple", ls=style, lw=1, label=f"{label} @ {x:.4g}")
    legend_outside(ax)
