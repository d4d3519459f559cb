"""Packed trials (search.pack) with a searcher that learns and a scheduler that cuts, per point.

Slow tier (real local Ray, tiny models trained for real: x+y mod 11, d_model 16, 300 steps):
- TPE asks Optuna for a pack of points at once (orchestrator.search.pack_searcher) and tells each
  point its own value: one Optuna trial per point, each COMPLETE with its own final grok_score
  and its own intermediate values at its own eval steps;
- ASHA cuts points inside their packs (orchestrator.search.point_rungs): a point below its
  rung's cut-off ends "pruned" at that rung (its ledger record, its row, its Optuna trial
  PRUNED) while its pack trains the others on, and one rung table holds every pack's points;
- HyperBand does the same in asynchronous brackets: each point is judged only at its own
  bracket's rungs, in the bracket its id draws.
Full tier: a TPE packed sweep whose driver is SIGKILLed while its second pack trains, resumed:
the finished pack is not trained again and every point's Optuna trial is told once, COMPLETE.
"""

import json
import math
import time

import pandas as pd
import pytest

from tests.orchestrator.test_cmd_sweep import groktune, write_config

TINY_TASK = {"name": "modular", "op": "x+y", "p": 11, "train_fraction": 0.8}
TINY_MODEL = {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32}
TINY_TRAIN = {"steps": 300, "batch_size": 64, "eval_dense_until": 0, "eval_every": 50, "checkpoint_every": 100,
              "target_val_acc": 0.9, "target_patience": 2, "per_class_metrics": False}


def _sweep(tmp_path, **search):
    journal = tmp_path / "study.log"
    cfg = write_config(tmp_path, task=TINY_TASK, model=TINY_MODEL, train=TINY_TRAIN, search={
        "algorithm": "tpe", "population_vectorize": "loop", "optuna_storage": f"journal:{journal}",
        "verify": {"top": 0}, "max_concurrent": 1, **search})
    proc = groktune("sweep", cfg, "--storage", tmp_path / "res")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / "res" / "clitest"
    # deferred: Optuna, only in the slow tier
    import optuna

    from orchestrator.storage.optuna_study import open_storage
    from orchestrator.sweep.ledger import read_ledger

    tpe = search.get("algorithm", "tpe") == "tpe"  # only TPE keeps an Optuna study
    study = optuna.load_study(study_name="clitest", storage=open_storage(f"journal:{journal}")) if tpe else None
    progress = [line for line in proc.stdout.splitlines() if line.startswith("trials ")]
    return (pd.read_parquet(exp / "trials.parquet"), pd.read_parquet(exp / "curves.parquet"), read_ledger(exp),
            study, progress)


def _optuna_trial(study, row):
    """The study's trial whose params are the row's point."""
    found = [t for t in study.trials if all(math.isclose(t.params[k], row[k]) for k in t.params)]
    assert len(found) == 1, (row["trial_id"], [t.params for t in study.trials])
    return found[0]


@pytest.mark.slow
def test_tpe_asks_packs_of_points_and_tells_each_point_its_own_result(tmp_path):
    space = {"optim.lr": {"loguniform": [1e-3, 3e-2]}, "optim.weight_decay": {"uniform": [0.1, 1.0]}}
    trials, curves, ledger, study, progress = _sweep(tmp_path, space=space, scheduler="fifo", num_samples=6, pack=4)
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert progress and progress[-1].startswith("trials 6/6 done, 0 running, 0 pending")  # points, not packs
    packs = [rec for rec in ledger.values() if "points" in rec]
    assert sorted(len(rec["points"]) for rec in packs) == [2, 4]  # 6 points asked 4, then 2, at a time
    assert len(study.trials) == 6 and all(t.state.name == "COMPLETE" for t in study.trials)
    for _, row in trials.iterrows():
        told = _optuna_trial(study, row)
        assert ledger[row["trial_id"]]["status"] == row["status"] != "pruned"
        assert told.value == pytest.approx(row["final_grok_score"])  # its own value, not the pack's
        steps = curves[curves.trial_id == row["trial_id"]]["step"].tolist()
        assert sorted(told.intermediate_values) == steps  # its own curve, at optimizer steps
    assert len({t.value for t in study.trials}) > 1


@pytest.mark.slow
def test_tpe_splits_a_batch_with_a_structural_key_into_one_pack_per_structure(tmp_path):
    space = {"optim.lr": {"loguniform": [1e-3, 3e-2]}, "train.batch_size": {"choice": [32, 64]}}
    trials, curves, ledger, study, progress = _sweep(tmp_path, space=space, scheduler="fifo", num_samples=6, pack=4)
    assert len(trials) == 6 and progress[-1].startswith("trials 6/6 done, 0 running, 0 pending")
    packs = [rec for rec in ledger.values() if "points" in rec]
    assert sum(len(rec["points"]) for rec in packs) == 6 and len(packs) > 2  # 2 asks (4, 2), at least one split
    for rec in packs:  # one structure per pack
        assert len({ledger[pid]["config"]["train.batch_size"] for pid in rec["points"]}) == 1, rec["points"]
    assert len(study.trials) == 6 and all(t.state.name == "COMPLETE" for t in study.trials)
    for _, row in trials.iterrows():
        told = _optuna_trial(study, row)
        assert told.value == pytest.approx(row["final_grok_score"])
        assert told.params["train.batch_size"] == ledger[row["trial_id"]]["config"]["train.batch_size"]
    assert set(trials["train.batch_size"]) == {32, 64}  # both structures were asked (TPE's start is random)


