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
* otherwise B * (2 - progress), in (B, 2B], where progress = (val_acc - chance) /
  (target - chance), clipped to [0, 1) and floored to a multiple of QUANTUM (0.05). The floor
  is the point: on the memorisation plateau val accuracy sits at chance and differs between
  trials only by eval noise (+-0.01 on a few hundred examples); floored, those trials tie, and
  ASHA stops a trial only when its score is strictly worse than the rung's cut-off, so tied
  plateau trials are kept instead of being pruned at random. Once a trial leaves chance by a
  quantum it ranks by how far it has come.

Terms tried and dropped (benchmarks/README.md, "Sweep objective"): the first version added
0.25 x train accuracy ("memorising comes first") and 0.15 x the shrinkage of the weight norm from
its peak (the "clean-up" phase of Nanda et al. 2023). On the benchmark curves both hurt or did
nothing: across configs, fast memorisation mostly means a small train fraction, which groks
late or never, and under AdamW at these budgets the weight norm kept growing through grokking.

Chance is 1 / the number of answer classes of the task (tasks.chance_level: p for modular,
120 for s5, the answer vocabulary of a mixture, 0.5 for sparse parity), handed in by the trial
adapter; without it (lm) it is 1 / the length of val_acc_per_class when records carry it, else 0.

So every trial that generalised beats every trial that has not, earlier grokking beats later,
trials that left chance beat plateau trials, plateau trials tie, and diverged trials lose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from groktune.events import DEFAULT_PATIENCE, EventTracker
from groktune.layout import losses_finite

QUANTUM = 0.05
DIVERGED_FACTOR = 3.0


def progress(val_acc: float, *, target: float, chance: float) -> float:
    """How far a not-yet-generalised trial has come, in [0, 1 - QUANTUM]; see the module docstring."""
    x = (val_acc - chance) / max(target - chance, 1e-12)
    x = min(max(x, 0.0), 1.0)
    return min(math.floor(x / QUANTUM + 1e-9) * QUANTUM, 1.0 - QUANTUM)


def grok_score(
    *,
    budget: int,
    val_acc: float,
    target: float,
    chance: float = 0.0,
    event: int | None = None,
    finite: bool = True,
) -> float:
    """The score of one eval (lower is better). Pure; see the module docstring for the reasoning.

    Args:
        budget: the step budget B (train.steps).
        val_acc: this eval's validation accuracy.
        target: train.target_val_acc.
        chance: val accuracy of guessing (1 / answer classes).
        event: the generalisation event so far (groktune.events.EventTracker.event), or None.
        finite: False when the losses or norms are NaN/inf (the trial diverged).
    Returns:
        the event step when there is one, B * (2 - progress) otherwise, 3B when diverged.
    """
    if not finite or not math.isfinite(val_acc):
        return DIVERGED_FACTOR * budget
    if event is not None:
        return float(min(event, budget))
    return budget * (2.0 - progress(val_acc, target=target, chance=chance))


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
        return grok_score(budget=budget, val_acc=float(record["val_acc"]), target=target,
                          chance=self.chance or 0.0, event=self.event, finite=finite)

    def state_dict(self) -> dict:
        return {"chance": self.chance, "patience": self.patience, "tracked": dict(self.tracked)}

    @classmethod
    def from_dict(cls, data: dict, **fixed) -> "ScoreState":
        """A state from state_dict(); `fixed` (chance, patience from the trial config) wins over it."""
        known = {k: data[k] for k in ("chance", "patience", "tracked") if k in data}
        known.update({k: v for k, v in fixed.items() if v is not None})
        return cls(**known)


def scores_for_curve(records: list[dict], target: float, budget: int, *, chance: float | None = None,
                     patience: int = DEFAULT_PATIENCE) -> list[float]:
    """The score after each record of one trial's curve (used by the benchmark and tests)."""
    state = ScoreState(chance=chance, patience=patience)
    return [state.update(r, target, budget) for r in records]


__all__ = ["QUANTUM", "ScoreState", "grok_score", "progress", "scores_for_curve"]
