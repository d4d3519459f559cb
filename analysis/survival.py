"""Steps to generalise as censored data: Kaplan-Meier curves and medians with confidence intervals.

A run that never generalised did not take "no steps": it took more than the steps it ran. Its
time is right-censored at its last step (pruned by the scheduler, out of budget, diverged).
Taking the median over only the runs that generalised reports the fast minority as typical,
so every median of steps to generalise in the report comes from here.

The estimator is scipy.stats.ecdf on scipy.stats.CensoredData (Kaplan-Meier for right-censored
data); the confidence band is scipy's pointwise log-log interval, and the interval of the median
is where that band crosses one half (Brookmeyer & Crowley 1982), so an upper end the band never
reaches is "not reached".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Survival:
    """Kaplan-Meier estimate of the share of runs generalised by each step."""

    steps: tuple[float, ...]
    """Distinct steps at which some run generalised (the curve's jumps), ascending."""
    share: tuple[float, ...]
    """Share generalised by each step (1 - the Kaplan-Meier survival), same length."""
    low: tuple[float, ...]
    """Lower end of the pointwise confidence band of `share`."""
    high: tuple[float, ...]
    """Upper end of the pointwise confidence band of `share`."""
    median: float | None
    """First step by which half the runs generalised; None: not reached."""
    median_low: float | None
    """Lower end of the median's confidence interval; None: not reached."""
    median_high: float | None
    """Upper end of the median's confidence interval; None: not reached."""
    n: int
    """Runs (seeds) counted."""
    events: int
    """Runs that generalised."""
    horizon: float
    """The last step any run reached (where the curve ends)."""


def kaplan_meier(times, generalised, *, confidence: float = CONFIDENCE) -> Survival:
    """The Kaplan-Meier curve of steps to generalise, with its median and confidence intervals.

    Args:
        times: per run, the step it generalised at, or its last step when it did not.
        generalised: per run, True when it generalised (False: censored at `times`).
        confidence: level of the pointwise band and of the median's interval.
    Returns:
        Survival; a sample without any generalised run has an empty curve and no median.
    Raises:
        ValueError: the arrays differ in length or hold a negative or non-finite time.
    """
    from scipy import stats  # deferred: scipy.stats takes ~1-2 s to import; only reports with runs need it

    t = np.asarray(times, dtype=float).ravel()
    e = np.asarray(generalised, dtype=bool).ravel()
    if t.shape != e.shape:
        raise ValueError(f"times and generalised differ in length: {t.size} vs {e.size}")
    if t.size and (not np.isfinite(t).all() or (t < 0).any()):
        raise ValueError("times must be finite and >= 0")
    horizon = float(t.max()) if t.size else 0.0
    if not e.any():
        return Survival((), (), (), (), None, None, None, int(t.size), 0, horizon)
    data = stats.CensoredData(uncensored=t[e], right=t[~e])
    sf = stats.ecdf(data).sf
    with warnings.catch_warnings():
        # scipy warns that the log-log band is undefined where the survival is 0 or 1 (the last
        # step when every run generalised); there the band is the estimate itself (below).
        warnings.filterwarnings("ignore", message="The confidence interval is undefined")
        band = sf.confidence_interval(confidence_level=confidence, method="log-log")
    steps = sf.quantiles
    share = 1.0 - sf.probabilities
    # The survival band's upper end is the share's lower end and the other way round.
    low, high = 1.0 - band.high.evaluate(steps), 1.0 - band.low.evaluate(steps)
    low, high = np.where(np.isnan(low), share, low), np.where(np.isnan(high), share, high)
    return Survival(tuple(map(float, steps)), tuple(map(float, share)), tuple(map(float, low)),
                    tuple(map(float, high)), _first_half(steps, share), _first_half(steps, high),
                    _first_half(steps, low), int(t.size), int(e.sum()), horizon)


def _first_half(steps: np.ndarray, share: np.ndarray) -> float | None:
    """The first step at which a share-generalised curve reaches one half, else None."""
    hit = np.flatnonzero(share >= 0.5 - 1e-12)
    return float(steps[hit[0]]) if hit.size else None


def fmt_step(value) -> str:
    """A step for the report: an integer, or "not reached" for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not reached"
    return f"{int(round(float(value)))}"


def describe_median(km: Survival) -> str:
    """'450 (95% CI 300-900; 7/12 generalised)' or 'not reached (...)' for the report."""
    count = f"{km.events}/{km.n} generalised"
    if km.events == 0:
        return f"not reached ({count})"
    ci = f"{fmt_step(km.median_low)}–{fmt_step(km.median_high)}"
    return f"{fmt_step(km.median)} ({int(CONFIDENCE * 100)}% CI {ci}; {count})"
