"""PBT per point of packed trials (orchestrator.search.point_pbt): who exploits whom, what is
explored and what is held, on plain records. The trainer's side (a clone continues exactly as
its source resumed under the new config) is tests/trials/test_population.py; a real packed PBT
sweep is in tests/orchestrator/test_packing.py (full tier, with a driver kill)."""

import math

import numpy as np
import pytest

from groktune.space import parse_dist
from orchestrator.search.point_pbt import FACTORS, PointPBT, _explore

SPACE = {
    "optim.lr": parse_dist("optim.lr", {"loguniform": [1e-4, 1e-2]}),
    "optim.weight_decay": parse_dist("optim.weight_decay", {"uniform": [0.0, 2.0]}),
    "optim.warmup_steps": parse_dist("optim.warmup_steps", {"choice": [0, 10, 50, 100]}),
    "train.batch_size": parse_dist("train.batch_size", {"choice": [32, 64]}),  # structural: held
}


def points(n: int) -> dict[int, dict]:
    return {j: {"optim.lr": 1e-3 * (1 + j % 5), "optim.weight_decay": 0.1 * j, "optim.warmup_steps": 10,
                "train.batch_size": 64, "seed": j} for j in range(n)}


def records(scores: list[float], step: int = 200) -> list[dict]:
    return [{"member": j, "step": step, "grok_score": s} for j, s in enumerate(scores)]


def test_the_bottom_quarter_copies_a_top_quarter_point_with_its_own_keys_explored_and_structure_held():
    pbt = PointPBT(SPACE, 200, "grok_score", "min", seed=0)
    scores = [0.5, 0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.6]  # best: 1, 5; worst: 2, 4
    moves = pbt.exploit(200, records(scores), points(8), "pack_a")
    assert set(moves) == {2, 4}
    have = points(8)
    for loser, (winner, new) in moves.items():
        assert winner in (1, 5)
        assert new["seed"] == have[winner]["seed"] and new["train.batch_size"] == 64  # not searched / structural
        assert 1e-4 <= new["optim.lr"] <= 1e-2 and 0.0 <= new["optim.weight_decay"] <= 2.0
        assert new["optim.warmup_steps"] in (0, 10, 50, 100)
        assert new["optim.lr"] != have[winner]["optim.lr"]  # every searched key is explored
    # mode max ranks the other way round
    flipped = PointPBT(SPACE, 200, "grok_score", "max", seed=0).exploit(200, records(scores), points(8), "pack_a")
    assert set(flipped) == {1, 5} and {w for w, _ in flipped.values()} <= {2, 4}


def test_rounds_are_due_once_per_interval_and_replay_the_same_moves():
    pbt = PointPBT(SPACE, 200, "grok_score", "min", seed=3)
    assert not pbt.due(150, 0) and pbt.due(210, 0) and not pbt.due(390, 210) and pbt.due(400, 210)
    scores = [0.4, 0.4, 0.4, 0.4, 0.1, 0.9]  # ties: broken by the seeded draw
    first = pbt.exploit(400, records(scores, 400), points(6), "pack_a")
    assert first == pbt.exploit(400, records(scores, 400), points(6), "pack_a")  # a resumed pack moves alike
    assert 5 in first and len(first) == 2 and all(w in (4, 0, 1, 2, 3) for w, _ in first.values())
    draws = {str(pbt.exploit(400, records(scores, 400), points(6), f"pack_{i}")) for i in range(8)}
    assert len(draws) > 1  # each pack draws its own


@pytest.mark.parametrize("scores, want", [([0.3], set()), ([0.3, 0.7], {1}), ([0.3, 0.7, 0.5], {1}),
                                          ([math.nan, 0.2, 0.4, 0.1], {0})])
def test_small_packs_and_unscored_points(scores, want):
    moves = PointPBT(SPACE, 100, "grok_score", "min", seed=0).exploit(100, records(scores, 100), points(len(scores)),
                                                                       "p")
    assert set(moves) == want


def test_explore_resamples_or_scales_a_range_and_moves_a_list_to_a_neighbour():
    rng = np.random.default_rng(0)
    lr, wd = SPACE["optim.lr"], SPACE["optim.weight_decay"]
    scaled = [_explore(wd, 1.0, rng) for _ in range(400)]
    assert all(0.0 <= v <= 2.0 for v in scaled)
    share = sum(any(v == pytest.approx(1.0 * f) for f in FACTORS) for v in scaled) / len(scaled)
    assert 0.65 < share < 0.85  # 1 - resample probability 0.25
    assert max(_explore(lr, 9e-3, rng) for _ in range(200)) <= 1e-2  # 9e-3 x 1.2 clipped to the range
    warm = SPACE["optim.warmup_steps"]
    moved = [_explore(warm, 0, rng) for _ in range(400)]
    assert set(moved) <= {0, 10, 50, 100} and moved.count(10) > moved.count(50)  # neighbours, and resamples
    steps = parse_dist("train.steps", {"randint": [100, 200]})
    assert all(isinstance(v, int) and 100 <= v < 200 for v in (_explore(steps, 199, rng) for _ in range(100)))
