"""Hyperparameter importances for grokking speed, with Optuna's fANOVA, and how far to trust them.

The finished trials are replayed into an in-memory Optuna study (`optuna.trial.create_trial`)
whose objective is the grokking speed, log10(steps to generalise). A trial that never
generalised gets log10(2 x the last step any trial reached): worse than every trial that did,
and equal among themselves, since how long they would have needed is unknown.

The numbers must not look more certain than they are. So
- the evaluator's warnings are recorded and shown in the report, never silenced;
- when most trials tie (e.g. 12 of 16 never generalised) or the evaluator gives every parameter
  the same value (its quantiles selected the same trials), no numbers are given, only
  "undetermined (why)";
- each importance carries a bootstrap interval (2.5-97.5 % over trials resampled with
  replacement), so a user sees how much it moves with the sample.
fANOVA (Hutter et al. 2014; optuna.importance.FanovaImportanceEvaluator, needs scikit-learn) is
used from MIN_TRIALS trials on; with fewer no importances are computed.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.summary import log_scaled
from groktune.space import Dist

MIN_TRIALS = 8
BOOTSTRAP = 20
"""Resamples for the bootstrap interval (fANOVA fits a forest per resample: keep it small)."""
MAX_TIED_SHARE = 0.5
"""More than this share of trials with one objective value leaves too little to attribute."""


@dataclass(frozen=True)
class Importances:
    values: dict[str, float]
    """Parameter -> importance (summing to 1), most important first; {} when not computed or
    undetermined."""
    evaluator: str
    note: str
    """Why nothing was computed, or how it was."""
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Parameter -> (2.5 %, 97.5 %) of its importance over bootstrap resamples of the trials."""
    warnings: tuple[str, ...] = ()
    """What the evaluator warned about, word for word."""
    undetermined: str = ""
    """Why the importances are undetermined ("" when they are given)."""
    parameters: tuple[str, ...] = ()
    """The parameters that varied (those an undetermined verdict applies to)."""


def grok_objective(summary: pd.DataFrame) -> pd.Series:
    """log10(steps to generalise), with never-generalised trials ranked behind all others.

    Args:
        summary: trial_summary output (generalized_step, last_step).
    Returns:
        A float Series aligned with `summary`.
    """
    gen = pd.to_numeric(summary["generalized_step"], errors="coerce").astype(float)
    horizon = pd.to_numeric(summary.get("last_step", gen), errors="coerce").astype(float)
    worst = 2.0 * max(float(np.nanmax(horizon.to_numpy())) if horizon.notna().any() else 1.0, 1.0)
    return np.log10(gen.clip(lower=1.0).fillna(worst))


def _distribution(values: pd.Series, dist: Dist | None):
    """An Optuna distribution holding every observed value, or None for a constant column;
    `dist`: the key's parsed search-space distribution, if the sweep recorded one."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution  # deferred: optuna, as below

    numeric = pd.to_numeric(values, errors="coerce")
    choice = dist is not None and dist.kind == "choice"  # e.g. batch_size 0 = full batch
    if (not choice and numeric.notna().all()
            and values.map(lambda v: not isinstance(v, bool)).all()):
        lo, hi = float(numeric.min()), float(numeric.max())
        if lo == hi:
            return None, None
        return FloatDistribution(lo, hi, log=log_scaled(numeric, dist)), numeric.astype(float)
    labels = values.astype(str)
    if labels.nunique() < 2:
        return None, None
    return CategoricalDistribution(sorted(labels.unique())), labels


def _study(summary: pd.DataFrame, searched: list[str], space: dict[str, Dist]):
    import optuna  # deferred: ~0.7 s to import; only a report with enough trials needs it

    dists, columns = {}, {}
    for key in searched:
        dist, column = _distribution(summary[key], space.get(key))
        if dist is not None:
            dists[key], columns[key] = dist, column
    objective = grok_objective(summary)
    study = optuna.create_study(direction="minimize", study_name="grokking-speed")
    for i in range(len(summary)):
        params = {k: (float(c.iloc[i]) if isinstance(c.iloc[i], (float, np.floating)) else c.iloc[i])
                  for k, c in columns.items()}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                  value=float(objective.iloc[i])))
    return study, dists, objective


class _LogCapture(logging.Handler):
    """Collects what Optuna logs at WARNING or above while importances are computed."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _evaluate(study, seed: int, said: list[str]) -> dict[str, float]:
    """fANOVA importances of one study; warnings and Optuna's log lines go into `said`."""
    import optuna  # deferred: as in _study

    capture = _LogCapture()
    logger = logging.getLogger("optuna")
    logger.addHandler(capture)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed))
    finally:
        logger.removeHandler(capture)
    said.extend([str(w.message) for w in caught] + capture.messages)
    return {k: float(v) for k, v in values.items() if math.isfinite(v)}


