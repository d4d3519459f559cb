"""analysis.load: sweep dirs, run dirs and folders of runs; one-line errors for bad folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.load import load, tidy_curves
from groktune.errors import ResultsError, UserError
from groktune.space import parse_dist
from tests.analysis.synth import trainer_grid, write_run, write_sweep


def test_sweep_dir(tmp_path):
    write_sweep(tmp_path / "s", n_trials=6)
    res = load(tmp_path / "s")
    assert res.kind == "sweep"
    assert res.trials["trial_id"].tolist() == [f"trial_{i:03d}" for i in range(6)]
    assert {"trial_id", "step", "train_acc", "val_acc", "val_loss", "param_norm"} <= set(res.curves)
    assert res.curves.groupby("trial_id")["step"].is_monotonic_increasing.all()
    assert res.searched == ["optim.lr", "optim.weight_decay", "model.d_model"]
    assert res.params["optim.lr"] == parse_dist("optim.lr", {"loguniform": [1e-4, 1e-2]})  # the one parser's
    assert res.config["train"]["target_val_acc"] == 0.99
    assert set(res.trials["task"]) == {"modular:x*y"}


def test_single_run_dir(tmp_path):
    write_run(tmp_path / "r", "grokking")
    res = load(tmp_path / "r")
    assert res.kind == "run" and res.trials["trial_id"].tolist() == ["r"]
    row = res.trials.iloc[0]
    assert row["task"] == "modular:x*y" and row["status"] == "grokked"
    assert row["optim.lr"] == 1e-3 and row["model.d_model"] == 128
    assert row["final_step"] == trainer_grid()[-1]
    assert "val_acc_per_class" not in res.curves  # lists are not curve columns
    assert "param_norm/blocks.0" in res.curves
    assert res.searched == []
    assert res.meta["runs"]["r"]["versions"] == {"torch": "2.13.0"}


def test_folder_of_runs_finds_nested_runs_and_what_varies(tmp_path):
    write_run(tmp_path / "a", "grokking", optim__lr=1e-3)
    write_run(tmp_path / "group" / "b", "memorization", optim__lr=3e-3)
    (tmp_path / "notes").mkdir()
    res = load(tmp_path)
    assert res.kind == "runs"
    assert sorted(res.trials["trial_id"]) == ["a", "group/b"]
    assert res.searched == ["optim.lr"]
    assert set(res.curves["trial_id"]) == {"a", "group/b"}


def test_run_without_result_json_is_incomplete(tmp_path):
    write_run(tmp_path / "r", "grokking", result=False)
    row = load(tmp_path / "r").trials.iloc[0]
    assert row["status"] == "incomplete"
    assert row["final_val_acc"] == pytest.approx(1.0, abs=1e-3)  # from the last record


def test_a_torn_last_line_is_skipped(tmp_path):
    run = write_run(tmp_path / "r", "grokking")
    n = len((run / "metrics.jsonl").read_text().splitlines())
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 99999999, "train_acc": 0.')
    assert len(load(run).curves) == n


def test_repeated_steps_keep_the_last_record():
    raw = pd.DataFrame({"trial_id": ["a"] * 4, "step": [1, 2, 2, 3],
                        "val_acc": [0.1, 0.2, 0.9, 0.3], "note": ["x", "y", "z", "w"]})
    tidy = tidy_curves(raw)
    assert tidy["step"].tolist() == [1, 2, 3]
    assert tidy["val_acc"].tolist() == [0.1, 0.9, 0.3]
    assert "note" not in tidy  # non-numeric columns are dropped


def test_json_null_becomes_nan(tmp_path):
    run = write_run(tmp_path / "r", "grokking")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rec = json.loads(lines[-1])
    rec["val_loss"] = None  # the trainer writes NaN as null
    lines[-1] = json.dumps(rec)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert np.isnan(load(run).curves["val_loss"].iloc[-1])


def bad(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    return path


def files(**contents):
    """A setup writing {name: text} into the folder ("_" stands for "." in names)."""
    def setup(path):
        for name, text in contents.items():
            (path / name.replace("_", ".", 1).replace("_", "")).write_text(text)
    return setup


RECORD = '{"step":1,"train_acc":1,"val_acc":1}\n'


@pytest.mark.parametrize("setup,match", [
    (lambda p: None, "no results found"),
    (files(experiment_yaml="name: x\n"), "without curves.parquet and trials.parquet yet.*groktune collect"),
    (lambda p: (p / "metrics.jsonl").write_text(""), "no eval records"),
    (lambda p: (p / "metrics.jsonl").write_text("garbage\n{}\n"), "line 1 is not a JSON object"),
    (lambda p: (p / "metrics.jsonl").write_text('{"step": 1}\n'), "lack train_acc, val_acc"),
    (files(metrics_jsonl=RECORD, config_yaml="a: [1,\n"), "config.yaml: not valid YAML"),
    (files(metrics_jsonl=RECORD, config_yaml="- a\n"), "config.yaml: expected a mapping"),
    (files(metrics_jsonl=RECORD, result_json="{"), "result.json: not valid JSON"),
    (files(metrics_jsonl=RECORD, result_json="[1]"), "result.json: expected a JSON object"),
    (lambda p: (p / "curves.parquet").write_bytes(b"not parquet"), "not a readable Parquet file"),
    (lambda p: [pd.DataFrame({"trial_id": ["a"], "step": [1]}).to_parquet(p / "curves.parquet"),
                pd.DataFrame({"trial_id": ["a"]}).to_parquet(p / "trials.parquet")],
     "curves.parquet: missing column.s. train_acc, val_acc"),
    (lambda p: pd.DataFrame({"trial_id": ["a"]}).to_parquet(p / "trials.parquet"),
     "curves.parquet: missing"),
])
def test_malformed_folders_raise_one_line(tmp_path, setup, match):
    path = bad(tmp_path, "res")
    setup(path)
    with pytest.raises(ResultsError, match=match) as info:
        load(path)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def test_empty_parquet_files(tmp_path):
    path = bad(tmp_path, "res")
    cols = {"trial_id": pd.Series([], dtype=str), "step": pd.Series([], dtype=int),
            "train_acc": pd.Series([], dtype=float), "val_acc": pd.Series([], dtype=float)}
    pd.DataFrame(cols).to_parquet(path / "curves.parquet")
    pd.DataFrame({"trial_id": pd.Series([], dtype=str)}).to_parquet(path / "trials.parquet")
    with pytest.raises(ResultsError, match="no rows"):
        load(path)


def test_missing_path_and_a_file(tmp_path):
    with pytest.raises(ResultsError, match="no such results folder"):
        load(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ResultsError, match="not a folder"):
        load(tmp_path / "f.txt")


def test_a_folder_of_runs_skips_broken_runs_but_not_all(tmp_path):
    write_run(tmp_path / "good", "grokking")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.jsonl").write_text("oops\n{}\n")
    res = load(tmp_path)
    assert res.trials["trial_id"].tolist() == ["good"]
    assert len(res.meta["skipped"]) == 1 and "broken" in res.meta["skipped"][0]
    (tmp_path / "good" / "metrics.jsonl").write_text("")
    with pytest.raises(ResultsError, match="no readable runs"):
        load(tmp_path)


def test_sweep_trials_without_task_or_status_get_defaults(tmp_path):
    path = write_sweep(tmp_path / "s", n_trials=3)
    trials = pd.read_parquet(path / "trials.parquet").drop(columns=["task", "status"])
    trials["task.op"] = ["x+y", "x*y", "x+y"]
    trials.iloc[:2].to_parquet(path / "trials.parquet")  # trial_002 only has curves
    res = load(path)
    assert res.trials["task"].tolist() == ["modular:x+y", "modular:x*y", "modular:x*y"]
    assert res.trials["status"].tolist() == ["unknown"] * 3
