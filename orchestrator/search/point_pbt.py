"""PBT per point of packed trials (search.pack > 1 with algorithm and scheduler pbt).

A pack's points are one PBT population inside their Ray trial: at the first eval at or after
every perturbation_interval steps, the live points are ranked by the search metric; each point
in the bottom quantile continues from the state of a point drawn from the top quantile (exploit:
weights, optimizer moments, filters, stop rule and score, as Ray's PBT restores a trial from
another's checkpoint) with that point's values explored (each searched key resampled from its
distribution with probability 0.25, else a range scaled by 0.8 or 1.2 and clipped to it, a list
moved to a neighbouring value). Ray's PopulationBasedTraining does the same across unpacked
trials; its defaults are kept (quantile_fraction 0.25, resample_probability 0.25).

    pbt = PointPBT(search.params, search.perturbation_interval, metric, mode, seed)
    moves = pbt.exploit(step, records, points, pack_key)   # {loser: (winner, its new point)}

Only the points' own keys are explored: a pack's points share their structural keys
(trials.config.STRUCTURAL), and a clone keeps them. Every decision is drawn from a generator
seeded by (seed, the pack's drawn points, step), so a pack resumed from a checkpoint makes the
same moves again, and so does the same sweep run again.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from groktune.space import PER_VALUE, Dist
from trials.config import is_structural

QUANTILE = 0.25
"""Fraction of the live points that exploit (bottom) and that are exploited (top): Ray's default."""
RESAMPLE_PROBABILITY = 0.25
"""Chance an explored key is drawn anew from its distribution rather than perturbed: Ray's default."""
FACTORS = (0.8, 1.2)
"""A perturbed range value is scaled by one of these (Ray's perturbation_factors)."""


class PointPBT:
    """Exploit and explore among the live points of one pack.

    Args:
        dists: the parsed search space (SearchConfig.params); its structural keys are held.
        interval: optimizer steps between rounds (search.perturbation_interval).
        metric, mode: what ranks the points (search.metric, min or max).
        seed: the sweep's seed.
    """

    def __init__(self, dists: dict[str, Dist], interval: int, metric: str, mode: str, seed: int):
        self.dists = {k: d for k, d in dists.items() if not is_structural(k)}
        self.interval, self.metric, self.mode, self.seed = interval, metric, mode, seed

    def due(self, step: int, last_round: int) -> bool:
        """Whether an eval at `step` holds a round, the last one having been at `last_round` (0: none)."""
        return step // self.interval > last_round // self.interval

    def exploit(self, step: int, records: list[dict], points: dict[int, dict], pack_key: str) -> dict[int, tuple[int, dict]]:
        """The moves of one round: {member that exploits: (member it copies, its new point)}.

        Args:
            step: the eval's step.
            records: the live points' records (each with "member" and the metric).
            points: member -> its current point (dotted keys, "seed" among them).
            pack_key: names the pack (its drawn points as JSON): seeds the draws with the step.
        """
        rng = np.random.default_rng([self.seed, zlib.crc32(pack_key.encode()), step])
        n = len(records)
        k = min(int(math.ceil(n * QUANTILE)), n // 2)
        if k == 0:
            return {}
        order = rng.permutation(n)  # ties (points at chance share a score) broken at random
        ranked = sorted((records[i] for i in order), key=self._badness)
        losers, winners = ranked[-k:], ranked[:k]
        moves = {}
        for loser in losers:
            winner = winners[int(rng.integers(k))]["member"]
            moves[int(loser["member"])] = (int(winner), self.explore(points[winner], rng))
        return moves

    def explore(self, point: dict, rng: np.random.Generator) -> dict:
        """`point` with every searched key of its own explored (see the module docstring)."""
        new = dict(point)
        for key, d in self.dists.items():
            if key in point:
                new[key] = _explore(d, point[key], rng)
        return new

    def _badness(self, record: dict) -> float:
        value = record.get(self.metric)
        if not isinstance(value, (int, float)) or value != value:
            return math.inf  # no score (NaN): ranked last
        return float(value) if self.mode == "min" else -float(value)


def _explore(d: Dist, value: Any, rng: np.random.Generator) -> Any:
    """One explored value of distribution d, from `value` (a list's value, or a number)."""
    if d.discrete:
        values = list(d.values)
        if rng.random() < RESAMPLE_PROBABILITY or value not in values:
            return values[int(rng.integers(len(values)))]
        i = values.index(value) + (1 if rng.random() < 0.5 else -1)
        return values[min(max(i, 0), len(values) - 1)]
    low, high = (0.0, 1.0) if d.kind in PER_VALUE else (d.low, d.high)  # PER_VALUE: a position in the range
    if rng.random() < RESAMPLE_PROBABILITY:
        if d.log and low > 0:
            new = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            new = rng.uniform(low, high)
    else:
        new = float(value) * FACTORS[int(rng.integers(2))]
    new = min(max(new, low), high)
    if d.kind == "randint":
        return int(min(max(round(new), low), high - 1))  # randint's high is exclusive
    return float(new)


__all__ = ["FACTORS", "QUANTILE", "RESAMPLE_PROBABILITY", "PointPBT"]
