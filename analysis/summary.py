"""Per-trial events and per-task tables: the numbers behind the report (pure, DataFrames in/out)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from analysis.direction import as_cost
from analysis.double_descent import detect_double_descent
from analysis.grokking import PHASES, detect_grokking
from analysis.seeds import add_seed_columns
from analysis.survival import describe_median, kaplan_meier
from groktune.errors import ResultsError
from groktune.events import first_event
from groktune.layout import FINAL_STATUSES, sweep_status
from groktune.space import Dist

FIRST_COLUMNS = ["trial_id", "task", "status", "outcome", "phase", "memorized_step",
                 "generalized_step", "delay", "steps_to_target", "seed_steps", "seeds_grokked",
                 "n_collapses", "collapse_period", "at_target_share", "first_collapse_step",
                 "first_collapse_depth", "final_val_acc", "final_train_acc", "final_val_loss",
                 "last_step", "wall_time"]
STEP_COLUMNS = ["memorized_step", "generalized_step", "delay", "last_step", "dd_first_min",
                "dd_peak", "dd_second_min", "first_collapse_step"]
# Outcomes kept apart in every table and figure: a run that did not
# generalise was stopped by the scheduler, ran out of budget, diverged, failed, or is unfinished.
OUTCOMES = ("grokked", "pruned", "budget", "diverged", "error", "unfinished", "no data")
VERDICT_OUTCOMES = ("grokked", "budget")
"""Outcomes of runs that ran to a verdict (generalised, or used their whole budget)."""


def outcome(status: str, generalized_step, has_curve: bool = True) -> str:
    """How a trial ended, for tables and figures: one of OUTCOMES.

    Args:
        status: the trial's recorded status (trials.parquet / result.json).
        generalized_step: the detected generalisation step, or None/NA.
        has_curve: False for a trial without any eval records.
    Returns:
        "grokked" when it generalised; else the status it stopped with (a trainer "grokked" without an
        event at the report's threshold ran to its target only by the trainer's rule, so "budget").
    """
    if not has_curve:
        return "no data"
    if generalized_step is not None and not pd.isna(generalized_step):
        return "grokked"
    status = sweep_status(str(status))  # the one early_stopped -> pruned mapping
    if status == "grokked":  # the trainer's rule only, no event at the report's threshold
        return "budget"
    return status if status in FINAL_STATUSES else "unfinished"


def _collapse_columns(ev) -> dict:
    """summary.csv's collapse columns from a GrokEvents."""
    first = ev.collapses[0] if ev.collapses else None
    return {"n_collapses": ev.n_collapses, "collapse_period": ev.collapse_period,
            "at_target_share": ev.at_target_share,
            "first_collapse_step": first.step if first else None,
            "first_collapse_depth": first.depth if first else None}


def population_progress(g: pd.DataFrame) -> dict:
    """What a population trial's curves say about its seeds, for when its closing report (with
    member_steps_to_target) never came because the scheduler stopped it.

    Returns:
        {} for other trials; else population_size (members at the first eval) and
        members_confirmed: JSON list of the steps at which the trainer confirmed the 1st, 2nd, ...
        member at its target (grokked_fraction rising; up to patience evals after the onset).
    """
    if "grokked_fraction" not in g or "members_live" not in g or g["members_live"].isna().all():
        return {}
    size = int(g["members_live"].dropna().iloc[0])
    counts = (g["grokked_fraction"].fillna(0).to_numpy(float) * size).round().astype(int)
    steps = g["step"].to_numpy()
    confirmed = [int(steps[np.argmax(counts >= k)]) for k in range(1, int(counts.max()) + 1)]
    return {"population_size": size, "members_confirmed": json.dumps(confirmed)}


