"""What a population's evals and result say, as plain data: trials.train reports these.

    evaluation.median_record()        # one record for K members, train()'s keys
    result.median_steps_to_target     # median over members, non-grokked members as +inf
    result.status                     # the median member's status

Pure: records and TrainResults in, values out. A sweep trial of K seeds (orchestrator.sweep.adapter)
reports the median record at every eval and the result's status and median at the end.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from trials.loop import TrainResult

OUTCOME_ORDER = ("grokked", "budget", "early_stopped", "diverged")
"""Member outcomes from best to worst, for the population's status (PopulationResult.status)."""
EVAL_KEYS = ("step", "epoch", "lr", "wall_time")
"""Record keys that describe the eval rather than a member's state (median_record takes them from
the members that trained to it: a stopped member's lr or epoch is from an earlier step)."""


@dataclass
class PopulationResult:
    members: list[TrainResult]
    """One TrainResult per config, in the order given."""
    median_steps_to_target: float | None
    """Median over members of steps_to_target, a member that did not grok counting as infinity;
    None when that median is infinite (at least half did not grok)."""
    grokked_fraction: float
    wall_time: float

    @property
    def status(self) -> str:
        """The median member's status, members ranked grokked (earliest first) < budget <
        early_stopped < diverged; the upper median for even K, so the status is grokked exactly
        when median_steps_to_target is not None."""
        ranked = sorted(self.members, key=lambda r: (OUTCOME_ORDER.index(r.status), r.steps_to_target or 0))
        return ranked[len(ranked) // 2].status


@dataclass
class PopulationEval:
    """What report(evaluation, save) gets at each eval of train_population."""

    step: int
    records: list[dict]
    """This eval's records, one per member that trained to it: train()'s keys plus "member"."""
    latest: list[dict]
    """Every member's latest record, by member: a member that stopped keeps its last one."""
    grokked_fraction: float
    """Members grokked so far (with an event by groktune.events' rule, whether or not they stopped
    at it) / K."""
    ended: dict[int, TrainResult] = field(default_factory=dict)
    """Members that stopped at this eval (their own stop rule, or cut by the caller's `cut`): member
    index -> its TrainResult. Members still live when the budget runs out are not in it."""

    def median_record(self) -> dict:
        """One record for the whole population, with train()'s keys.

        step, epoch, lr and wall_time are this eval's (the median over `records`); every other
        metric is the median over all members' latest records, so a member that stopped counts
        with its last values; lists (val_acc_per_class) element by element. NaN counts as +inf: a
        diverged member's loss ranks above every finite one, and once half the members diverged
        the median loss is infinite, which the sweep's score treats as diverged.
        """
        out: dict[str, Any] = {"step": self.step}
        for key, value in self.records[0].items():
            if key in ("step", "member"):
                continue
            pool = [r[key] for r in (self.records if key in EVAL_KEYS else self.latest)]
            out[key] = [_median(col) for col in zip(*pool)] if isinstance(value, list) else _median(pool)
        return out


class PopulationReporter(Protocol):
    def __call__(self, evaluation: PopulationEval, save: Callable[[str | Path], Path] | None = None) -> None: ...


def _median(values) -> float:
    return float(statistics.median([math.inf if math.isnan(v) else v for v in values]))


def median_steps_to_target(results: list[TrainResult]) -> float | None:
    """Median steps to target with non-grokked members as +inf; None if the median is +inf."""
    values = [r.steps_to_target if r.status == "grokked" and r.steps_to_target is not None else math.inf
              for r in results]
    med = statistics.median(values) if values else math.inf
    return None if math.isinf(med) else float(med)


__all__ = ["EVAL_KEYS", "OUTCOME_ORDER", "PopulationEval", "PopulationReporter", "PopulationResult",
           "median_steps_to_target"]
