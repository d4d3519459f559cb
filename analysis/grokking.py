"""Grokking events, post-grokking collapses and phases from one learning curve: pure functions.

An event ("memorised", "generalised") is groktune.events' rule, the one the trainer's stop rule
and grok_score use too: the first step at which an accuracy reached the threshold and then held
it for `patience` consecutive evals. Nothing later moves it; the falls below the threshold after
generalising (slingshots, Thilak et al. 2022) are reported as `collapses` instead, with their
count, median period and the share of post-event evals at the target.

Phases follow Liu et al. 2022, "Towards Understanding Grokking: An Effective Theory of
Representation Learning" (arXiv:2205.10343): comprehension (generalises with little delay),
grokking (generalises long after memorising), memorization (memorises, never generalises) and
confusion (does neither). Their boundary between a short and a long delay is 10^3 steps.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from groktune.events import DEFAULT_PATIENCE, Collapse, clean_series, collapses, first_event, reaches

PHASES = ("comprehension", "grokking", "memorization", "confusion")
DEFAULT_DELAY_BOUNDARY = 1000


@dataclass(frozen=True)
class GrokEvents:
    """Events of one run. Steps are None where the event did not happen."""

    memorized_step: int | None
    """First step train accuracy reached the threshold and held it for `patience` evals."""
    generalized_step: int | None
    """First step val accuracy reached the threshold and held it for `patience` evals."""
    delay: int | None
    """generalized_step - memorized_step (None unless both happened; may be negative)."""
    phase: str
    """comprehension | grokking | memorization | confusion"""
    collapses: tuple[Collapse, ...] = ()
    """Each fall of val accuracy below the threshold after generalised_step (groktune.events.Collapse)."""
    n_collapses: int = 0
    """len(collapses)."""
    collapse_period: float | None = None
    """Median steps between successive collapse starts; None with fewer than 2 collapses."""
    at_target_share: float | None = None
    """Share of the evals from generalized_step on with val accuracy at the threshold; None if
    the run never generalised."""


def sustained_onset(steps, values, *, threshold: float, patience: int = DEFAULT_PATIENCE,
                    mode: str = "max") -> int | None:
    """The first step at which a curve reached `threshold` and held it (groktune.events.first_event).

    Kept under this name for the analysis API; see first_event for Args and Returns.
    """
    return first_event(steps, values, threshold=threshold, patience=patience, mode=mode)


def classify_phase(memorized_step: int | None, generalized_step: int | None, *,
                   delay_boundary: float = DEFAULT_DELAY_BOUNDARY) -> str:
    """The Liu et al. 2022 phase of a run from its two events.

    A run that generalises is "grokking" when it did so at least `delay_boundary` steps after
    memorising, else "comprehension" (also when val accuracy got there first, or train
    accuracy never did: nothing was memorised ahead of generalising).

    Args:
        memorized_step: step train accuracy reached the threshold, or None.
        generalized_step: step val accuracy reached the threshold, or None.
        delay_boundary: the shortest delay, in steps, that counts as grokking.
    Returns:
        One of PHASES.
    """
    if generalized_step is not None:
        if memorized_step is not None and generalized_step - memorized_step >= delay_boundary:
            return "grokking"
        return "comprehension"
    return "memorization" if memorized_step is not None else "confusion"


def detect_grokking(steps, train_acc, val_acc, *, threshold: float = 0.99,
                    patience: int = DEFAULT_PATIENCE,
                    delay_boundary: float = DEFAULT_DELAY_BOUNDARY,
                    train_loss=None, param_norm=None) -> GrokEvents:
    """Memorisation, generalisation, their delay, the phase and the collapses of one run.

    Args:
        steps: optimizer step of each eval (any order, any spacing).
        train_acc: train accuracy at each eval, in [0, 1].
        val_acc: validation accuracy at each eval, in [0, 1].
        threshold: accuracy that counts as reached (0.99 and 0.95 are common).
        patience: evals in a row at the threshold that make an event.
        delay_boundary: steps between memorising and generalising that make it "grokking".
        train_loss, param_norm: optional, aligned with steps; give each collapse its train-loss
            spike and its change in parameter norm.
    Returns:
        GrokEvents (events, delay, phase, collapses and their summaries).
    """
    mem = first_event(steps, train_acc, threshold=threshold, patience=patience)
    gen = first_event(steps, val_acc, threshold=threshold, patience=patience)
    delay = gen - mem if mem is not None and gen is not None else None
    phase = classify_phase(mem, gen, delay_boundary=delay_boundary)
    falls = collapses(steps, val_acc, threshold=threshold, event_step=gen, train_loss=train_loss,
                      param_norm=param_norm)
    starts = [c.step for c in falls]
    period = float(statistics.median(np.diff(starts).tolist())) if len(starts) >= 2 else None
    share = None
    if gen is not None:
        s, v = clean_series(steps, val_acc)
        after = v[s >= gen]
        share = float(np.mean([reaches(x, threshold) for x in after]))  # NaN is not at the target
    return GrokEvents(memorized_step=mem, generalized_step=gen, delay=delay, phase=phase,
                      collapses=falls, n_collapses=len(falls), collapse_period=period,
                      at_target_share=share)