def member_curves(g: pd.DataFrame, column: str = "member_val_acc") -> dict[str, pd.DataFrame]:
    """A population trial's per-member curves {seed: frame(step, val_acc)}; {} for other trials.

    Population trials report each member's latest accuracy as a list per eval (in the order of
    the JSON list `member_seeds`), beside the median record.
    """
    if column not in g or "member_seeds" not in g:
        return {}
    rows = g[g[column].map(lambda v: isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0)]
    if rows.empty:
        return {}
    seeds = [str(s) for s in json.loads(str(rows["member_seeds"].iloc[-1]))]
    values = np.array([np.asarray(v, dtype=float) for v in rows[column]])  # (evals, members)
    if values.ndim != 2 or values.shape[1] != len(seeds):
        return {}
    steps = rows["step"].to_numpy()
    return {seed: pd.DataFrame({"step": steps, "val_acc": values[:, i]}) for i, seed in enumerate(seeds)}


def member_events(g: pd.DataFrame, threshold: float, patience: int) -> dict:
    """Each member's generalisation step by the one event rule, from its own curve.

    Returns:
        {"member_generalized": JSON {seed: step or null}} for a population trial with member
        curves, else {} (seeds then come from member_steps_to_target or the grokked fraction).
    """
    members = member_curves(g)
    if not members:
        return {}
    steps = {seed: first_event(m["step"], m["val_acc"], threshold=threshold, patience=patience)
             for seed, m in members.items()}
    return {"member_generalized": json.dumps(steps)}


def _optional(g: pd.DataFrame, column: str):
    return g[column] if column in g and g[column].notna().any() else None


def _trial_row(trial_id: str, g: pd.DataFrame, threshold: float, patience: int,
               delay_boundary: float) -> dict:
    ev = detect_grokking(g["step"], g["train_acc"], g["val_acc"], threshold=threshold,
                         patience=patience, delay_boundary=delay_boundary,
                         train_loss=_optional(g, "train_loss"), param_norm=_optional(g, "param_norm"))
    row = {"trial_id": trial_id, "memorized_step": ev.memorized_step,
           "generalized_step": ev.generalized_step, "delay": ev.delay, "phase": ev.phase,
           "last_step": int(g["step"].max()), "evals": len(g),
           "curve_val_acc": float(g["val_acc"].iloc[-1]),
           "curve_train_acc": float(g["train_acc"].iloc[-1]), **_collapse_columns(ev)}
    row.update(population_progress(g))
    row.update(member_events(g, threshold, patience))
    dd = None
    if "val_loss" in g and g["val_loss"].notna().sum() >= 4:
        dd = detect_double_descent(g["step"], g["val_loss"])
    row.update({"dd_first_min": dd and dd.first_min, "dd_peak": dd and dd.peak,
                "dd_second_min": dd and dd.second_min, "dd_rise": dd and dd.rise})
    return row


def trial_summary(results, *, threshold: float = 0.99, patience: int = 3,
                  delay_boundary: float = 1000) -> pd.DataFrame:
    """One row per trial: its events and phase, epoch-wise double descent, and its trials row.

    Args:
        results: analysis.Results.
        threshold, patience, delay_boundary: as for analysis.detect_grokking.
    Returns:
        A DataFrame led by FIRST_COLUMNS, then the searched keys, then the rest. Step columns
        are nullable integers; a trial without curves has phase "no data".
    """
    rows = [_trial_row(tid, g, threshold, patience, delay_boundary)
            for tid, g in results.curves.groupby("trial_id", sort=False)]
    merged = results.trials.copy()
    if rows:
        merged = merged.merge(pd.DataFrame(rows), on="trial_id", how="left")
    has_curve = merged.get("phase", pd.Series(index=merged.index, dtype=object)).notna()
    merged["phase"] = merged.get("phase", pd.Series(index=merged.index, dtype=object)).fillna("no data")
    merged["outcome"] = [outcome(s, g, c) for s, g, c in
                         zip(merged["status"], merged.get("generalized_step", [None] * len(merged)),
                             has_curve)]
    # A run stopped before a verdict is not "confusion" or "memorization": it was never given
    # the chance to generalise. Its phase is how it stopped.
    stopped = merged["outcome"].isin(("pruned", "diverged", "error", "unfinished"))
    merged.loc[stopped, "phase"] = merged.loc[stopped, "outcome"]
    merged = add_seed_columns(merged, results.searched)
    for final, curve in (("final_val_acc", "curve_val_acc"), ("final_train_acc", "curve_train_acc")):
        if curve in merged:
            base = merged[final] if final in merged else pd.Series(np.nan, index=merged.index)
            merged[final] = pd.to_numeric(base, errors="coerce").fillna(merged[curve])
            merged = merged.drop(columns=curve)
    for col in STEP_COLUMNS + ["steps_to_target"]:
        if col in merged:
            merged[col] = pd.to_numeric(merged[col], errors="coerce").round().astype("Int64")
    lead = [c for c in FIRST_COLUMNS if c in merged]
    searched = [c for c in results.searched if c in merged and c not in lead]
    rest = [c for c in merged.columns if c not in lead and c not in searched]
    return merged[lead + searched + rest]


