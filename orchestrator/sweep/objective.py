"""The grokking-speed objective: one number per eval that ASHA, PBT and TPE can minimise.

A trial's outcome is the first step at which val accuracy reached the target and held it for
`patience` evals
(`steps_to_target`). ASHA has to compare trials long before that is known, at fixed steps
(rungs), and many trials at an early rung sit on the memorisation plateau: train accuracy
near 1, val accuracy at chance. Val accuracy as the ASHA metric ranks those trials by noise around
chance and so prunes, at random, trials that would grok a little later — the very trials a
grokking study is looking for (the effect is measured in benchmarks/score_vs_valacc.py).

`grok_score` (lower is better, mode "min"), with B the step budget (train.steps):

* diverged (a non-finite loss or norm): 3B, worse than anything else;
* generalised (groktune.events: val accuracy reached the target and held it for `patience`
  evals, the trainer's own rule): the event step, in [1, B]. It is fixed once the streak has
  formed, so a later dip (a post-grokking slingshot) never throws a grokked trial back above the
  budget, and a single eval at the target is not yet credited. At the end of a trial that grokked
  this is exactly its steps_to_target, so the searcher (TPE) optimises grokking speed itself —
  with val_acc as the objective every grokked trial would end near 1.0 and TPE could not tell a
  fast grokker from a slow one;
* otherwise B * (2 - promise), in (B, 2B], where promise is the larger of two quantised terms:
  - progress = (val_acc - chance) / (target - chance), clipped to [0, 1) and floored to a
    multiple of QUANTUM (0.05): once a trial leaves chance by a quantum it ranks by how far it
    has come;
  - COMING (0.5) when val loss is falling: log(val loss at half the current step / val loss
    now) > FALL (0.03, a 3 % fall), and 0 otherwise (rising or flat).
  The floors are the point. On the memorisation plateau val accuracy sits at chance and differs
  between trials only by eval noise; floored, those trials tie, and ASHA stops a trial only when
  its score is strictly worse than the rung's cut-off, so tied trials are kept instead of being
  pruned at random. The val-loss term splits the plateau in two, by measurement on real curves
  (benchmarks/early_signals.py, benchmarks/README.md "Early signals"): of every signal tried
  (val accuracy fine or floored, val loss, its trend and its ratio to its peak, train accuracy
  and loss, the parameter norm, its trend and its ratio to its peak) the val-loss trend over the
  second half of the run so far ranks trials that have not generalised best by their final steps
  to target at every rung (Spearman 0.56-0.86 on held-out pools), and at chance its sign separates
  them: trials whose val loss still rises (memorising, overfitting) mostly never grok in budget,
  trials whose val loss falls grok, and val loss starts falling before val accuracy leaves
  chance. A binary term (not a graded one) keeps ASHA's ties: every trial with grokking "coming"
  ties at B * 1.5, so a rung stops the trials whose val loss does not fall before any of them
  (a graded term ranks them strictly, and ASHA, cutting two thirds at each rung, then stops most
  would-be grokkers whatever the order). The threshold was chosen by replay: a lower one (val
  loss merely not rising) stops fewer would-be grokkers but spends more compute on trials that
  never grok (benchmarks/README.md "Early signals"). Other rules for "coming" (val loss below
  its peak or below the chance log loss, a lower threshold, "still memorising") and graded terms,
  replayed through Ray's ASHA, all trade would-be grokkers stopped for compute along one line on
  which this rule is the cheapest that keeps the fastest grokker; none stops fewer at its compute
  (benchmarks/rung_frontier.py, benchmarks/README.md "Rung scores").

Chance is 1 / the number of answer classes of the task (tasks.chance_level: p for modular,
120 for s5, the answer vocabulary of a mixture, 0.5 for sparse parity), handed in by the trial
adapter; without it (lm) it is 1 / the length of val_acc_per_class when records carry it, else 0.

So every trial that generalised beats every trial that has not, earlier grokking beats later,
trials that left chance or whose val loss stopped rising beat plateau trials that still
memorise, trials within a tier tie, and diverged trials lose.

One owner of the event: the trainer's StopRule and this ScoreState each fold the evals into an
EventTracker (groktune.events, one rule, so they agree on every curve). Making the trainer report
its event with each record, so that the score only reads it, waits for the population trainer
rewrite of trials/ (one trainer for K members), which owns the record's keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from groktune.events import DEFAULT_PATIENCE, EventTracker
from groktune.layout import losses_finite

QUANTUM = 0.05
DIVERGED_FACTOR = 3.0
COMING = 0.5
"""The promise of a trial whose val loss has stopped rising (module docstring)."""
FALL = 0.03
"""log-ratio by which val loss must have fallen since half the steps for grokking to count as coming."""


def progress(val_acc: float, *, target: float, chance: float) -> float:
    """How far a not-yet-generalised trial has come, in [0, 1 - QUANTUM]; see the module docstring."""
    x = (val_acc - chance) / max(target - chance, 1e-12)
    x = min(max(x, 0.0), 1.0)
    return min(math.floor(x / QUANTUM + 1e-9) * QUANTUM, 1.0 - QUANTUM)


def loss_trend(steps_losses: list, step: int, val_loss: float) -> float | None:
    """log(val loss at the last eval at or before step / 2) - log(val loss now): > 0 when val
    loss falls. None when no eval lies at or before step / 2 (too early to tell) or either loss
    is not a positive finite number.

    Args:
        steps_losses: [step, val_loss] of earlier evals, in step order (may include this one).
        step, val_loss: this eval.
    """
    half = None
    for s, v in steps_losses:
        if s > step / 2:
            break
        half = v
    if half is None or not (half > 0 and val_loss > 0 and math.isfinite(half) and math.isfinite(val_loss)):
        return None
    return math.log(half / val_loss)


def coming(trend: float | None) -> bool:
    """Whether val loss is falling (loss_trend above FALL); None (too early to tell): no."""
    return trend is not None and trend > FALL


def grok_score(
    *,
    budget: int,
    val_acc: float,
    target: float,
    chance: float = 0.0,
    event: int | None = None,
    finite: bool = True,
    val_loss_trend: float | None = None,
) -> float:
    """The score of one eval (lower is better). Pure; see the module docstring for the reasoning.

    Args:
        budget: the step budget B (train.steps).
        val_acc: this eval's validation accuracy.
        target: train.target_val_acc.
        chance: val accuracy of guessing (1 / answer classes).
        event: the generalisation event so far (groktune.events.EventTracker.event), or None.
        finite: False when the losses or norms are NaN/inf (the trial diverged).
        val_loss_trend: loss_trend at this eval (> 0: val loss falls), or None when unknown.
    Returns:
        the event step when there is one, B * (2 - promise) otherwise, 3B when diverged.
    """
    if not finite or not math.isfinite(val_acc):
        return DIVERGED_FACTOR * budget
    if event is not None:
        return float(min(event, budget))
    promise = max(progress(val_acc, target=target, chance=chance), COMING if coming(val_loss_trend) else 0.0)
    return budget * (2.0 - promise)


@dataclass
class ScoreState:
    """What the score needs from earlier evals; small, saved with every trial checkpoint.

    chance None: taken from the records' val_acc_per_class (1 / classes) when they carry it, else 0.
    patience: evals in a row at the target that make the event (groktune.events.event_patience).
    """

    chance: float | None = None
    patience: int = DEFAULT_PATIENCE
    tracked: dict = field(default_factory=dict)
    """The event tracker's state_dict (the tracker is rebuilt with the target of each update)."""
    val_losses: list = field(default_factory=list)
    """[step, val_loss] of the evals that loss_trend may still look back to (step >= now / 2)."""

    @property
    def event(self) -> int | None:
        """The generalisation event so far, or None."""
        step = self.tracked.get("event", -1)
        return None if step is None or step < 0 else int(step)

    def update(self, record: dict, target: float, budget: int) -> float:
        """Fold in one eval record (step, val_acc, *_loss, param_norm); return its score."""
        finite = losses_finite(record)
        per_class = record.get("val_acc_per_class")
        if self.chance is None and isinstance(per_class, list) and per_class:
            self.chance = 1.0 / len(per_class)  # classes = answer tokens
        if finite:  # as the trainer's StopRule: a diverged eval ends the run before it is counted
            tracker = EventTracker(target, self.patience)
            tracker.load_state_dict(self.tracked)
            tracker.update(int(record["step"]), float(record["val_acc"]))
            self.tracked = tracker.state_dict()
        trend = self._trend(record) if finite else None
        return grok_score(budget=budget, val_acc=float(record["val_acc"]), target=target,
                          chance=self.chance or 0.0, event=self.event, finite=finite, val_loss_trend=trend)

    def _trend(self, record: dict) -> float | None:
        """loss_trend at this eval, keeping only the history it can still need."""
        step, loss = int(record["step"]), record.get("val_loss")
        if loss is None:
            return None
        self.val_losses.append([step, float(loss)])
        trend = loss_trend(self.val_losses, step, float(loss))
        # Later evals look back to >= step / 2: keep the last eval at or before that, and after.
        keep = max((i for i, (s, _) in enumerate(self.val_losses) if s <= step / 2), default=0)
        del self.val_losses[:keep]
        return trend

    def state_dict(self) -> dict:
        return {"chance": self.chance, "patience": self.patience, "tracked": dict(self.tracked),
                "val_losses": [list(p) for p in self.val_losses]}

    @classmethod
    def from_dict(cls, data: dict, **fixed) -> "ScoreState":
        """A state from state_dict(); `fixed` (chance, patience from the trial config) wins over it."""
        known = {k: data[k] for k in ("chance", "patience", "tracked", "val_losses") if k in data}
        known.update({k: v for k, v in fixed.items() if v is not None})
        return cls(**known)


def scores_for_curve(records: list[dict], target: float, budget: int, *, chance: float | None = None,
                     patience: int = DEFAULT_PATIENCE) -> list[float]:
    """The score after each record of one trial's curve (used by the benchmark and tests)."""
    state = ScoreState(chance=chance, patience=patience)
    return [state.update(r, target, budget) for r in records]


def rung_signals(records: list[dict], *, chance: float, target: float) -> dict:
    """The score's own terms at the last of `records` (benchmarks/early_signals.py ranks them
    beside the other candidates), oriented lower = sooner: -promise and -loss_trend."""
    steps_losses = [[int(r["step"]), float(r["val_loss"])] for r in records]
    last = records[-1]
    trend = loss_trend(steps_losses, int(last["step"]), float(last["val_loss"]))
    trend = 0.0 if trend is None else trend
    promise = max(progress(float(last["val_acc"]), target=target, chance=chance), COMING if coming(trend) else 0.0)
    return {"val_loss_trend (score)": -trend, "promise (score)": -promise}


__all__ = ["COMING", "FALL", "QUANTUM", "ScoreState", "coming", "grok_score", "loss_trend", "progress",
           "rung_signals", "scores_for_curve"]

