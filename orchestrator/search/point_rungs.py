"""ASHA's rungs for the points of packed trials (search.pack with scheduler asha): a point below
its rung's cut-off stops inside its pack, the rest of the pack goes on.

    rungs = PointRungs(str(sweep / SCHEDULER_STATE), metric="grok_score", mode="min", max_t=2000,
                       grace_period=100, reduction_factor=3)
    if rungs.stops("1a2b3_00000_p4", record):   # in the pack's trainer, at every eval of a point
        ...the point leaves the population as pruned...

Ray's scheduler sees one trial per pack, so it cannot cut one point; the pack's trainable asks
this table instead (orchestrator.sweep.adapter.pack_trainable, through trials.train's `cut`). The
table is orchestrator.search.durable_asha.DurableASHA itself, the scheduler an unpacked ASHA
sweep runs: the same rungs (grace_period * reduction_factor^k up to the budget), the same
cut-off (Ray's _Bracket: the (1 - 1/rf) quantile of the values recorded at the rung, over every
point that reached it, in any pack), the same persisted state file (scheduler.state in the sweep
folder, so it survives a driver kill), the same rule never to stop at the budget, and the same
memory of stop decisions (a point decided stopped whose pack resumes from an older checkpoint is
stopped again at its first rung). Each judgement loads the file, decides and saves it under an
exclusive lock (fcntl), so packs training at once on one machine see each other's points;
several nodes need the sweep folder on a shared file system (as the ledger does for replays).
The file is touched only when a point reaches a rung it was not judged at in this process.

With `brackets` > 1 (scheduler hyperband, orchestrator.search.algos) the table is asynchronous
HyperBand, as Li et al. define it beside ASHA ("A System for Massively Parallel Hyperparameter
Tuning", 2020) and Ray's AsyncHyperBandScheduler runs it: bracket s has its first rung at
grace_period * reduction_factor^s, and each point runs in one bracket, drawn with Ray's weights
(brackets with more rungs are likelier) from a generator seeded by the point's id, so every pack
and every later driver draws the same bracket for it. Ray's synchronous HyperBandScheduler, which
an unpacked sweep runs, pauses whole trials until a bracket fills; a point inside a pack cannot
wait for points in other packs, so packs get the asynchronous form.
"""

from __future__ import annotations

import fcntl
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from ray.tune.schedulers import TrialScheduler

from groktune.layout import TIME_ATTR
from orchestrator.search.durable_asha import DurableASHA


@dataclass
class _Point:
    """What _Bracket.on_result reads of a trial: its id."""

    trial_id: str


@dataclass
class PointRungs:
    """ASHA over points (see module doc); picklable (it travels to every pack's worker)."""

    state_file: str
    metric: str
    mode: str
    max_t: int
    grace_period: int
    reduction_factor: float
    brackets: int = 1
    _judged: dict = field(default_factory=dict, repr=False)  # point id -> highest milestone judged here
    _milestones: dict = field(default_factory=dict, repr=False)  # bracket -> its rungs' steps

    def milestones(self, bracket: int = 0) -> list[float]:
        """The rungs' steps of `bracket`, ascending."""
        if bracket not in self._milestones:
            self._milestones[bracket] = sorted(m for m, _ in self._scheduler()._brackets[bracket]._rungs)
        return self._milestones[bracket]

    def bracket(self, point_id: str) -> int:
        """The bracket the point runs in: Ray's draw (weights e^(rungs - most rungs)), seeded by its id."""
        if self.brackets == 1:
            return 0
        sizes = [len(self.milestones(b)) for b in range(self.brackets)]
        weights = [math.exp(n - max(sizes)) for n in sizes]
        return random.Random(point_id).choices(range(self.brackets), weights)[0]

    def stops(self, point_id: str, record: dict) -> bool:
        """Whether the point whose eval `record` is (its TIME_ATTR and metric) stops here."""
        step = int(record[TIME_ATTR])
        bracket = self.bracket(point_id)
        due = [m for m in self.milestones(bracket) if m <= step]
        if not due or due[-1] <= self._judged.get(point_id, -1):
            return False  # no rung reached since its last judgement in this process
        self._judged[point_id] = due[-1]
        lock = Path(self.state_file).with_name(f".{Path(self.state_file).name}.lock")  # hidden: not a result
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            scheduler = self._scheduler()
            point = _Point(point_id)
            scheduler.add_to_bracket(point, bracket)  # loads the rungs the other packs' points wrote
            return scheduler.on_trial_result(None, point, dict(record)) == TrialScheduler.STOP

    def _scheduler(self) -> DurableASHA:
        return DurableASHA(self.state_file, time_attr=TIME_ATTR, metric=self.metric, mode=self.mode,
                           max_t=self.max_t, grace_period=min(self.grace_period, self.max_t),
                           reduction_factor=self.reduction_factor, brackets=self.brackets, stop_last_trials=False)


def hyperband_brackets(budget: int, grace_period: int, reduction_factor: float) -> int:
    """HyperBand's bracket count: one per first rung grace_period * reduction_factor^s within the budget."""
    grace, n = min(grace_period, budget), 1
    while grace * reduction_factor ** n <= budget:
        n += 1
    return n


__all__ = ["PointRungs", "hyperband_brackets"]
