"""TPE (any Optuna sampler) over packed trials (search.pack): one Ray trial asks Optuna for a
batch of points, and each point is told its own result when the pack closes.

    searcher = PackedOptunaSearch(space=to_ray(search.params), pack=8, seeds=[0, 1], num_points=32,
                                  sampler=TPESampler(seed=0), metric="grok_score", mode="min")
    # suggest(trial_id) -> {"pack": [point, ...]}: up to pack // len(seeds) Optuna trials, each once per seed

- suggest: a batched ask. Up to `pack // len(seeds)` (at least 1) Optuna trials are asked at
  once (TPE then samples each from the trials told so far, as Optuna's own batched
  optimisation does); every one is trained once per seed of search.seeds, as Ray's Repeater
  does for unpacked TPE, and together they are one pack. After `num_points` Optuna trials
  the searcher is FINISHED.
- on_trial_result: each point's own grok_score (the metric) goes to its own Optuna trial as an
  intermediate value at the optimizer step (one seed only: with several, a trial's seeds are
  averaged at the end, as the Repeater does).
- on_trial_complete: each Optuna trial is told once: PRUNED when one of its points was cut at a
  rung (orchestrator.search.point_rungs; its last value reported first), FAIL when a point has
  no outcome (the pack errored) or a value that is not a number, else COMPLETE with the mean of
  its points' metric over the seeds. A point's outcome is the one it stopped with
  (orchestrator.sweep.packing.DONE_KEY), else the closing report's (OUTCOMES_KEY).

Points that differ in a structural key (trials.config.STRUCTURAL: model shape, batch size, task,
optimizer family) never share a pack: one batched ask is split by `key` (the point's structural
values), the first group becomes this Ray trial's pack and the others wait, in ask order, for the
next suggestions; a new batch is asked only when none waits. An Optuna trial's seeds always share
its pack (a seed is not structural).
The searcher's state (the study included, when in memory) is pickled into Tune's searcher
snapshot, as Ray's OptunaSearch does; a resumed driver tells the packs that finish after it.
Several objectives are refused with packs (search.config).
"""

from __future__ import annotations

import json
import logging
import math
import pickle
from typing import Any, Callable

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from groktune.layout import TIME_ATTR
from orchestrator.sweep.packing import DONE_KEY, OUTCOMES_KEY, PACK_KEY, POINTS_KEY

logger = logging.getLogger(__name__)


class PackedOptunaSearch(Searcher):
    """A Tune Searcher whose every suggestion is a pack of points, each its own Optuna trial."""

    def __init__(self, space: dict, pack: int, seeds: list[int], num_points: int, sampler: Any,
                 metric: str, mode: str, storage: Any = None, study_name: str | None = None,
                 key: Callable[[dict], Any] | None = None):
        super().__init__(metric=metric, mode=mode)
        self._key = key or (lambda point: None)  # None: every point fits one population
        self._dists = OptunaSearch.convert_search_space(space)
        self._seeds = list(seeds)
        self._per_pack = max(1, pack // len(self._seeds))
        self._num_points = num_points
        self._study = optuna.create_study(storage=storage, sampler=sampler, pruner=optuna.pruners.NopPruner(),
                                          study_name=study_name, load_if_exists=True,
                                          direction="minimize" if mode == "min" else "maximize")
        self._asked = 0
        self._packs: dict[str, list[int]] = {}  # Ray trial id -> each member's Optuna trial number
        self._trials: dict[int, Any] = {}  # Optuna trial number -> its FrozenTrial handle (ask's Trial)
        self._reported: dict[tuple[int, int], int] = {}  # (Optuna trial, member) -> last step reported
        self._ended: dict[str, dict[int, dict]] = {}  # Ray trial id -> member -> outcome (DONE_KEY)
        self._last: dict[str, dict[int, float]] = {}  # Ray trial id -> member -> its last metric value
        self._told: set[int] = set()
        self._waiting: list[tuple[list[dict], list[int]]] = []  # asked packs not yet given a Ray trial

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the space, metric and mode are this searcher's own (search.config)

    def suggest(self, trial_id: str) -> dict | None:
        if not self._waiting:
            if self._asked >= self._num_points:
                return Searcher.FINISHED
            self._waiting = self._ask()
        points, numbers = self._waiting.pop(0)
        self._packs[trial_id] = numbers
        return {PACK_KEY: points}

    def _ask(self) -> list[tuple[list[dict], list[int]]]:
        """One batched ask, as packs: (points, each point's Optuna trial number), one per structure."""
        n = min(self._per_pack, self._num_points - self._asked)
        asked = [self._study.ask(fixed_distributions=self._dists) for _ in range(n)]
        self._asked += n
        groups: dict[str, tuple[list[dict], list[int]]] = {}
        for trial in asked:
            self._trials[trial.number] = trial
            points, numbers = groups.setdefault(json.dumps(self._key(trial.params), sort_keys=True, default=str),
                                                ([], []))
            for seed in self._seeds:
                points.append({**trial.params, **({"seed": seed} if len(self._seeds) > 1 else {})})
                numbers.append(trial.number)
        return list(groups.values())

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        numbers = self._packs.get(trial_id)
        if numbers is None:
            return
        for record in json.loads(result.get(POINTS_KEY) or "[]"):
            j, value = int(record["member"]), record.get(self._metric)
            if _finite(value):
                self._last.setdefault(trial_id, {})[j] = float(value)
                step = int(record[TIME_ATTR])
                if len(self._seeds) == 1 and step > self._reported.get((numbers[j], j), -1):
                    self._trials[numbers[j]].report(float(value), step)
                    self._reported[(numbers[j], j)] = step
        for outcome in json.loads(result.get(DONE_KEY) or "[]"):
            self._ended.setdefault(trial_id, {}).setdefault(int(outcome["member"]), dict(outcome))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        numbers = self._packs.get(trial_id)
        if numbers is None:
            return
        if result:
            self.on_trial_result(trial_id, result)  # its last eval, points that stopped at it
        outcomes = dict(self._ended.get(trial_id, {}))
        closing = json.loads((result or {}).get(OUTCOMES_KEY) or "null") if not error else None
        for j, outcome in enumerate(closing or []):
            outcomes.setdefault(j, outcome)
        for number in dict.fromkeys(numbers):
            members = [j for j, n in enumerate(numbers) if n == number]
            self._tell(number, [outcomes.get(j) for j in members],
                       [self._value(trial_id, j, outcomes.get(j)) for j in members])

    def _value(self, trial_id: str, j: int, outcome: dict | None) -> float | None:
        """A point's metric: its outcome's (the closing report's last scalars), else its last eval's."""
        if outcome is not None and _finite(outcome.get(self._metric)):
            return float(outcome[self._metric])
        return self._last.get(trial_id, {}).get(j)

    def _tell(self, number: int, outcomes: list[dict | None], values: list[float | None]) -> None:
        if number in self._told:
            return
        self._told.add(number)
        trial = self._trials[number]
        try:
            if any(o is not None and o.get("status") == "pruned" for o in outcomes):
                self._study.tell(trial, state=TrialState.PRUNED)
            elif any(o is None for o in outcomes) or not all(_finite(v) for v in values):
                self._study.tell(trial, state=TrialState.FAIL)
            else:
                self._study.tell(trial, sum(values) / len(values))
        except Exception as exc:  # noqa: BLE001 - as Ray's own tell: a bad value must not end the sweep
            logger.warning(exc)

    @property
    def study(self):
        """The Optuna study (tests and the report read it)."""
        return self._study

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__.copy(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))  # noqa: S301 - Tune's own snapshot in the user's sweep folder


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["PackedOptunaSearch"]