def _tie(objective: pd.Series) -> tuple[int, float]:
    """How many trials share the most common objective value, and that value."""
    counts = objective.round(9).value_counts()
    return int(counts.iloc[0]), float(counts.index[0])


def _bootstrap(rows: pd.DataFrame, searched: list[str], space: dict[str, Dist], seed: int,
               said: list[str]) -> dict[str, tuple[float, float]]:
    """2.5-97.5 % of each importance over trials resampled with replacement."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in searched}
    for b in range(BOOTSTRAP):
        sample = rows.iloc[rng.integers(0, len(rows), len(rows))].reset_index(drop=True)
        study, dists, objective = _study(sample, searched, space)
        if not dists or objective.nunique() < 2:
            continue
        values = _evaluate(study, seed + 1 + b, said)
        for key in draws:  # a parameter constant in the resample explains nothing there
            draws[key].append(values.get(key, 0.0))
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
            for k, v in draws.items() if v}


def param_importances(summary: pd.DataFrame, searched: list[str], space: dict[str, Dist] | None = None, *,
                      min_trials: int = MIN_TRIALS, seed: int = 0,
                      bootstrap: bool = True) -> Importances:
    """Importance of each searched hyperparameter for grokking speed, or why it is undetermined.

    Args:
        summary: trial_summary output, one row per trial.
        searched: the searched dotted keys (columns of `summary`).
        space: the parsed search space (Results.params: groktune.space.Dist by key), to tell
            log-scaled and choice parameters.
        min_trials: fewer trials than this give no importances, only a note.
        seed: the seed of the evaluator and of the bootstrap.
        bootstrap: also compute the bootstrap interval of each importance.
    Returns:
        Importances(values, evaluator, note, spread, warnings, undetermined, parameters).
    """
    import optuna  # deferred: as in _study

    rows = summary[summary["phase"] != "no data"].reset_index(drop=True)
    searched = [k for k in searched if k in rows]
    space = space or {}
    if len(rows) < min_trials or not searched:
        why = "no hyperparameter was searched" if not searched else f"only {len(rows)} trial(s)"
        return Importances({}, "", f"Too few trials for importances: {why}; need at least "
                                   f"{min_trials} trials over at least one searched parameter.")
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # INFO lines are noise; warnings stay
    said: list[str] = []
    try:
        study, dists, objective = _study(rows, searched, space)
        if not dists or objective.nunique() < 2:
            return Importances({}, "", "No importances: the searched parameters or the outcome "
                                       "did not vary across trials.")
        params = tuple(dists)
        note = (f"fANOVA over {len(rows)} trials; objective log10(steps to generalise), trials "
                "that never generalised ranked last (tied with each other).")
        tied, value = _tie(objective)
        if tied / len(rows) > MAX_TIED_SHARE:
            what = "never generalised" if abs(value - objective.max()) < 1e-6 else "share one outcome"
            return Importances({}, "fANOVA", note, undetermined=f"{tied} of {len(rows)} trials "
                               f"{what}, so their order says little", parameters=params)
        values = _evaluate(study, seed, said)
        if len(values) > 1 and np.ptp(list(values.values())) < 1e-6:
            return Importances({}, "fANOVA", note, warnings=tuple(dict.fromkeys(said)),
                               undetermined="the evaluator gave every parameter the same "
                                            "importance", parameters=params)
        spread = _bootstrap(rows, list(params), space, seed, said) if bootstrap else {}
    finally:
        optuna.logging.set_verbosity(old)
    return Importances(values, "fANOVA", note, spread, tuple(dict.fromkeys(said)), "", params)
