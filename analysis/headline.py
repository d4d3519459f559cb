"""The report's headline: one or two sentences on what made grokking fastest here.

It names the best config (fastest by the Kaplan-Meier median over its seeds), its steps with
every seed shown when there are several, how many trials generalised and how many the scheduler
stopped, and the sweep-wide median with runs that never generalised counted (censored).
"""

from __future__ import annotations

import pandas as pd

from analysis.seeds import config_table, seed_units
from analysis.survival import describe_median, kaplan_meier


def _counts(summary: pd.DataFrame) -> str:
    """'2 of 6 trials generalised; the scheduler stopped 3, 1 ran out of budget'."""
    outcomes = summary["outcome"].value_counts() if "outcome" in summary else pd.Series(dtype=int)
    n = len(summary)
    parts = [f"{int(outcomes.get('grokked', 0))} of {n} trial(s) generalised",
             f"the scheduler stopped {int(outcomes.get('pruned', 0))}"]
    for kind, words in (("budget", "ran out of budget"), ("diverged", "diverged"),
                        ("error", "failed"), ("unfinished", "are unfinished")):
        if outcomes.get(kind, 0):
            parts.append(f"{int(outcomes[kind])} {words}")
    return ", ".join(parts)


def verified_sentence(verified: pd.DataFrame | None) -> str:
    """The verification stage's result for the headline: the best config that held on fresh
    seeds (median and spread), and each better-ranked config that did not repeat."""
    if verified is None or not len(verified):
        return ""
    parts, holding = [], verified[verified["holds"].astype(bool)]
    for _, r in verified.sort_values("rank").iterrows():
        search = "never" if pd.isna(r["search_median"]) else f"{r['search_median']:g}"
        if bool(r["holds"]):
            spread = f"{r['verified_min']:g}–{r['verified_max']:g}"
            parts.append(f"Verified on {str(r['verified_grokked']).split('/')[1]} fresh seeds: {r['config']} "
                         f"reaches the target in a median of {r['verified_median']:g} steps ({spread}; the "
                         f"search saw {search}).")
            break
        med = "never" if pd.isna(r["verified_median"]) else f"a median of {r['verified_median']:g}"
        parts.append(f"Search #{int(r['rank'])} ({r['config']}, {search} steps in the search) does not repeat "
                     f"on fresh seeds: {med}, {r['verified_grokked']} reached the target.")
    if holding.empty:
        parts.append("No verified config held its search result.")
    return " ".join(parts)


def headline(summary: pd.DataFrame, searched: list[str], threshold: float,
             verified: pd.DataFrame | None = None) -> str:
    """One or two sentences for the top of the report.

    Args:
        summary: trial_summary output (outcome, generalized_step, last_step, seeds).
        searched: the searched keys (they define a config).
        threshold: the val accuracy that counts as generalised.
        verified: the sweep's verified.csv (orchestrator.sweep.verify), or None; when given, its result
            leads the headline (the search's own best comes after it).
    Returns:
        The headline text.
    """
    counts = _counts(summary)
    units = seed_units(summary, searched)
    if units.empty:
        return f"No trial has curves yet; {counts}."
    overall = kaplan_meier(units["time"].to_numpy(), units["generalised"].to_numpy())
    median = (f"Median steps to generalise over all {len(units)} run(s) (Kaplan–Meier, runs that "
              f"never reached {threshold:g} counted): {describe_median(overall)}.")
    if not units["generalised"].any():
        return f"No run reached val accuracy {threshold:g}: {counts}. {median}"
    best = config_table(summary, searched).iloc[0]
    seeds = best["seeds grokked"].split("/")[1]
    if seeds == "1":
        steps = f"generalised at step {best['steps by seed'].split(': ')[1]}"
    else:
        steps = (f"generalised in a median of {best['median over seeds (KM)']} steps over {seeds} "
                 f"seeds (by seed {best['steps by seed']}; {best['seeds grokked']} generalised)")
    lead = verified_sentence(verified)
    found = f"Fastest in the search: {best['config']} {steps}." if lead else f"Fastest: {best['config']} {steps}."
    return " ".join(p for p in (lead, found, f"{counts}. {median}") if p)