def rank_trials(summary: pd.DataFrame) -> pd.DataFrame:
    """Trials best first: generalised ones by steps to generalise, then by final val accuracy.

    Args:
        summary: trial_summary output (or any frame with generalized_step, final_val_acc).
    Returns:
        The rows reordered (index reset).
    """
    gen = pd.to_numeric(summary["generalized_step"], errors="coerce").astype(float)
    acc = summary["final_val_acc"] if "final_val_acc" in summary else pd.Series(np.nan, index=summary.index)
    acc = pd.to_numeric(acc, errors="coerce").astype(float)
    keys = pd.DataFrame({"gen": as_cost(gen.fillna(np.inf), "min"),
                         "acc": np.nan_to_num(as_cost(acc, "max"), nan=np.inf)}, index=summary.index)
    order = keys.sort_values(["gen", "acc"], kind="stable").index
    return summary.loc[order].reset_index(drop=True)


def best_and_typical(summary: pd.DataFrame) -> dict[str, str]:
    """The best and the typical (median-ranked) trial of a frame of trials.

    The typical trial is the median-ranked one among those that ran to a verdict (generalised
    or used their budget): a trial the scheduler stopped at its first rung says little about
    what a run of this sweep looks like.

    Returns:
        {"best": trial_id, "typical": trial_id}; "typical" is left out when it is the best or
        no trial ran to a verdict.
    """
    ranked = rank_trials(summary[summary["phase"] != "no data"])
    if ranked.empty:
        return {}
    picks = {"best": ranked["trial_id"].iloc[0]}
    if "outcome" in ranked:
        ranked = ranked[ranked["outcome"].isin(VERDICT_OUTCOMES)]
    if ranked.empty:
        return picks
    typical = ranked["trial_id"].iloc[len(ranked) // 2]
    if typical != picks["best"]:
        picks["typical"] = typical
    return picks


def describe_config(row: pd.Series, keys: list[str]) -> str:
    """'optim.lr=0.001, optim.weight_decay=1' for the given keys of one trial."""
    parts = []
    for key in keys:
        value = row.get(key)
        if isinstance(value, (float, np.floating)):
            value = f"{value:.4g}"
        parts.append(f"{key}={value}")
    return ", ".join(parts) if parts else "(nothing searched)"


def _median(values: pd.Series):
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.median()) if len(values) else None


def kaplan_meier_median(summary: pd.DataFrame, column: str = "generalized_step") -> str:
    """Kaplan-Meier median of an event step over trials, runs without it censored at their end
    (unlike analysis.bench_table.median_failures_as_inf, which counts them as never reaching).

    Args:
        summary: trial_summary rows (`column` and last_step); trials without curves are left out.
        column: generalized_step or memorized_step.
    Returns:
        '450 (95% CI 300–900; 7/12 generalised)' or 'not reached (...)'.
    """
    rows = summary[summary["last_step"].notna()] if "last_step" in summary else summary.iloc[0:0]
    step = pd.to_numeric(rows[column], errors="coerce").astype(float)
    times = step.fillna(pd.to_numeric(rows["last_step"], errors="coerce").astype(float))
    text = describe_median(kaplan_meier(times.to_numpy(), step.notna().to_numpy()))
    return text if column == "generalized_step" else text.replace("generalised", "memorised")


