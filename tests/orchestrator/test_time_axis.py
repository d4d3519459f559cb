"""One time axis, the optimizer step: schedulers, TensorBoard and the Optuna study.

Fast tier: the schedulers are built on `step` with budgets in steps; StepTensorBoard names a
run by its hyperparameters and writes each step once, at the optimizer step, through Tune's
own callback hooks on a real Trial.
Slow tier: the session's real TPE + ASHA sweep (tests/shared_sweep.py) on the embedded Ray with a
journal Optuna storage; its TensorBoard events (read with tensorboard's EventAccumulator) sit at the
trial's optimizer steps, and its Optuna study (read from the journal file) holds PRUNED trials
exactly where the ledger says pruned, COMPLETE ones where a trial ended on its own. While it
runs, `status` reports it running; after, finished.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from groktune.layout import TIME_ATTR
from groktune.space import parse_space
from orchestrator.config.experiment import config_from_dict
from orchestrator.search.algos import build_scheduler
from tests import shared_sweep

ROOT = Path(__file__).resolve().parents[2]


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of every event file in one TensorBoard run folder."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


# --- fast -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["asha", "hyperband", "pbt"])
def test_schedulers_count_optimizer_steps(name):
    search = {"space": {"optim.lr": {"loguniform": [1e-3, 1e-2]}}, "scheduler": name, "grace_period": 150,
              "perturbation_interval": 250}
    if name == "pbt":
        search["algorithm"] = "pbt"
    cfg = config_from_dict({"name": "t", "task": {"name": "modular", "op": "x+y", "p": 23}, "train": {"steps": 2000},
                       "search": search})
    sched = build_scheduler(cfg.search, cfg.train.steps)
    assert TIME_ATTR == "step" and sched._time_attr == "step"
    if name == "asha":
        assert sched._max_t == 2000 and [milestone for milestone, _ in sched._brackets[0]._rungs] == [1350, 450, 150]
    if name == "hyperband":
        assert sched._max_t_attr == 2000
    if name == "pbt":
        assert sched._perturbation_interval == 250


def test_run_names_carry_the_searched_values():
    from orchestrator.sweep.callbacks import run_name

    point = {"optim.lr": 0.003, "optim.weight_decay": 1.0, "task.op": "x*y", "seed": 2, "__trial_index__": 0}
    assert run_name("ab12_00003", point, ["optim.lr", "optim.weight_decay", "task.op"]) == \
        "trial_ab12_00003_lr=0.003,weight_decay=1,op=x_y,seed=2"
    # Two keys with one last component: spelled out in full.
    assert run_name("x", {"optim.lr": 1e-4, "model.lr": 2}, ["optim.lr", "model.lr"]) == \
        "trial_x_optim.lr=0.0001,model.lr=2"
    assert len(run_name("x", {f"k{i}.v{i}": 1.0 for i in range(60)}, [f"k{i}.v{i}" for i in range(60)])) == 120


def test_tensorboard_writes_each_step_once_at_the_optimizer_step(tmp_path):
    from ray.tune.experiment import Trial

    from orchestrator.sweep.callbacks import StepTensorBoard

    board = StepTensorBoard(tmp_path, parse_space({"optim.lr": {"loguniform": [1e-4, 1e-2]}}))
    trial = Trial("fn", config={"optim.lr": 0.003}, trial_id="ab12_00001", stub=True)
    rec = lambda step, acc, **kw: {"step": step, "val_acc": acc, "training_iteration": 1, "pid": 7, **kw}  # noqa: E731
    board.on_trial_start(0, [trial], trial)
    for step, acc in ((100, 0.1), (200, 0.5)):
        board.on_trial_result(0, [trial], trial, rec(step, acc))
    board.on_trial_start(0, [trial], trial)  # a retry from the checkpoint at step 100
    board.on_trial_result(0, [trial], trial, rec(150, 0.3))  # already past: skipped
    board.on_trial_result(0, [trial], trial, rec(300, 0.99))
    board.on_trial_result(0, [trial], trial, rec(300, 0.99, steps_to_target=280, grok_score=280.0))  # closing
    board.on_trial_complete(0, [trial], trial)
    (run,) = (tmp_path / "tensorboard").iterdir()
    assert run.name == "trial_ab12_00001_lr=0.003"
    tags = scalars(run)
    assert [s for s, _ in tags["val_acc"]] == [100, 200, 300]
    assert tags["steps_to_target"] == [(300, 280.0)] and "pid" not in tags and "training_iteration" not in tags


def test_tensorboard_names_a_run_by_the_values_the_trial_trained_with(tmp_path):
    """A per-value range is sampled as a position u; the run name (and hparams) show the
    resolved learning rate, also after a pickle round trip (Tune's tuner.pkl) and for a
    callback pickled before the space was kept (only its keys)."""
    import pickle

    from ray.tune.experiment import Trial

    from orchestrator.sweep.callbacks import StepTensorBoard

    space = {"optim.name": {"choice": ["adamw", "lion"]},
             "optim.lr": {"loguniform_per": {"optim.name": {"adamw": [1e-3, 1e-1], "lion": [1e-5, 1e-3]}}}}
    board = pickle.loads(pickle.dumps(StepTensorBoard(tmp_path, parse_space(space))))
    trial = Trial("fn", config={"optim.name": "lion", "optim.lr": 0.5}, trial_id="ab12_00002", stub=True)
    board.on_trial_start(0, [trial], trial)
    board.on_trial_complete(0, [trial], trial)
    assert [p.name for p in (tmp_path / "tensorboard").iterdir()] == ["trial_ab12_00002_name=lion,lr=0.0001"]
    old = StepTensorBoard.__new__(StepTensorBoard)
    old.__setstate__({"root": tmp_path / "old" / "tensorboard", "keys": ["optim.lr"]})
    assert old._values(trial)["optim.lr"] == 0.5  # shown as sampled: an old folder has no space
    older = StepTensorBoard.__new__(StepTensorBoard)  # a tuner.pkl that kept the space as written
    older.__setstate__({"root": tmp_path / "older" / "tensorboard", "space": space})
    assert older._values(trial)["optim.lr"] == pytest.approx(1e-4) and older.keys == list(space)


# --- slow: the "Done when" sweep (the session's shared TPE + ASHA sweep, tests/shared_sweep.py) ---


@pytest.mark.slow
def test_sweep_tensorboard_and_optuna_study_are_on_optimizer_steps_with_pruned_trials(tpe_asha_sweep):
    sweep, exp = tpe_asha_sweep, tpe_asha_sweep.exp
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    assert f"tensorboard --logdir {exp / 'tensorboard'}" in sweep.stdout
    running = sweep.running
    assert running is not None, "status never saw the sweep running"
    assert running["status"] == "running" and any(t["status"] == "running" for t in running["trials"])

    trials = pd.read_parquet(exp / "trials.parquet")
    curves = pd.read_parquet(exp / "curves.parquet")
    # TensorBoard: one run per trial named by its lr, scalars at exactly the trial's optimizer steps.
    runs = {p.name.split("_lr=")[0].removeprefix("trial_"): p for p in (exp / "tensorboard").iterdir()}
    assert set(runs) == set(trials["trial_id"])
    for tid, run in runs.items():
        steps = sorted(curves.loc[curves["trial_id"] == tid, "step"])
        tb_steps = [s for s, _ in scalars(run)["val_acc"]]
        assert tb_steps == steps and tb_steps[-1] > len(tb_steps)  # steps 20, 40, ..., not reports 1, 2, ...

    # Optuna study, read from the journal as optuna-dashboard reads it.
    study = optuna.load_study(study_name=shared_sweep.NAME, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep.journal))))
    by_lr = {round(t.params["optim.lr"], 12): t for t in study.trials}
    assert len(by_lr) == len(trials) == shared_sweep.TRIALS == 8
    expected = {"pruned": TrialState.PRUNED, "grokked": TrialState.COMPLETE, "budget": TrialState.COMPLETE,
                "diverged": TrialState.COMPLETE}
    for _, row in trials.iterrows():
        ot = by_lr[round(row["optim.lr"], 12)]
        assert ot.state == expected[row["status"]], (row["trial_id"], row["status"], ot.state)
        steps = set(curves.loc[curves["trial_id"] == row["trial_id"], "step"])
        assert set(ot.intermediate_values) <= steps and max(ot.intermediate_values) == row["final_step"]
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states, trials[["trial_id", "status"]]

    final = json.loads(subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "status", str(exp), "--json"],
                                      cwd=ROOT, env=env, capture_output=True, text=True, timeout=120).stdout)
    assert final["status"] == "finished" and sum(final["counts"].values()) == 8
    assert {t["trial_id"] for t in final["trials"]} == set(trials["trial_id"])

    # The docs' "Ray's own view of the results" snippet (docs/live.md), run as written on this sweep's folder.
    snippet = docs_snippet("ResultGrid").replace("results/demo_sweep", str(exp))
    ran = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.startswith("8 0 {'optim.lr': ") and "val_acc" in ran.stdout


def docs_snippet(needle: str) -> str:
    """The first python block of docs/live.md ("Following a sweep live") that contains `needle`."""
    text = (ROOT / "docs" / "live.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    return next(b for b in blocks if needle in b)


def test_the_docs_resultgrid_snippet_is_there():
    snippet = docs_snippet("ResultGrid")
    assert 'ResultGrid(ExperimentAnalysis("results/demo_sweep"' in snippet and "get_best_result()" in snippet

