"""benchmarks/replay_vs_sweep.py: its replay of Ray's ASHA and its reading of a sweep folder."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "replay_vs_sweep.py"
spec = importlib.util.spec_from_file_location("replay_vs_sweep", PATH)
rvs = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = rvs
spec.loader.exec_module(rvs)


def test_a_folder_that_is_not_a_finished_sweep_is_refused_with_exit_2(tmp_path, capsys):
    assert rvs.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err
    assert list(tmp_path.iterdir()) == []


def test_start_order_comes_from_the_ledger(tmp_path):
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "a.starts").write_text("11 200.5\n12 300.0\n")
    assert rvs.started_at(tmp_path, "a") == 200.5 and rvs.started_at(tmp_path, "b") == float("inf")


def test_replay_stops_the_worse_trial_at_the_rung_and_keeps_the_better():
    steps = np.arange(10, 310, 10)
    curves = {"good": {"step": steps, "score": np.full(len(steps), 1.0)},
              "bad": {"step": steps, "score": np.full(len(steps), 2.0)},
              "worse": {"step": steps, "score": np.full(len(steps), 3.0)}}
    reached = rvs.replay(curves, ["good", "bad", "worse"], k=1, budget=300, grace=100, rf=3)
    assert reached == {"good": 300, "bad": 100, "worse": 100}
