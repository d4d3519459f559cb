"""When to evaluate and when to stop: pure functions and a small stateful rule."""

from __future__ import annotations

import math

from groktune.events import EVENT_STEP, EventTracker, event_patience
from groktune.layout import losses_finite
from trials.config import TrainConfig


def eval_steps(cfg: TrainConfig, total: int) -> list[int]:
    """Steps (counts of optimizer steps done) after which to evaluate, sorted.

    Dense early (step 1, then every `eval_dense_every` up to `eval_dense_until`), then
    log-spaced by `eval_log_ratio` (openai/grok evaluates at x1.02 steps), plus every
    `eval_every` steps and the final step. Grokking happens on a log time axis, so the
    log-spaced part keeps the onset resolved at any budget for a bounded number of evals.
    """
    steps = {1, total}
    steps.update(range(cfg.eval_dense_every, min(cfg.eval_dense_until, total) + 1, cfg.eval_dense_every))
    s = float(max(cfg.eval_dense_until, 1))
    while s < total:
        steps.add(int(math.ceil(s)))
        s *= cfg.eval_log_ratio
    steps.update(range(cfg.eval_every, total + 1, cfg.eval_every))
    return sorted(x for x in steps if 1 <= x <= total)


class StopRule:
    """Tracks evals and says when training ends.

    Grokked: val accuracy reached the target and held it for `patience` consecutive evals
    (groktune.events, the one event rule); steps_to_target (`event`) is the first step of that
    streak and nothing later moves it. patience 0 means "do not stop at the target": the event
    is then still found with events.DEFAULT_PATIENCE and the run still ends "grokked" if it had
    one. Diverged: a non-finite loss. Early stop: val loss not improved for
    `early_stop_patience` evals.
    """

    def __init__(self, target: float, patience: int, early_stop_patience: int = 0):
        self.target, self.patience, self.early_stop_patience = target, int(patience), int(early_stop_patience)
        self.tracker = EventTracker(target, event_patience(self.patience))
        self.best_val_loss = math.inf
        self.evals_since_best = 0

    @property
    def event(self) -> int | None:
        """steps_to_target: the step val accuracy reached the target and held it, or None."""
        return self.tracker.event

    def update(self, step: int, val_acc: float, val_loss: float, finite: bool) -> str | None:
        """Record one eval; return "grokked", "diverged", "early_stopped" or None (go on)."""
        if not finite:
            return "diverged"
        self.tracker.update(step, val_acc)
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.evals_since_best = val_loss, 0
        else:
            self.evals_since_best += 1
        if self.patience and self.event is not None:
            return "grokked"
        if self.early_stop_patience and self.evals_since_best >= self.early_stop_patience:
            return "early_stopped"
        return None

    def fold(self, record: dict) -> str | None:
        """update() with one eval record (step, val_acc, val_loss and the losses)."""
        return self.update(int(record["step"]), float(record["val_acc"]), float(record.get("val_loss", 0.0)),
                           losses_finite(record))

    def facts(self) -> dict:
        """The event facts the trainer writes into the eval record just folded in: EVENT_STEP
        (groktune.events), the event so far or None. The sweep's score reads them from the
        record; nothing else computes the event of a running trial."""
        return {EVENT_STEP: self.event}

    def final_status(self, stopped: str | None) -> str:
        """Status at the end: a stop reason, or grokked/budget when the step budget ran out."""
        if stopped:
            return stopped
        return "grokked" if self.event is not None else "budget"

    def state_dict(self) -> dict:
        return {**self.tracker.state_dict(), "best_val_loss": self.best_val_loss,
                "evals_since_best": self.evals_since_best}

    def load_state_dict(self, state: dict) -> None:
        self.tracker.load_state_dict(state)
        self.best_val_loss = float(state["best_val_loss"])
        self.evals_since_best = int(state["evals_since_best"])


def replay_facts(records: list[dict], target: float, patience: int) -> list[dict]:
    """Saved records (in step order) with the event facts a StopRule writes, for curves saved
    without them (benchmark pools, fixtures): each record that lacks EVENT_STEP gets it from one
    StopRule folded over the whole curve, as the trainer would have reported it.

    Args:
        records: eval records with step, val_acc, val_loss and the losses (losses_finite).
        target: train.target_val_acc; patience: train.target_patience (0: the default patience).
    Returns:
        New dicts, the input's keys plus EVENT_STEP where it was missing.
    """
    rule, out = StopRule(target, patience), []
    for r in records:
        rule.fold(r)
        out.append({**rule.facts(), **r})
    return out
