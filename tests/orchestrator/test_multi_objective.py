"""orchestrator/search/multi_objective.py and its wiring: search.metric / search.mode as lists.

Fast tier: what validation accepts and refuses (one line, before Ray), the TuneConfig / searcher
split of the objectives, and the NSGA-II searcher's construction.
Slow tier: a real multi-objective sweep (local Ray, population trials, Optuna study in a journal
file) whose Optuna Pareto front is the one analysis.pareto computes from trials.parquet, and
whose report draws it.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from groktune.errors import ConfigError
from orchestrator.config.experiment import load_config
from orchestrator.search.multi_objective import objectives, searcher_objective, tune_objective

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo_sweep.yaml"
MULTI = ["search.metric=[grok_score, failure_rate]", "search.mode=[min, min]", "search.scheduler=fifo",
         "search.seeds_per_trial=3", "search.seeds=[0]"]


def test_lists_are_accepted_and_split_between_tune_and_the_searcher():
    for algorithm in ("tpe", "nsga2", "random"):
        cfg = load_config(CONFIG, MULTI + [f"search.algorithm={algorithm}"])
        s = cfg.search
        assert objectives(s) == [("grok_score", "min"), ("failure_rate", "min")]
        assert tune_objective(s) == {"metric": None, "mode": None}
        assert searcher_objective(s) == {"metric": ["grok_score", "failure_rate"], "mode": ["min", "min"]}


def test_a_single_metric_is_unchanged():
    s = load_config(CONFIG, ["search.mode=max", "search.metric=val_acc"]).search
    assert s.scheduler == "asha"  # any scheduler with one metric
    assert objectives(s) == [("val_acc", "max")]
    assert tune_objective(s) == {"metric": "val_acc", "mode": "max"} and searcher_objective(s) == {}


REFUSED = [
    (["search.metric=[grok_score, val_acc]", "search.mode=[min]"], "search.metric: got 2 metric(s) and 1 mode(s)"),
    (["search.metric=[grok_score, val_acc]", "search.mode=min"], "search.mode: got 'min' for metric"),
    (["search.metric=grok_score", "search.mode=[min, max]"], "give both as lists of equal length"),
    (["search.metric=[grok_score, val_acc]", "search.mode=[min, best]"], "search.mode: got 'best' in"),
    (["search.mode=avg"], "search.mode: got 'avg', allowed: min, max"),
    (["search.metric=[grok_score, grok_score]", "search.mode=[min, min]"], "each metric at most once"),
    (["search.metric=[grok_score, steps_to_target]", "search.mode=[min, min]"],
     "search.metric: got 'steps_to_target', not reported at every eval"),
    (["search.metric=[grok_score, failure_rate]", "search.mode=[min, min]", "search.scheduler=fifo"],
     "search.metric: failure_rate is a share of a trial's seeds; set search.seeds_per_trial > 1"),
    (["search.metric=[grok_score, val_acc]", "search.mode=[min, max]"],
     "search.scheduler: got asha with 2 metrics; asha compares trials on one metric; with several use "
     "scheduler: fifo"),
    (["search.metric=[grok_score, val_acc]", "search.mode=[min, max]", "search.scheduler=hyperband"],
     "search.scheduler: got hyperband with 2 metrics"),
    (["search.metric=[grok_score, val_acc]", "search.mode=[min, max]", "search.scheduler=pbt",
      "search.algorithm=pbt", "search.space={optim.lr: {loguniform: [1.0e-3, 1.0e-2]}}"],
     "search.scheduler: got pbt with 2 metrics"),
    (["search.metric=[grok_score, val_acc]", "search.mode=[min, max]", "search.scheduler=fifo",
      "search.seeds=[0, 1]"], "search.seeds: got 2 seeds with several metrics"),
]


@pytest.mark.parametrize("overrides,needle", REFUSED)
def test_refused_in_one_line(overrides, needle):
    with pytest.raises(ConfigError) as err:
        load_config(CONFIG, overrides)
    message = str(err.value)
    assert needle in message and "\n" not in message, message


def test_cli_refuses_asha_with_several_metrics_before_ray(tmp_path):
    """Exit 2, one line, no Ray imported, nothing written."""
    probe = ("import sys; from orchestrator.cli.main import main; "
             f"rc = main(['sweep', {str(CONFIG)!r}, '--storage', {str(tmp_path / 'res')!r}, "
             "'--set', 'search.metric=[grok_score, val_acc]', '--set', 'search.mode=[min, max]']); "
             "print(rc, 'ray' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groktune: error: search.scheduler: got asha"), lines
    assert not (tmp_path / "res").exists()


def test_nsga2_builds_an_optuna_searcher_with_both_objectives():
    from orchestrator.search.optuna_searcher import StepOptunaSearch
    from orchestrator.search.algos import build_searcher

    cfg = load_config(CONFIG, MULTI + ["search.algorithm=nsga2"])
    searcher = build_searcher(cfg.search, 0, "study")
    assert isinstance(searcher, StepOptunaSearch)
    assert searcher.metric == ["grok_score", "failure_rate"] and searcher.mode == ["min", "min"]
    assert isinstance(searcher._sampler, optuna.samplers.NSGAIISampler)


SWEEP = {
    "name": "mo_sweep",
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 13, "train_fraction": 0.8},
    "model": {"n_layers": 1, "d_model": 32, "n_heads": 4, "d_ff": 64},
    "optim": {"name": "adamw", "lr": 3e-3, "weight_decay": 1.0},
    "train": {"steps": 250, "batch_size": 64, "target_val_acc": 0.9, "target_patience": 2, "eval_every": 25,
              "eval_dense_until": 0, "checkpoint_every": 100, "per_class_metrics": False},
    "search": {"space": {"optim.lr": {"loguniform": [1e-3, 3e-2]}, "optim.weight_decay": {"uniform": [0.1, 2.0]}},
               "algorithm": "tpe", "scheduler": "fifo", "metric": ["grok_score", "failure_rate"],
               "mode": ["min", "min"], "num_samples": 3, "cpus_per_trial": 1, "seeds": [0], "seeds_per_trial": 2,
               "reuse_actors": True},
}


@pytest.mark.slow
def test_a_real_multi_objective_sweep_and_its_pareto_front(tmp_path):
    """3 population trials (2 seeds each) through TPE on two objectives; the study in a journal
    file is multi-objective, told each trial's final values, and its best_trials (Optuna's own
    Pareto front) are the trials analysis.pareto puts on the front; the report draws it.
    About 40 s on an idle 2-core CPU (minutes when the machine is shared)."""
    import optuna

    from analysis.pareto import objective_costs, pareto_mask

    journal = tmp_path / "study.log"
    data = {**SWEEP, "search": {**SWEEP["search"], "optuna_storage": str(journal)}}
    cfg = tmp_path / "mo.yaml"
    cfg.write_text(yaml.safe_dump(data))
    storage = tmp_path / "res"
    env_run = dict(cwd=ROOT, capture_output=True, text=True, timeout=900)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "sweep", str(cfg), "--storage", str(storage),
                           "--quiet"], **env_run)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    trials = pd.read_parquet(storage / "mo_sweep" / "trials.parquet")
    assert len(trials) == 3
    assert trials["final_failure_rate"].between(0, 1).all()

    study = optuna.load_study(study_name="mo_sweep", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    assert len(study.directions) == 2
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3
    told = sorted(tuple(t.values) for t in done)
    table = sorted(zip(trials["final_grok_score"], trials["final_failure_rate"]))
    assert np.allclose(told, table)
    objectives = [("grok_score", "min"), ("failure_rate", "min")]
    front = pareto_mask(objective_costs(trials, objectives))
    ours = sorted(tuple(v) for v in trials.loc[front, ["final_grok_score", "final_failure_rate"]].to_numpy())
    assert np.allclose(sorted(tuple(t.values) for t in study.best_trials), ours)

    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "report", str(storage / "mo_sweep"),
                           "--out", str(out)], **env_run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "figures" / "pareto_front.png").stat().st_size > 1000
    assert "Pareto front (multi-objective search)" in (out / "report.md").read_text()
