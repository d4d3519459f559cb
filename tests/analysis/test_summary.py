"""analysis.summary: per-trial events, ranking, per-task tables and the choice of axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.load import load
from analysis.summary import (
    best_and_typical,
    kaplan_meier_median,
    choose_pair,
    describe_config,
    log_scaled,
    outcome,
    rank_trials,
    task_table,
    trial_summary,
)
from groktune.errors import ResultsError
from groktune.space import parse_dist
from tests.analysis.synth import sweep_trial, write_run, write_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return load(write_sweep(tmp_path_factory.mktemp("sweep") / "s", n_trials=16))


def test_every_trial_gets_the_phase_it_was_built_with(sweep):
    summary = trial_summary(sweep)
    assert len(summary) == 16
    for _, row in summary.iterrows():
        assert row["phase"] == sweep_trial(row["optim.lr"], row["optim.weight_decay"])
    assert summary["generalized_step"].dtype == "Int64"
    assert list(summary.columns[:6]) == ["trial_id", "task", "status", "outcome", "phase", "memorized_step"]
    grok = summary[summary["phase"] == "grokking"]
    assert grok["dd_peak"].notna().all()  # their val loss climbs while memorising


def test_trials_without_curves_have_no_data(tmp_path):
    path = write_sweep(tmp_path / "s", n_trials=3)
    trials = pd.read_parquet(path / "trials.parquet")
    extra = trials.iloc[[0]].assign(trial_id="lost")
    pd.concat([trials, extra]).to_parquet(path / "trials.parquet")
    summary = trial_summary(load(path))
    assert summary.set_index("trial_id").loc["lost", "phase"] == "no data"
    assert "lost" not in best_and_typical(summary).values()


def test_rank_puts_fast_generalisers_first_then_by_val_accuracy():
    frame = pd.DataFrame({"trial_id": list("abcde"),
                          "generalized_step": pd.array([None, 500, None, 100, 500], dtype="Int64"),
                          "final_val_acc": [0.9, 1.0, 0.95, 1.0, 0.99]})
    assert rank_trials(frame)["trial_id"].tolist() == ["d", "b", "e", "c", "a"]


def test_best_and_typical():
    frame = pd.DataFrame({"trial_id": list("abc"), "phase": ["grokking"] * 3,
                          "generalized_step": pd.array([300, 100, 200], dtype="Int64"),
                          "final_val_acc": [1.0] * 3})
    assert best_and_typical(frame) == {"best": "b", "typical": "c"}
    assert best_and_typical(frame.iloc[:1]) == {"best": "a"}


def test_task_table_per_task(tmp_path):
    write_run(tmp_path / "a", "grokking", task__op="x+y")
    write_run(tmp_path / "b", "comprehension", task__op="x+y", optim__lr=3e-3)
    write_run(tmp_path / "c", "memorization", task__op="x*y")
    res = load(tmp_path)
    table = task_table(trial_summary(res), res.searched).set_index("task")
    assert list(table.index) == ["modular:x*y", "modular:x+y"]
    plus = table.loc["modular:x+y"]
    assert plus["trials"] == 2 and plus["generalised"] == "2/2"
    assert plus["best trial"] == "b" and "optim.lr=0.003" in plus["best config"]
    assert plus["phases"] == "comprehension 1, grokking 1"
    assert table.loc["modular:x*y", "median steps to generalise (KM)"] == "not reached (0/1 generalised)"
    assert plus["outcomes"] == "grokked 2"


def test_describe_config():
    row = pd.Series({"optim.lr": 0.00123456, "task.op": "x*y"})
    assert describe_config(row, ["optim.lr", "task.op"]) == "optim.lr=0.001235, task.op=x*y"
    assert describe_config(row, []) == "(nothing searched)"


def test_log_scaled():
    assert log_scaled(pd.Series([1e-4, 1e-3]), parse_dist("optim.lr", {"loguniform": [1e-4, 1e-2]}))
    assert not log_scaled(pd.Series([0.01, 2.0]), parse_dist("optim.weight_decay", {"uniform": [0, 2]}))
    assert log_scaled(pd.Series([1e-4, 1e-1]))  # no spec: three decades
    assert not log_scaled(pd.Series([0.0, 1e-1]))
    assert not log_scaled(pd.Series(["a", "b"]))


def test_choose_pair(sweep):
    summary = trial_summary(sweep)
    assert choose_pair(summary, sweep.searched, {}) == ("optim.lr", "optim.weight_decay")
    assert choose_pair(summary, sweep.searched, {}, x="model.d_model") == ("model.d_model", "optim.lr")
    imp = {"model.d_model": 0.7, "optim.lr": 0.3}
    assert choose_pair(summary, ["optim.lr", "model.d_model"], imp) == ("model.d_model", "optim.lr")
    assert choose_pair(summary, ["optim.lr"], {}) is None
    with pytest.raises(ResultsError, match="optim.nope: not a column"):
        choose_pair(summary, sweep.searched, {}, x="optim.nope")


def test_summary_respects_threshold(sweep):
    strict = trial_summary(sweep, threshold=0.99)
    loose = trial_summary(sweep, threshold=0.9)
    both = strict["generalized_step"].notna() & loose["generalized_step"].notna()
    assert both.any()
    assert (loose.loc[both, "generalized_step"] <= strict.loc[both, "generalized_step"]).all()
    assert np.array_equal(strict["trial_id"], loose["trial_id"])


def test_median_to_generalise_counts_runs_that_never_did():
    """Three of five runs never generalised (censored at 1000): the median is not reached,
    although the median over the two that did would be 150."""
    frame = pd.DataFrame({"generalized_step": pd.array([100, 200, None, None, None], dtype="Int64"),
                          "last_step": [100, 200, 1000, 1000, 1000]})
    assert kaplan_meier_median(frame).startswith("not reached")
    frame.loc[2, "generalized_step"] = 300
    assert kaplan_meier_median(frame).startswith("300 ")


def test_pruned_trials_are_not_confusion_and_typical_ran_to_a_verdict():
    assert outcome("pruned", None) == "pruned" and outcome("early_stopped", None) == "pruned"
    assert outcome("pruned", 450) == "grokked" and outcome("budget", None) == "budget"
    assert outcome("running", None) == "unfinished" and outcome("budget", None, False) == "no data"
    frame = pd.DataFrame({"trial_id": list("abcde"), "phase": ["grokking"] + ["pruned"] * 3 + ["memorization"],
                          "outcome": ["grokked", "pruned", "pruned", "pruned", "budget"],
                          "generalized_step": pd.array([100, None, None, None, None], dtype="Int64"),
                          "final_val_acc": [1.0, 0.5, 0.4, 0.3, 0.2]})
    assert best_and_typical(frame) == {"best": "a", "typical": "e"}


def test_pruned_phase_in_a_summary(tmp_path):
    path = write_sweep(tmp_path / "s", n_trials=6)
    trials = pd.read_parquet(path / "trials.parquet")
    trials["status"] = "pruned"
    trials.to_parquet(path / "trials.parquet")
    summary = trial_summary(load(path))
    stopped = summary[summary["generalized_step"].isna()]
    assert len(stopped) and (stopped["phase"] == "pruned").all() and (stopped["outcome"] == "pruned").all()
    assert not summary["phase"].isin(["confusion", "memorization"]).any()