@pytest.mark.slow
def test_asha_cuts_points_inside_their_packs_over_one_rung_table(tmp_path):
    space = {"optim.lr": {"loguniform": [1e-5, 3e-2]}}
    trials, curves, ledger, study, _ = _sweep(tmp_path, space=space, scheduler="asha", num_samples=8, pack=4,
                                                grace_period=50, reduction_factor=2)
    assert len(trials) == 8
    pruned = trials[trials.status == "pruned"]
    assert 0 < len(pruned) < 8, trials[["trial_id", "status", "final_step"]]
    last_step = curves.groupby("trial_id")["step"].max()
    for _, row in pruned.iterrows():
        assert last_step[row["trial_id"]] in (50, 100, 200)  # stopped at a rung, before the budget
        assert ledger[row["trial_id"]]["status"] == "pruned" and ledger[row["trial_id"]].get("steps_to_target") is None
        assert _optuna_trial(study, row).state.name == "PRUNED"
        # its pack went on: a sibling point trained past the rung it was cut at
        siblings = [t for t in ledger[ledger[row["trial_id"]]["pack"]]["points"] if t != row["trial_id"]]
        assert max(last_step[t] for t in siblings) > last_step[row["trial_id"]]
    for _, row in trials[trials.status != "pruned"].iterrows():
        assert _optuna_trial(study, row).state.name == "COMPLETE"
    rungs = json.loads((tmp_path / "res" / "clitest" / "scheduler.state").read_text())["rungs"][0]
    first = dict((m, recorded) for m, recorded in rungs)[50]
    assert {tid.rsplit("_p", 1)[0] for tid in first} == {rec["trial_id"] for rec in ledger.values() if "points" in rec}
    assert set(first) == set(trials["trial_id"])  # every point of both packs was judged at the first rung


@pytest.mark.slow
def test_hyperband_cuts_points_inside_their_packs_at_their_own_brackets_rungs(tmp_path):
    from orchestrator.search.point_rungs import PointRungs

    space = {"optim.lr": {"loguniform": [1e-5, 3e-2]}}
    trials, curves, ledger, _, _ = _sweep(tmp_path, space=space, algorithm="random", scheduler="hyperband",
                                          num_samples=12, pack=6, grace_period=50, reduction_factor=2)
    assert len(trials) == 12
    state = json.loads((tmp_path / "res" / "clitest" / "scheduler.state").read_text())
    table = PointRungs("unused", metric="grok_score", mode="min", max_t=300, grace_period=50, reduction_factor=2,
                       brackets=3)
    assert [table.milestones(b) for b in range(3)] == [[50, 100, 200], [100, 200], [200]] and len(state["rungs"]) == 3
    last_step = curves.groupby("trial_id")["step"].max()
    judged = {b: {tid for _, recorded in rungs for tid in recorded} for b, rungs in enumerate(state["rungs"])}
    for tid in trials["trial_id"]:
        bracket = table.bracket(tid)
        assert all(tid not in judged[b] for b in judged if b != bracket), tid  # judged in its own bracket only
        if last_step[tid] >= table.milestones(bracket)[0]:
            assert tid in judged[bracket], tid
    pruned = trials[trials.status == "pruned"]
    assert 0 < len(pruned) < 12, trials[["trial_id", "status", "final_step"]]
    for tid in pruned["trial_id"]:
        assert last_step[tid] in table.milestones(table.bracket(tid)) and ledger[tid]["status"] == "pruned"


@pytest.mark.full
def test_a_tpe_packed_sweep_resumes_after_a_driver_kill_with_every_point_told_once(tmp_path):
    from orchestrator.storage.optuna_study import open_storage
    from orchestrator.sweep.ledger import count_starts, read_ledger
    from tests.orchestrator.driver_kill import kill_driver_when
    import optuna

    journal = tmp_path / "study.log"
    cfg = write_config(tmp_path, task=TINY_TASK, model=TINY_MODEL, train=TINY_TRAIN, search={
        "algorithm": "tpe", "scheduler": "fifo", "population_vectorize": "loop", "verify": {"top": 0},
        "optuna_storage": f"journal:{journal}", "max_concurrent": 1, "num_samples": 8, "pack": 4,
        "space": {"optim.lr": {"loguniform": [1e-3, 3e-2]}, "optim.weight_decay": {"uniform": [0.1, 1.0]}}})
    exp = tmp_path / "res" / "clitest"

    def second_pack_past_a_checkpoint():  # the first pack ended, the second trains past step 100
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            packs = [r for r in read_ledger(exp).values() if "points" in r] if (exp / "ledger").exists() else []
            for result in exp.glob("trial_*/result.json"):
                if packs and result.parent.name != f"trial_{packs[0]['trial_id']}":
                    steps = [json.loads(line).get("step", 0) for line in result.read_text().splitlines() if line]
                    if steps and max(steps) >= 120:
                        return
            time.sleep(0.5)
        raise AssertionError("the second pack did not pass step 120 in time")

    kill_driver_when(cfg, tmp_path, second_pack_past_a_checkpoint)
    proc = groktune("sweep", cfg, "--storage", tmp_path / "res", "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = pd.read_parquet(exp / "trials.parquet")
    ledger = read_ledger(exp)
    packs = sorted((r for r in ledger.values() if "points" in r), key=lambda r: r["written"])
    assert len(trials) == 8 and len(packs) == 2 and set(trials["status"]) <= {"grokked", "budget"}
    assert [count_starts(exp, p["trial_id"]) for p in packs] == [1, 2]  # the finished pack never trained again
    study = optuna.load_study(study_name="clitest", storage=open_storage(f"journal:{journal}"))
    for _, row in trials.iterrows():
        told = _optuna_trial(study, row)
        assert told.state.name == "COMPLETE" and told.value == pytest.approx(row["final_grok_score"])
