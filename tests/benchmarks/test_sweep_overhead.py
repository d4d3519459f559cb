"""The arithmetic of benchmarks/sweep_overhead.py (no timing: the numbers are made up)."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "sweep_overhead.py"
spec = importlib.util.spec_from_file_location("sweep_overhead", PATH)
so = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = so  # dataclasses look their module up
spec.loader.exec_module(so)


def test_wall_splits_into_train_steps_evals_and_other():
    train = so.train_step_seconds(steps=300, n_evals=30, step_s=0.04, step_at_eval_s=0.05)
    assert train == pytest.approx(270 * 0.04 + 30 * 0.05)
    split = so.split_wall(40.0, train, evals_s=4.5)
    assert split["other"] == pytest.approx(40.0 - 12.3 - 4.5)
    assert split["train"] + split["evals"] + split["other"] == pytest.approx(split["wall"])
    assert split["outside"] == pytest.approx((40.0 - 12.3) / 40.0)
    assert math.isnan(so.split_wall(0.0, 0.0, 0.0)["outside"])


def test_a_trial_slot_opens_at_the_start_or_when_the_trial_it_replaces_ends():
    starts = {"a": 5.0, "b": 6.0, "c": 45.0, "d": 47.0}
    ends = {"a": 40.0, "b": 42.0, "c": 80.0, "d": 83.0}
    assert so.slot_starts(0.0, starts, ends, concurrency=2) == {"a": 0.0, "b": 0.0, "c": 40.0, "d": 42.0}
    # a trial never starts before its slot opens
    assert so.slot_starts(0.0, {"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}, concurrency=1)["b"] == 2.0


def test_step_cost_fit_recovers_slope_and_fixed_cost():
    points = [(n, 0.07 * n + 0.25) for n in (9, 10, 2, 12, 6, 20)]
    slope, fixed = so.fit_step_cost(points)
    assert slope == pytest.approx(0.07) and fixed == pytest.approx(0.25)
    assert all(math.isnan(v) for v in so.fit_step_cost([(10, 1.0), (10, 1.1)]))
    assert all(math.isnan(v) for v in so.fit_step_cost([(10, 1.0)]))