def task_table(summary: pd.DataFrame, searched: list[str]) -> pd.DataFrame:
    """One row per task: counts, median steps to memorise/generalise, delay, phases, best config.

    Args:
        summary: trial_summary output.
        searched: the searched keys to show in the best config.
    Returns:
        A DataFrame with one row per task, in task order.
    """
    rows = []
    for task, g in summary.groupby("task", sort=True):
        ranked = rank_trials(g)
        best = ranked.iloc[0]
        phases = g["phase"].value_counts()
        order = [p for p in (*PHASES, *OUTCOMES) if p in phases]
        outcomes = g["outcome"].value_counts() if "outcome" in g else pd.Series(dtype=int)
        rows.append({
            "task": task, "trials": len(g),
            "generalised": f"{int(g['generalized_step'].notna().sum())}/{len(g)}",
            "outcomes": ", ".join(f"{o} {outcomes[o]}" for o in OUTCOMES if o in outcomes),
            "median steps to memorise (KM)": kaplan_meier_median(g, "memorized_step"),
            "median steps to generalise (KM)": kaplan_meier_median(g, "generalized_step"),
            "median delay (runs that did both)": _median(g["delay"]),
            "phases": ", ".join(f"{p} {phases[p]}" for p in order),
            "median wall time (s)": _median(g["wall_time"]) if "wall_time" in g else None,
            "best trial": best["trial_id"],
            "best steps to generalise": best["generalized_step"],
            "best per-seed steps": best.get("seed_steps"),
            "best config": describe_config(best, searched),
        })
    return pd.DataFrame(rows)


def log_scaled(values: pd.Series, dist: Dist | None = None) -> bool:
    """Whether a hyperparameter is best seen on a log axis.

    Args:
        values: the column.
        dist: its parsed search-space distribution (groktune.space.Dist; Results.params), or None.
    Returns:
        True for positive numbers searched on a log scale, or (without a distribution)
        spanning at least two decades.
    """
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any() or len(numeric) == 0 or numeric.min() <= 0:
        return False
    if dist is not None:
        return dist.log
    return bool(numeric.max() / numeric.min() >= 100)


def varying(summary: pd.DataFrame, keys: list[str]) -> list[str]:
    """The keys whose column has at least two distinct values."""
    return [k for k in keys if k in summary and summary[k].astype(str).nunique() > 1]


def choose_pair(summary: pd.DataFrame, searched: list[str], importances: dict[str, float],
                x: str | None = None, y: str | None = None) -> tuple[str, str] | None:
    """The two hyperparameters for the steps map and the phase diagram.

    Given keys win (they must be columns); otherwise optim.lr x optim.weight_decay when both
    vary, else the two most important varying searched keys, else the first two that vary.

    Args:
        summary: trial_summary output.
        searched: searched keys.
        importances: key -> importance (may be empty).
        x, y: keys the user chose, or None.
    Returns:
        (x, y) or None when fewer than two hyperparameters vary.
    Raises:
        ResultsError: a chosen key is not a column; the message lists the searched keys.
    """
    for key in (x, y):
        if key is not None and key not in summary:
            raise ResultsError(f"{key}: not a column of these results; searched: "
                               f"{', '.join(searched) or 'none'}")
    varying_keys = varying(summary, searched)
    if x and y:
        return x, y
    ranked = sorted(varying_keys, key=lambda k: -importances.get(k, 0.0))
    default = ["optim.lr", "optim.weight_decay"]
    order = default if all(k in varying_keys for k in default) else ranked
    picked = [k for k in (x, y) if k]
    picked += [k for k in order if k not in picked][: 2 - len(picked)]
    return tuple(picked) if len(picked) == 2 else None
