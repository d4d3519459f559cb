"""PackedOptunaSearch: one batched ask per pack, each point told its own result.

No Ray trial runs: the searcher is driven with the calls Tune makes, with the reports a pack
trial sends (orchestrator.sweep.adapter.pack_trainable: POINTS_KEY per eval, DONE_KEY for points
that stopped, OUTCOMES_KEY at the close).
"""

import json

import optuna
from ray import tune
from ray.tune.search import Searcher

from orchestrator.search.pack_searcher import PackedOptunaSearch
from orchestrator.sweep.packing import DONE_KEY, OUTCOMES_KEY, PACK_KEY, POINTS_KEY


def searcher(pack: int, seeds: list[int], points: int, space: dict | None = None, key=None) -> PackedOptunaSearch:
    return PackedOptunaSearch(space or {"optim.lr": tune.loguniform(1e-4, 1e-2)}, pack, seeds, points,
                              optuna.samplers.TPESampler(seed=0), "grok_score", "min", key=key)


def evals(step: int, scores: dict[int, float]) -> dict:
    return {"step": step, POINTS_KEY: json.dumps([{"member": j, "step": step, "grok_score": v}
                                                  for j, v in scores.items()])}


def test_each_point_is_its_own_optuna_trial_told_its_own_value():
    s = searcher(pack=3, seeds=[0], points=4)
    first = s.suggest("t1")[PACK_KEY]
    assert len(first) == 3 and len({p["optim.lr"] for p in first}) == 3 and "seed" not in first[0]
    s.on_trial_result("t1", evals(10, {0: 50.0, 1: 60.0, 2: 70.0}))
    s.on_trial_result("t1", {**evals(20, {0: 40.0, 2: 65.0}),
                             DONE_KEY: json.dumps([{"member": 1, "status": "pruned", "steps_to_target": None}])})
    closing = [{"status": "grokked", "steps_to_target": 20, "grok_score": 20.0},
               {"status": "pruned", "steps_to_target": None, "grok_score": 60.0},
               {"status": "budget", "steps_to_target": None, "grok_score": 65.0}]
    s.on_trial_complete("t1", {**evals(20, {0: 20.0, 2: 65.0}), OUTCOMES_KEY: json.dumps(closing)})
    trials = s.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert [trials[0].value, trials[2].value] == [20.0, 65.0]
    assert trials[0].intermediate_values == {10: 50.0, 20: 40.0} and trials[1].intermediate_values == {10: 60.0}
    assert len(s.suggest("t2")[PACK_KEY]) == 1  # the fourth point
    s.on_trial_complete("t2", None, error=True)
    assert s.study.trials[3].state.name == "FAIL"
    assert s.suggest("t3") == Searcher.FINISHED


def test_with_several_seeds_a_point_trains_once_per_seed_and_is_told_their_mean():
    s = searcher(pack=4, seeds=[0, 1], points=2)
    pack = s.suggest("t1")[PACK_KEY]
    assert [p["seed"] for p in pack] == [0, 1, 0, 1] and pack[0]["optim.lr"] == pack[1]["optim.lr"] != pack[2]["optim.lr"]
    closing = [{"status": "grokked", "grok_score": v} for v in (10.0, 30.0, 100.0, 200.0)]
    s.on_trial_complete("t1", {**evals(30, {}), OUTCOMES_KEY: json.dumps(closing)})
    assert [t.value for t in s.study.trials] == [20.0, 150.0]
    assert all(not t.intermediate_values for t in s.study.trials)  # seeds are averaged at the end only


def test_a_batch_splits_into_one_pack_per_structure_and_waiting_packs_come_before_the_next_ask():
    space = {"optim.lr": tune.loguniform(1e-4, 1e-2), "train.batch_size": tune.choice([32, 64])}
    s = searcher(pack=8, seeds=[0, 1], points=6, space=space,
                 key=lambda point: {k: v for k, v in point.items() if k.startswith("train.")})
    packs = []
    while (suggested := s.suggest(f"t{len(packs)}")) != Searcher.FINISHED:
        packs.append(suggested[PACK_KEY])
    asked = s.study.trials
    number = {t.params["optim.lr"]: t.number for t in asked}
    batches = [asked[:4], asked[4:]]  # two asks, of 4 points (pack 8 / 2 seeds) and of the last 2
    assert len(packs) == sum(len({t.params["train.batch_size"] for t in batch}) for batch in batches) > 2
    in_order = [max(number[p["optim.lr"]] for p in pack) < 4 for pack in packs]
    assert in_order == sorted(in_order, reverse=True)  # the first ask's packs all start before the second ask
    for pack in packs:
        assert len({p["train.batch_size"] for p in pack}) == 1 and len(pack) <= 8
        assert [p["seed"] for p in pack] == [0, 1] * (len(pack) // 2)  # a point's seeds share its pack
    points = sorted((p["optim.lr"], p["seed"]) for pack in packs for p in pack)
    assert points == sorted((t.params["optim.lr"], seed) for t in asked for seed in (0, 1))  # each once per seed
    for i, pack in enumerate(packs):  # each pack's trials are told their own values
        closing = [{"status": "budget", "grok_score": 100.0 + i} for _ in pack]
        s.on_trial_complete(f"t{i}", {**evals(30, {}), OUTCOMES_KEY: json.dumps(closing)})
    assert all(t.state.name == "COMPLETE" for t in s.study.trials)
