"""The analysis on curves from real training runs of the project's own trainer.

Fast tests read the committed fixtures (tests/analysis/fixtures/*.json: x*y mod 97 with Grokfast
EMA, and with AdamW wd 1 and no filter, early stop at the target off; each fixture stores the
command that made it, see make_real_runs.py). Both runs grok, then fall below the target and
recover every 200-300 steps (slingshots): the onset must be the first streak, every collapse must
be found, and the trainer's stop rule, grok_score and detect_grokking must agree.

Slow tests train small x+y mod 23 runs now: the trainer decides "grokked" with its own stop rule
while training; the analysis, reading only the saved files, must find the same step, and the
report must be written from those files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import detect_grokking, load
from groktune.events import DEFAULT_PATIENCE, event_patience
from orchestrator.sweep.objective import scores_for_curve
from trials.evalplan import StopRule

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.json"))
THRESHOLDS = (0.95, 0.99)


@pytest.fixture(scope="module", params=[f.stem for f in FIXTURES])
def real(request):
    data = json.loads((Path(__file__).parent / "fixtures" / f"{request.param}.json").read_text())
    data["curve"] = pd.DataFrame(data["records"])
    data["train"] = yaml.safe_load(data["config"])["train"]
    return data


def first_window(values, threshold, patience=DEFAULT_PATIENCE):
    """Truth by brute force, written apart from groktune.events: the first index whose next
    `patience` values (pandas' rolling minimum, read backwards) are all at the threshold."""
    lows = pd.Series(values[::-1]).rolling(patience).min()[::-1].to_numpy()  # min of v[i:i+patience]
    hits = np.flatnonzero(lows >= threshold)
    return int(hits[0]) if hits.size else None


def dips_after(values, start):
    """Truth by brute force: (first, recovery-or-None) indices of each run below the threshold
    after index `start`, from the edges of the boolean series."""
    below = np.concatenate([[False], ~values[start + 1:], [False]]).astype(int)
    edges = np.diff(below)
    firsts, ends = np.flatnonzero(edges == 1) + start + 1, np.flatnonzero(edges == -1) + start + 1
    return [(int(a), int(b) if b < len(values) else None) for a, b in zip(firsts, ends)]


def test_fixtures_are_real_slingshot_runs_with_their_command():
    assert len(FIXTURES) == 2 and sum(f.stat().st_size for f in FIXTURES) < 300_000
    for f in FIXTURES:
        data = json.loads(f.read_text())
        assert data["command"].startswith("groktune train ") and "train.target_patience=0" in data["overrides"]
        assert set(data["records"][0]) == {"step", "train_acc", "val_acc", "train_loss", "val_loss", "param_norm"}


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_onsets_are_the_first_streak_within_one_eval_interval(real, threshold):
    c = real["curve"]
    steps = c["step"].to_numpy()
    ev = detect_grokking(c["step"], c["train_acc"], c["val_acc"], threshold=threshold)
    for got, column in ((ev.generalized_step, "val_acc"), (ev.memorized_step, "train_acc")):
        i = first_window(c[column].to_numpy(), threshold)
        assert i is not None and got is not None, column
        interval = steps[min(i + 1, len(steps) - 1)] - steps[max(i - 1, 0)]
        assert abs(got - steps[i]) <= interval, (column, got, steps[i])
    # the runs really collapse after grokking, and a dip never moved the onset to a later streak
    assert ev.n_collapses >= 5 and ev.generalized_step < steps[len(steps) // 3]
    assert ev.phase in ("comprehension", "grokking")


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_every_collapse_is_counted_and_placed(real, threshold):
    c = real["curve"]
    steps, val = c["step"].to_numpy(), c["val_acc"].to_numpy()
    ev = detect_grokking(c["step"], c["train_acc"], c["val_acc"], threshold=threshold,
                         train_loss=c["train_loss"], param_norm=c["param_norm"])
    start = int(np.flatnonzero(steps == ev.generalized_step)[0])
    truth = dips_after(val >= threshold, start)
    assert ev.n_collapses == len(truth) == len(ev.collapses)
    for got, (a, b) in zip(ev.collapses, truth):
        two = steps[min(a + 2, len(steps) - 1)] - steps[max(a - 2, 0)]
        assert abs(got.step - steps[a]) <= two
        assert got.depth == pytest.approx(val[a:b].min()) and got.depth < threshold
        assert got.recovered_step == (None if b is None else steps[b])
        assert got.train_loss_spike is not None and got.param_norm_change is not None
    gaps = np.diff([steps[a] for a, _ in truth])
    assert ev.collapse_period == pytest.approx(float(np.median(gaps)))
    after = val[start:]
    assert ev.at_target_share == pytest.approx(float(np.mean(after >= threshold)))


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_trainer_score_and_analysis_agree_on_the_step(real, threshold):
    c = real["curve"]
    records = real["records"]
    patience = event_patience(real["train"]["target_patience"])  # 0 in the fixtures: the default
    rule = StopRule(threshold, real["train"]["target_patience"])
    stops = [rule.update(r["step"], r["val_acc"], r["val_loss"], True) for r in records]
    assert stops == [None] * len(records)  # target_patience 0: the trainer never stopped early
    assert rule.final_status(None) == "grokked"
    budget = int(real["train"]["steps"])
    scores = scores_for_curve(records, threshold, budget, chance=1 / 97, patience=patience)
    ev = detect_grokking(c["step"], c["train_acc"], c["val_acc"], threshold=threshold, patience=patience)
    assert ev.generalized_step is not None
    assert rule.event == scores[-1] == ev.generalized_step
    # the rule that stops at the target stops at that same step
    stopping = StopRule(threshold, patience)
    stop_at = next(r["step"] for r in records if stopping.update(r["step"], r["val_acc"], r["val_loss"], True))
    assert stopping.event == ev.generalized_step and stop_at >= ev.generalized_step

CONFIG = """
name: analysis_real
seed: 0
task: {name: modular, op: "x+y", p: 23, train_fraction: 0.6}
model: {n_layers: 1, d_model: 64, n_heads: 4, d_ff: 256}
optim: {name: adamw, lr: 1.0e-2, weight_decay: 1.0, schedule: constant, warmup_steps: 10}
train: {steps: 3000, batch_size: 128, target_val_acc: 0.95, target_patience: 3, eval_every: 50,
        checkpoint_every: 1000, device: cpu, num_threads: 1}
"""


def groktune(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    (root / "exp.yaml").write_text(CONFIG)
    for name, wd in (("wd1", 1.0), ("wd0.3", 0.3)):
        proc = groktune("train", root / "exp.yaml", "--out", root / "runs" / name,
                        "--set", f"optim.weight_decay={wd}")
        assert proc.returncode == 0, proc.stderr[-2000:]
    return root


@pytest.mark.slow
def test_detected_generalisation_matches_the_trainers_stop_rule(runs):
    statuses = []
    for run in sorted((runs / "runs").iterdir()):
        result = json.loads((run / "result.json").read_text())
        curves = load(run).curves
        ev = detect_grokking(curves["step"], curves["train_acc"], curves["val_acc"],
                             threshold=0.95, patience=3)
        # One rule on both sides: at the target for `patience` evals in a row (StopRule).
        statuses.append(result["status"])
        if result["status"] == "grokked":
            assert ev.generalized_step == result["steps_to_target"]
        else:
            assert ev.generalized_step is None
        assert ev.memorized_step is not None  # x+y mod 23 is memorised within a few hundred steps
        if ev.generalized_step is not None:
            assert ev.delay == ev.generalized_step - ev.memorized_step
    # The grokked branch (equality with the trainer's steps_to_target) was taken: both runs grok.
    assert "grokked" in statuses and len(statuses) == 2, statuses


@pytest.mark.slow
def test_report_on_a_real_run_and_a_folder_of_runs(runs):
    for path, n in ((runs / "runs" / "wd1", 1), (runs / "runs", 2)):
        out = runs / f"report_{n}"
        proc = groktune("report", path, "--out", out)
        assert proc.returncode == 0, proc.stderr[-2000:]
        summary = pd.read_csv(out / "summary.csv")
        assert len(summary) == n
        assert set(summary["phase"]) <= {"comprehension", "grokking", "memorization", "confusion"}
        assert (out / "report.html").stat().st_size > 10_000
        assert "optim.weight_decay" in (out / "report.md").read_text() or n == 1
        assert list((out / "figures").glob("curves_*.png"))


@pytest.mark.slow
def test_report_on_a_real_small_sweep(real_sweep_report, tmp_path):
    """`groktune report` on the session's real small sweep (tests/analysis/real_sweep.py: 4 trials)."""
    sweep, _ = real_sweep_report
    res = load(sweep)
    assert res.kind == "sweep" and len(res.trials) == 4
    assert res.searched == ["optim.lr", "train.batch_size"]
    proc = groktune("report", sweep, "--out", tmp_path / "report")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "report"
    assert len(pd.read_csv(out / "summary.csv")) == 4
    md = (out / "report.md").read_text()
    assert "Too few trials for importances" in md  # 4 trials: a note, not an error
    assert (out / "figures" / "phase_diagram.png").is_file()
    assert (out / "figures" / "steps_map.png").is_file()
