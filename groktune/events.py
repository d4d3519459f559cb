"""THE event rule of groktune, one implementation: when a curve "got there".

An event is the first step at which a value reached the threshold (>= for mode "max", <= for
"min"; NaN never reaches) and then held it for `patience` consecutive evals, the step of the
first of them. Nothing later moves it: real runs collapse and recover after grokking (the
"slingshots" of Thilak et al. 2022), and those dips are separate events (`collapses`), never a
reason to move the onset. An earlier version let a later dip of `patience` evals cancel the
event and so reported the start of the *last* streak (2,790 on a run that generalised at 950).

Who uses it: the trainer's stop rule (trials.evalplan.StopRule, one per member of a population)
folds each eval into an `EventTracker` online and writes the event so far into that eval's
record under EVENT_STEP; the sweep's score (`orchestrator.sweep.objective.ScoreState`) reads it
from there and keeps no tracker of its own. `analysis.grokking` and `analysis.probes` call
`first_event`, which folds the same tracker over a saved curve. One rule, so the trainer, the
score and the report agree.

Counting evals rather than steps makes the rule independent of the eval grid (dense, linear,
log-spaced, uneven): only the order of the evals matters.

Torch-free and Ray-free (numpy only), like the rest of the `groktune` base package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_PATIENCE = 3
"""Evals in a row at the threshold that make an event, when nothing else is configured."""

MODES = ("max", "min")

EVENT_STEP = "event_step"
"""The record key of the trainer's event so far: the step val accuracy reached the target and
held it for the patience (steps_to_target once the run ends grokked), or None while there is
none. Set on every eval record by trials.evalplan.StopRule.facts."""


def check_mode(mode: str) -> str:
    """Return `mode` if it is "max" or "min", else raise ValueError."""
    if mode not in MODES:
        raise ValueError(f"mode: got {mode!r}, allowed: min, max")
    return mode


def reaches(value: float, threshold: float, mode: str = "max") -> bool:
    """Whether one value is at or beyond the threshold in the good direction (NaN never is)."""
    v = float(value)
    if math.isnan(v):
        return False
    return v >= threshold if check_mode(mode) == "max" else v <= threshold


def event_patience(target_patience: int) -> int:
    """The patience a run's `train.target_patience` implies for finding its event.

    0 means "do not stop training at the target"; the event is then still found, with
    DEFAULT_PATIENCE, so such a run reports steps_to_target and "grokked" like any other.

    Args:
        target_patience: train.target_patience (>= 0).
    Returns:
        The patience (>= 1) to hand to EventTracker / first_event.
    """
    return int(target_patience) if target_patience and target_patience > 0 else DEFAULT_PATIENCE


class EventTracker:
    """The event rule, online: fold evals in step order; `event` is fixed once found.

    Attributes:
        event: the step of the event, or None while there is none.
        streak: evals in a row at the threshold ending at the latest eval.
        streak_start: step of the first eval of that streak, or None.
    """

    def __init__(self, threshold: float, patience: int = DEFAULT_PATIENCE, mode: str = "max"):
        if int(patience) < 1:
            raise ValueError(f"patience: got {patience}, must be >= 1")
        self.threshold, self.patience, self.mode = float(threshold), int(patience), check_mode(mode)
        self.event: int | None = None
        self.streak = 0
        self.streak_start: int | None = None

    def update(self, step: int, value: float) -> int | None:
        """Fold in one eval (steps must increase); return the event step, or None so far."""
        if reaches(value, self.threshold, self.mode):
            if self.streak == 0:
                self.streak_start = int(step)
            self.streak += 1
        else:
            self.streak, self.streak_start = 0, None
        if self.event is None and self.streak >= self.patience:
            self.event = self.streak_start
        return self.event

    @property
    def at_threshold(self) -> bool:
        """Whether the latest eval was at the threshold."""
        return self.streak > 0

    def state_dict(self) -> dict:
        """Ints only (-1 for None), so it fits a weights_only checkpoint and a JSON file."""
        return {"event": _enc(self.event), "streak": self.streak, "streak_start": _enc(self.streak_start)}

    def load_state_dict(self, state: dict) -> None:
        """Restore from state_dict(); a missing "event" (older checkpoints) means none yet."""
        self.event = _dec(state.get("event", -1))
        self.streak = int(state.get("streak", 0))
        self.streak_start = _dec(state.get("streak_start", -1))


def _enc(step: int | None) -> int:
    return -1 if step is None else int(step)


def _dec(value) -> int | None:
    return None if value is None or int(value) < 0 else int(value)


def clean_order(steps) -> tuple[np.ndarray, np.ndarray]:
    """Indices that sort a curve by step, keeping the last record of a repeated step.

    A trial resumed from a checkpoint logs the steps after the checkpoint again; the later
    record is the one that led to the final state. Non-finite steps are dropped.

    Args:
        steps: array-like of step numbers (any order, repeats allowed).
    Returns:
        (index into the input, the kept steps as int64), sorted by step, unique steps.
    """
    s = np.asarray(steps, dtype=np.float64).ravel()
    idx = np.flatnonzero(np.isfinite(s))
    idx = idx[np.argsort(s[idx], kind="stable")]
    ordered = s[idx]
    last = np.ones(idx.size, dtype=bool)
    last[:-1] = ordered[1:] != ordered[:-1]  # the last of each run of equal steps
    return idx[last], ordered[last].astype(np.int64)


def clean_series(steps, values) -> tuple[np.ndarray, np.ndarray]:
    """Sort a curve by step and keep the last record of a repeated step (see clean_order).

    Args:
        steps: array-like of step numbers (any order, repeats allowed).
        values: array-like of the same length.
    Returns:
        (steps as int64, values as float64), sorted by step, unique steps.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    n = np.asarray(steps).size
    if n != v.size:
        raise ValueError(f"steps and values differ in length: {n} vs {v.size}")
    idx, s = clean_order(steps)
    return s, v[idx]


