"""Seeds: every seed of a config counts, not only the one a trial's median happens to pick.

A config is trained with several seeds in one of two ways: search.seeds (one trial per seed,
same searched values) or search.seeds_per_trial (one population trial; trials.parquet holds each
member's steps as JSON text {"<seed>": steps or null} in member_steps_to_target). Either way
each seed is one unit here, and a seed that never generalised is censored at its trial's last
step ({0: 175, 1000: never, 2000: 236} must not read as just "236").
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from analysis.survival import fmt_step, kaplan_meier

NEVER = "never"
STOPPED = ("pruned", "diverged", "error", "unfinished")
"""Outcomes (analysis.summary.OUTCOMES) of a trial stopped before a verdict: its seeds that had not
generalised read "pruned at <step>", not "never" (they are censored, not failures)."""


def _members(value) -> dict[str, float | None] | None:
    """member_steps_to_target JSON text -> {seed: steps or None}; None when absent/unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data:
        return None
    out = {}
    for seed, steps in data.items():
        ok = isinstance(steps, (int, float)) and not isinstance(steps, bool) and math.isfinite(steps)
        out[str(seed)] = float(steps) if ok else None
    return out


def _confirmed(row: pd.Series) -> dict[str, float | None] | None:
    """A population trial stopped before its closing report: its members from its curves
    (summary.population_progress). Which seed generalised was not recorded, so the members are
    named "?1", "?2", ...; their steps are where the trainer confirmed them (an upper bound)."""
    size, confirmed = row.get("population_size"), row.get("members_confirmed")
    if size is None or pd.isna(size) or not isinstance(confirmed, str):
        return None
    steps = json.loads(confirmed)
    return {f"?{i + 1}": (float(steps[i]) if i < len(steps) else None) for i in range(int(size))}


def config_key(row: pd.Series, searched: list[str]) -> str:
    """The searched values of a trial as one string: trials of one config share it."""
    def fmt(value) -> str:
        return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)

    return ", ".join(f"{k}={fmt(row.get(k))}" for k in searched if k != "seed")


def seed_units(summary: pd.DataFrame, searched: list[str]) -> pd.DataFrame:
    """One row per (trial, seed): when it generalised, or where it is censored.

    Args:
        summary: trial_summary rows (generalized_step, last_step, seed, member_steps_to_target).
        searched: the searched keys that define a config.
    Returns:
        Columns trial_id, config, seed, step (NaN: never), time (step, else the trial's last
        step), generalised (bool). Trials without curves are left out.
    """
    rows = []
    for _, r in summary.iterrows():
        last = r.get("last_step")
        if last is None or pd.isna(last):
            continue
        key = config_key(r, searched)
        # Best source first: each member's own curve at the report's threshold, then the
        # trainer's closing report, then what the grokked fraction says.
        members = _members(r.get("member_generalized"))
        if members is None:
            members = _members(r.get("member_steps_to_target"))
        if members is None:
            members = _confirmed(r)
        if members is None:
            seed = r.get("seed")
            gen = r.get("generalized_step")
            members = {str(r["trial_id"]) if seed is None or pd.isna(seed) else str(int(seed)):
                       None if gen is None or pd.isna(gen) else float(gen)}
        stopped = r.get("outcome") if r.get("outcome") in STOPPED else None
        for seed, step in members.items():
            rows.append({"trial_id": r["trial_id"], "config": key, "seed": seed,
                         "step": np.nan if step is None else step,
                         "time": float(last) if step is None else step,
                         "generalised": step is not None,
                         "censored": None if step is not None or stopped is None else f"{stopped} at {int(last)}"})
    return pd.DataFrame(rows, columns=["trial_id", "config", "seed", "step", "time", "generalised", "censored"])


def _seed_order(seed: str):
    """Seeds in numeric order; unrecorded members ("?1", ...) after them, in their order."""
    return (0, int(seed), "") if seed.lstrip("-").isdigit() else (1, 0, seed)


def _by_seed(units: pd.DataFrame) -> str:
    """"0: 175, 1000: never, 2000: pruned at 300": a seed stopped before a verdict says so."""
    triples = sorted(zip(units["seed"], units["step"], units["censored"]), key=lambda p: _seed_order(p[0]))
    return ", ".join(f"{s}: {int(t) if not pd.isna(t) else (c if isinstance(c, str) else NEVER)}"
                     for s, t, c in triples)


def add_seed_columns(summary: pd.DataFrame, searched: list[str]) -> pd.DataFrame:
    """Add seed_steps ("0: 175, 1000: never, 2000: 236") and seeds_grokked ("2/3") per trial.

    Both describe the trial's config over all its seeds; they stay empty for a config trained
    with one seed only.
    """
    units = seed_units(summary, searched)
    out = summary.copy()
    out["seed_steps"], out["seeds_grokked"] = None, None
    if units.empty:
        return out
    keys = summary.apply(lambda r: config_key(r, searched), axis=1)
    for key, g in units.groupby("config", sort=False):
        if len(g) < 2:
            continue
        mask = keys == key
        out.loc[mask, "seed_steps"] = _by_seed(g)
        out.loc[mask, "seeds_grokked"] = f"{int(g['generalised'].sum())}/{len(g)}"
    return out


def config_table(summary: pd.DataFrame, searched: list[str]) -> pd.DataFrame:
    """One row per config over its seeds, fastest first (by the Kaplan-Meier median over seeds).

    Args:
        summary: trial_summary output.
        searched: the searched keys.
    Returns:
        Columns config, trials, seeds grokked, steps by seed, median over seeds (KM), spread;
        empty when no trial has curves.
    """
    units = seed_units(summary, searched)
    rows = []
    for key, g in units.groupby("config", sort=False):
        km = kaplan_meier(g["time"].to_numpy(), g["generalised"].to_numpy())
        done = g["step"].dropna()
        spread = (f"{int(done.min())}–{int(done.max())}" if len(done) else NEVER)
        if len(done) and len(done) < len(g):
            spread += f", {len(g) - len(done)} never"
        rows.append({"config": key or "(nothing searched)", "trials": g["trial_id"].nunique(),
                     "seeds grokked": f"{len(done)}/{len(g)}", "steps by seed": _by_seed(g),
                     "median over seeds (KM)": fmt_step(km.median), "spread": spread,
                     "_median": np.inf if km.median is None else km.median,
                     "_share": -len(done) / len(g),
                     "_first": done.min() if len(done) else np.inf})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values(["_median", "_share", "_first"], kind="stable")
    return frame.drop(columns=["_median", "_share", "_first"]).reset_index(drop=True)
