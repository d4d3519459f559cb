"""Collecting curves.parquet / trials.parquet from a folder laid out as Ray Tune writes it."""

import json

import pandas as pd
import pytest

from orchestrator.config.experiment import config_from_dict, dump_config
from orchestrator.errors import UserError
from orchestrator.sweep.ledger import write_record
from orchestrator.sweep.results import build_tables, collect, lineage, summary
from orchestrator.sweep.status import describe
from tests.conftest import TINY, deep_merge

SPACE = {"optim.lr": {"loguniform": [1e-4, 1e-2]}, "model.d_model": {"quniform": [16, 32, 16]}}


def record(step, val_acc=0.1, **extra):
    r = {"step": step, "train_loss": 1.0, "val_loss": 2.0, "train_acc": 0.5, "val_acc": val_acc, "param_norm": 3.0,
         "grok_score": 1500.0, "wall_time": step / 10, "device": "cpu", "cpu_time_s": step / 20,
         "peak_memory_mb": 100.0 + step, "val_acc_per_class": [0.0, 1.0], "training_iteration": 2,
         "iterations_since_restore": 2, "resumed_from_step": 0}
    r.update(extra)
    return r


def make_sweep(tmp_path, trials, ledger=None):
    """trials: {trial_id: (point, [records...])}; ledger: {trial_id: status} of finished trials,
    recorded as orchestrator.sweep.ledger does (with the last record as the final result)."""
    cfg = config_from_dict(deep_merge(TINY, {"search": {"space": SPACE}}))
    path = tmp_path / "exp"
    path.mkdir()
    (path / "experiment.yaml").write_text(dump_config(cfg))
    for tid, (point, rows) in trials.items():
        tdir = path / f"trial_{tid}"
        tdir.mkdir()
        (tdir / "params.json").write_text(json.dumps(point))
        lines = [json.dumps({**r, "trial_id": tid, "config": point, "done": False}) for r in rows]
        (tdir / "result.json").write_text("\n".join(lines) + ("\n" if lines else ""))
    for tid, status in (ledger or {}).items():
        point, rows = trials[tid]
        write_record(path, tid, status, point, {**rows[-1], "trial_id": tid} if rows else {})
    return path


def test_lineage_keeps_the_history_the_trial_ended_with():
    rows = [{"step": s} for s in (1, 10, 20, 30)] + [{"step": s, "again": True} for s in (25, 30, 40)] + [{"step": 40}]
    steps = [(r["step"], r.get("again", False)) for r in lineage(rows)]
    assert steps == [(1, False), (10, False), (20, False), (25, True), (30, True), (40, False)]


def test_tables_have_one_row_per_eval_and_per_trial(tmp_path):
    point_a = {"optim.lr": 1e-3, "model.d_model": 17.0}
    a = [record(1), record(10), record(20, training_iteration=3)]
    # retried from a checkpoint at step 10: step 20 reported again, then the closing report
    a += [record(20, val_acc=0.9, iterations_since_restore=1, training_iteration=4, resumed_from_step=10),
          record(30, val_acc=1.0, steps_to_target=30, training_iteration=5),
          record(30, val_acc=1.0, status="grokked", steps_to_target=30, training_iteration=6)]
    b = [record(1), record(10)]
    c = [record(1), record(10)]
    path = make_sweep(tmp_path, {"aaa": (point_a, a), "bbb": ({"optim.lr": 1e-2}, b), "ccc": ({"optim.lr": 5e-3}, c),
                                 "ddd": ({"optim.lr": 2e-3}, [])},
                      ledger={"aaa": "grokked", "bbb": "pruned", "ccc": "error"})
    curves, trials = collect(path)
    assert (path / "curves.parquet").exists() and (path / "trials.parquet").exists()
    assert curves.groupby("trial_id").size().to_dict() == {"aaa": 4, "bbb": 2, "ccc": 2}
    assert not curves.duplicated(["trial_id", "step"]).any()
    assert curves.loc[(curves.trial_id == "aaa") & (curves.step == 20), "val_acc"].item() == 0.9  # the retry wins
    assert list(curves.columns[:2]) == ["trial_id", "step"] and "config" not in curves and "device" not in curves
    t = trials.set_index("trial_id")
    assert t.loc["aaa", "status"] == "grokked" and t.loc["aaa", "steps_to_target"] == 30
    assert t.loc["bbb", "status"] == "pruned" and pd.isna(t.loc["bbb", "steps_to_target"])
    assert t.loc["ccc", "status"] == "error" and t.loc["ddd", "status"] == "pending"
    assert t.loc["aaa", "model.d_model"] == 16 and t.loc["aaa", "optim.lr"] == 1e-3  # quantised as sampled
    assert t.loc["aaa", "task"] == "modular:x+y" and t.loc["aaa", "seed"] == 0
    assert t.loc["aaa", "final_val_acc"] == 1.0 and t.loc["aaa", "peak_memory_mb"] == 130.0
    assert t.loc["aaa", "restarts"] == 1 and t.loc["aaa", "device"] == "cpu"
    for col in ("final_train_acc", "final_val_loss", "wall_time", "cpu_time_s"):
        assert col in t
    assert str(trials["steps_to_target"].dtype) == "Int64"
    again = pd.read_parquet(path / "trials.parquet")
    assert len(again) == 4 and str(again["steps_to_target"].dtype) == "Int64"
    assert "best: aaa steps to target 30" in summary(trials, list(SPACE))


def test_a_torn_last_line_of_a_live_trial_is_skipped(tmp_path):
    path = make_sweep(tmp_path, {"aaa": ({"optim.lr": 1e-3}, [record(1), record(10)])})
    with open(path / "trial_aaa" / "result.json", "a") as f:
        f.write('{"step": 20, "val_')
    curves, trials = build_tables(path)
    assert len(curves) == 2 and trials.loc[0, "status"] == "running"


def test_status_reads_a_folder_without_ray(tmp_path):
    path = make_sweep(tmp_path, {"aaa": ({"optim.lr": 1e-3}, [record(1), record(10, status="budget")])},
                      ledger={"aaa": "budget"})
    text = describe(path)
    assert "12 trials planned, 1 started" in text and "1 budget" in text and "driver: no heartbeat" in text


def test_not_a_sweep_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a groktune sweep folder"):
        collect(tmp_path)


def test_a_trial_stopped_at_its_last_eval_keeps_the_trainers_status(tmp_path):
    # ASHA can stop a trial at the rung that falls on the budget, before the closing report
    steps = TINY["train"]["steps"]
    # target_patience 0 (TINY): the event still needs groktune.events.DEFAULT_PATIENCE (3) evals
    rows = [record(1), record(steps // 3, val_acc=1.0), record(steps // 2, val_acc=1.0), record(steps, val_acc=1.0)]
    path = make_sweep(tmp_path, {"aaa": ({"optim.lr": 1e-3}, rows), "bbb": ({"optim.lr": 1e-3}, rows[:3])},
                      ledger={"aaa": "pruned", "bbb": "pruned"})
    _, trials = build_tables(path)
    t = trials.set_index("trial_id")
    assert t.loc["aaa", "status"] == "grokked" and t.loc["aaa", "steps_to_target"] == steps // 3
    assert t.loc["bbb", "status"] == "pruned"
