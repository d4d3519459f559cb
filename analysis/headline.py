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


def headline(summary: pd.DataFrame, searched: list[str], threshold: float) -> str:
    """One or two sentences for the top of the report.

    Args:
        summary: trial_summary output (outcome, generalized_step, last_step, seeds).
        searched: the searched keys (they define a config).
        threshold: the val accuracy that counts as generalised.
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
    return f"Fastest: {best['config']} {steps}. {counts}. {median}"
