"""Report sections on grokking speed as censored data: Kaplan-Meier curves per condition, the
spread over seeds, and the collapses after generalising."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from analysis import speed_figures
from analysis.document import Figure, Section, Table, Text
from analysis.seeds import config_table, seed_units
from analysis.survival import describe_median, kaplan_meier

if TYPE_CHECKING:
    from analysis.context import Context

MAX_LEVELS = 8
"""A condition with more values than this is not drawn (the lines would be unreadable)."""


def condition_keys(ctx: Context) -> list[str]:
    """Searched keys that split runs into conditions: choice and grid parameters and any
    non-numeric one, each with 2..MAX_LEVELS values."""
    params = ctx.results.params
    keys = []
    for key in ctx.results.searched:
        if key not in ctx.summary or key == "seed":
            continue
        discrete = key in params and params[key].discrete
        numeric = pd.to_numeric(ctx.summary[key], errors="coerce").notna().all()
        levels = ctx.summary[key].astype(str).nunique()
        if (discrete or not numeric) and 2 <= levels <= MAX_LEVELS:
            keys.append(key)
    return keys


def _fit(units: pd.DataFrame):
    return kaplan_meier(units["time"].to_numpy(), units["generalised"].to_numpy())


def survival(ctx: Context) -> Section:
    """Share generalised by step for the whole sweep and per condition, medians with CIs."""
    title = "Time to generalise (Kaplan–Meier)"
    units = seed_units(ctx.summary, ctx.results.searched)
    if units.empty:
        return Section(title, [Text("No trial has curves, so there is nothing to estimate.")])
    blocks = [Text(
        "Steps to generalise are censored data: a run that never reached val accuracy "
        f"{ctx.threshold:g} (stopped by the scheduler, out of budget, diverged) took more steps "
        "than it ran, so it counts as censored at its last step instead of being dropped. Each "
        "seed is one run. The curves are Kaplan–Meier estimates (scipy.stats.ecdf) with 95% "
        "pointwise log-log bands; a median's interval is where the band crosses one half.")]
    whole = _fit(units)
    rows = [{"condition": "all runs", "value": "", "median steps (KM)": describe_median(whole)}]
    blocks.append(Figure("km_all.png", speed_figures.km_curves({"all runs": whole}, "all runs"),
                         "Share of runs generalised by step, all runs"))
    by_trial = ctx.summary.set_index("trial_id")
    for i, key in enumerate(condition_keys(ctx)):
        values = units["trial_id"].map(by_trial[key].astype(str))
        fits = {f"{key}={v}": _fit(units[values == v]) for v in sorted(values.unique(), key=_order)}
        rows += [{"condition": key, "value": label.split("=", 1)[1],
                  "median steps (KM)": describe_median(km)} for label, km in fits.items()]
        blocks.append(Figure(f"km_{i}.png", speed_figures.km_curves(fits, f"by {key}"),
                             f"Share of runs generalised by step, by {key}"))
    blocks.insert(1, Table(pd.DataFrame(rows), "Median steps to generalise with 95% CI"))
    return Section(title, blocks)


def _order(value: str):
    """Numbers in numeric order, then other labels alphabetically."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def seeds(ctx: Context) -> Section:
    """Every config over its seeds: per-seed steps, share generalised, median and spread."""
    table = config_table(ctx.summary, ctx.results.searched)
    title = "Seeds: every config over its seeds"
    if table.empty:
        return Section(title, [Text("No trial has curves.")])
    multi = (table["seeds grokked"].str.split("/").str[1].astype(int) > 1).any()
    note = ("Each config's steps to generalise by seed (never: did not reach the target within its "
            "budget; pruned at N: stopped by the scheduler at step N, so censored there), the "
            "share of seeds that generalised, the Kaplan–Meier median over seeds and the range "
            "of those that did; fastest first. A population trial's seeds are found on each "
            "member's own curve by the same event rule; results from before member curves were "
            "recorded name a stopped trial's seeds ?1, ?2, ... with upper-bound steps."
            if multi else
            "Each config was trained with one seed, so there is no spread over seeds to show; "
            "use search.seeds or search.seeds_per_trial for it.")
    return Section(title, [Text(note), Table(table.head(50), "Configs, fastest first (top 50)")])


def collapses(ctx: Context) -> Section:
    """Falls of val accuracy below the threshold after generalising, and their recoveries."""
    s = ctx.summary
    title = "Collapses after generalising"
    if "n_collapses" not in s:
        return Section(title, [Text("No collapse counts in the summary.")])
    done = s[s["generalized_step"].notna()]
    hit = done[pd.to_numeric(done["n_collapses"], errors="coerce").fillna(0) > 0]
    text = (f"A collapse is a fall of val accuracy below {ctx.threshold:g} after the run "
            "generalised (a slingshot, Thilak et al. 2022); it never moves the generalisation "
            f"step. {len(hit)} of {len(done)} generalised trial(s) collapsed at least once; "
            "the learning-curve figures shade each collapse in red.")
    blocks = [Text(text)]
    if len(hit):
        cols = ["trial_id", "generalized_step", "n_collapses", "collapse_period", "at_target_share",
                "first_collapse_step", "first_collapse_depth"]
        ranked = hit.sort_values("n_collapses", ascending=False)
        blocks.append(Table(ranked[[c for c in cols if c in hit]].head(30),
                            "Trials that collapsed (most collapses first, top 30)"))
    return Section(title, blocks)