def first_event(steps, values, *, threshold: float, patience: int = DEFAULT_PATIENCE,
                mode: str = "max") -> int | None:
    """The event of a saved curve: EventTracker folded over it in step order.

    Args:
        steps: step of each eval (any order; a repeated step keeps its last record).
        values: the metric at each eval; NaN never reaches.
        threshold: the target value.
        patience: evals in a row at the threshold that make the event (>= 1).
        mode: "max" when reaching means >= threshold (accuracy), "min" for <= (loss).
    Returns:
        The step of the first eval of the first streak of `patience` evals, or None.
    """
    tracker = EventTracker(threshold, patience, mode)  # validates patience and mode first
    s, v = clean_series(steps, values)
    for step, value in zip(s.tolist(), v.tolist()):
        if tracker.update(step, value) is not None:
            break  # nothing later moves it
    return tracker.event


@dataclass(frozen=True)
class Collapse:
    """One fall below the threshold after the event, and its recovery."""

    step: int
    """First eval below the threshold."""
    depth: float
    """Lowest value in the dip (NaN when every eval in it was NaN)."""
    recovered_step: int | None
    """First eval back at the threshold, or None if the curve ends below it."""
    train_loss_spike: float | None = None
    """Max train loss in the dip minus train loss at the last eval before it (if given)."""
    param_norm_change: float | None = None
    """Param norm at recovery (or the last eval) minus the norm just before the dip (if given)."""


def collapses(steps, values, *, threshold: float, event_step: int | None, train_loss=None,
              param_norm=None, mode: str = "max") -> tuple[Collapse, ...]:
    """Every fall below the threshold after the event (post-grokking slingshots).

    A dip is a maximal run of evals after `event_step` that do not reach the threshold (NaN
    does not); a single eval counts. The dip's own evals give the depth and the loss spike.

    Args:
        steps, values: the curve (any order; repeated steps keep the last record).
        threshold: the level the event reached.
        event_step: the event (first_event); None gives no collapses.
        train_loss, param_norm: optional arrays aligned with `steps`.
        mode: as in first_event; depth is the worst value (min for "max", max for "min").
    Returns:
        The collapses in step order.
    """
    check_mode(mode)
    if event_step is None:
        return ()
    idx, s = clean_order(steps)
    n_in = np.asarray(steps).size
    v, loss, norm = (_aligned(a, idx, n_in) for a in (values, train_loss, param_norm))
    ok = np.array([reaches(x, threshold, mode) for x in v], dtype=bool)
    out, i, n = [], int(np.searchsorted(s, event_step, side="right")), s.size
    while i < n:
        if ok[i]:
            i += 1
            continue
        j = i
        while j < n and not ok[j]:
            j += 1  # [i, j) is the dip; j is the recovery eval (or n)
        dip = v[i:j]
        pick = np.nanmin if mode == "max" else np.nanmax
        worst = np.nan if np.all(np.isnan(dip)) else float(pick(dip))
        before, after = i - 1, (j if j < n else n - 1)  # the eval before the dip; recovery or last
        spike = _delta(loss, slice(i, j), before, peak=True)
        change = _delta(norm, after, before)
        out.append(Collapse(step=int(s[i]), depth=worst, recovered_step=int(s[j]) if j < n else None,
                            train_loss_spike=spike, param_norm_change=change))
        i = j
    return tuple(out)


def _aligned(values, idx: np.ndarray, n: int) -> np.ndarray | None:
    """An optional array aligned with the steps, in clean_order; its length is checked."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size != n:
        raise ValueError(f"steps and values differ in length: {n} vs {arr.size}")
    return arr[idx]


def _delta(series: np.ndarray | None, at, before: int, peak: bool = False) -> float | None:
    """series[at] (its NaN-ignoring max over a slice when peak) minus series[before]; None when
    there is no series, no eval before the dip, or only NaN."""
    if series is None or before < 0:
        return None
    part = series[at]
    if peak:
        part = np.nan if np.all(np.isnan(part)) else np.nanmax(part)
    x = float(part - series[before])
    return None if math.isnan(x) else x


__all__ = [
    "DEFAULT_PATIENCE", "EVENT_STEP", "MODES", "Collapse", "EventTracker", "check_mode", "clean_order",
    "clean_series", "collapses", "event_patience", "first_event", "reaches",
]
