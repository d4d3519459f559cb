"""The Ray Tune adapter with a real local Ray: reports, checkpoints, PBT clones with a new lr."""

import json
import math
from pathlib import Path

import pytest

from orchestrator.config.experiment import config_from_dict
from orchestrator.sweep.objective import ScoreState
from orchestrator.config.trial import maker_for
from tests.conftest import TINY, deep_merge
from trials.checkpoint import load_checkpoint
from trials.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    import ray  # deferred: a required dependency (no importorskip), imported only when this fixture starts it

    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def sweep_cfg(**search):
    base = deep_merge(TINY, {"train": {"steps": 60, "target_val_acc": 1.0, "target_patience": 0,
                                       "checkpoint_every": 20, "per_class_metrics": True},
                             "search": {"space": {"optim.lr": {"loguniform": [1e-3, 1e-2]}}, **search}})
    return config_from_dict(base)


def run_tuner(cfg, storage, param_space, scheduler=None, num_samples=1, checkpoints=None):
    from ray import tune

    from orchestrator.sweep.adapter import EVERY_SAVE, population_trainable, trainable

    checkpoints = checkpoints or EVERY_SAVE
    if cfg.search.seeds_per_trial > 1:
        fn = tune.with_parameters(population_trainable, make_members=maker_for(cfg).members, scorer=ScoreState,
                                  vectorize=cfg.search.population_vectorize, checkpoints=checkpoints)
    else:
        fn = tune.with_parameters(trainable, make_config=maker_for(cfg), scorer=ScoreState, checkpoints=checkpoints)
    tuner = tune.Tuner(
        tune.with_resources(fn, {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(metric="grok_score", mode="min", num_samples=num_samples, scheduler=scheduler),
        run_config=tune.RunConfig(name="adapter", storage_path=str(storage), verbose=0),
    )
    return tuner.fit()


def rows(result):
    path = result.path + "/result.json"
    return [json.loads(line) for line in open(path) if line.strip()]


def test_every_eval_is_reported_with_score_and_resources_and_checkpoints_load_safely(ray_local, tmp_path):
    cfg = sweep_cfg()
    grid = run_tuner(cfg, tmp_path, {"optim.lr": 3e-3})
    assert not grid.errors
    result = grid[0]
    reported = rows(result)
    # the same run without Ray gives the same evals (the adapter only forwards)
    plain = []
    direct = train(maker_for(cfg)({"optim.lr": 3e-3}), lambda r, save=None: plain.append(r))
    assert [r["step"] for r in reported[:-1]] == [r["step"] for r in plain]
    assert [r["val_acc"] for r in reported[:-1]] == pytest.approx([r["val_acc"] for r in plain])
    for r in reported:
        assert {"grok_score", "device", "cpu_time_s", "peak_memory_mb", "val_acc_per_class"} <= set(r)
        assert r["device"] == "cpu" and r["peak_memory_mb"] > 0 and math.isfinite(r["grok_score"])
    closing = reported[-1]
    assert closing["status"] == direct.status == "budget" and closing["step"] == 60
    assert closing["grok_score"] > cfg.train.steps  # not at target (target 1.0, patience 0)
    checkpoint = result.checkpoint
    assert checkpoint is not None
    with checkpoint.as_directory() as d:
        state = load_checkpoint(d)  # torch.load(weights_only=True) inside
        assert state["progress"]["step"] == 60
        adapter_state = json.load(open(f"{d}/tune_state.json"))
        assert adapter_state["finished"]["status"] == "budget"
    # each checkpoint carries every report up to it: what mends a result.json that lags it
    for d in Path(result.path).glob("checkpoint_*"):
        carried = json.load(open(d / "tune_state.json"))["curve"]
        upto = [r for r in reported if r["step"] <= carried[-1]["step"]]
        assert [(c["step"], c["val_acc"]) for c in carried] == [(r["step"], r["val_acc"]) for r in upto]
    # every offered save became a checkpoint once: the last step's goes only with the closing report
    saved = sorted(json.load(open(d / "tune_state.json"))["resumed_from_step"] for d in Path(result.path).glob("checkpoint_*"))
    offered = [r["step"] for r in plain if r["step"] >= 20 and r["step"] < 60]
    assert saved[-1] == 60 and len(saved) == len(set(saved)) >= 3 and set(saved[:-1]) <= set(offered)


def test_a_rate_limited_policy_hands_tune_no_checkpoint_in_a_short_trial(ray_local, tmp_path):
    """orchestrator.sweep.driver.checkpoint_policy: a checkpoint only when something can read it, at most
    one per period; a trial shorter than the period never checkpoints, not even when it closes."""
    from orchestrator.sweep.driver import CHECKPOINT_PERIOD_S, checkpoint_policy
    from orchestrator.sweep.adapter import CheckpointPolicy

    def policy(**search):
        return checkpoint_policy(sweep_cfg(**search).search)

    assert policy(max_failures=0) == CheckpointPolicy(enabled=False, min_interval_s=CHECKPOINT_PERIOD_S)
    assert policy(max_failures=2) == CheckpointPolicy(enabled=True, min_interval_s=CHECKPOINT_PERIOD_S)
    assert policy(max_failures=0, checkpoint_every=20) == CheckpointPolicy(enabled=True, min_interval_s=0.0)
    cfg = sweep_cfg(max_failures=2)
    grid = run_tuner(cfg, tmp_path, {"optim.lr": 3e-3}, checkpoints=policy(max_failures=2))
    assert not grid.errors
    result = grid[0]
    assert result.checkpoint is None and not list(Path(result.path).glob("checkpoint_*"))
    reported = rows(result)
    assert reported[-1]["status"] == "budget" and reported[-1]["step"] == 60  # the closing report still comes


@pytest.mark.parametrize("seeds_per_trial", [1, 2])
def test_pbt_clones_weights_and_applies_the_new_lr(ray_local, tmp_path, seeds_per_trial):
    """Also for population trials (seeds_per_trial 2): a clone restores the donor's population."""
    from ray.tune.schedulers import PopulationBasedTraining

    from ray import tune

    cfg = config_from_dict(deep_merge(TINY, {
        "task": {"p": 11}, "train": {"steps": 100, "target_val_acc": 1.0, "target_patience": 0, "checkpoint_every": 25},
        "search": {"space": {"optim.lr": {"loguniform": [1e-4, 1e-2]}}, "seeds_per_trial": seeds_per_trial}}))
    # synch: both trials reach each perturbation point before any exploits, so the donor always
    # has a checkpoint there (asynchronous PBT skipped every exploit when one trial lagged).
    pbt = PopulationBasedTraining(time_attr="step", perturbation_interval=25, quantile_fraction=0.5,
                                  hyperparam_mutations={"optim.lr": [1e-4, 2e-3, 4e-3, 1e-2]}, synch=True)
    grid = run_tuner(cfg, tmp_path, {"optim.lr": tune.grid_search([1e-4, 1e-2])}, pbt)
    assert not grid.errors
    cloned = []
    for result in grid:
        for r in rows(result):
            if r.get("iterations_since_restore") == 1 and r["training_iteration"] > 1:
                cloned.append((r, result))
    assert cloned, "PBT never exploited a trial"
    for r, result in cloned:
        assert r["resumed_from_step"] >= 20  # continued from a checkpoint, not from step 0
        assert r["step"] > r["resumed_from_step"]
        # the config after the perturbation is the one training uses from the next step on
        assert r["lr"] == pytest.approx(r["config"]["optim.lr"])
        assert r.get("members_live", 1) == seeds_per_trial  # members never stop here (target 1.0, patience 0)


def test_a_resumed_trial_uses_its_new_weight_decay(tmp_path):
    """What PBT needs from a clone: the perturbed weight decay must act after the restore."""

    def keep(record, save=None):
        if save is not None and record["step"] == 20:
            save(tmp_path / "ck")

    # no_decay: [] so that every parameter decays (LayerNorm gains would otherwise dominate the norm)
    train(config_from_dict(deep_merge(TINY, {"optim": {"no_decay": []},
                                             "train": {"steps": 20, "checkpoint_every": 20}})), keep)
    heavy = config_from_dict(deep_merge(TINY, {"optim": {"weight_decay": 50.0, "lr": 1e-2, "no_decay": []},
                                               "train": {"steps": 30, "checkpoint_every": 20}}))
    light = config_from_dict(deep_merge(TINY, {"optim": {"lr": 1e-2, "no_decay": []},
                                               "train": {"steps": 30, "checkpoint_every": 20}}))
    norms = {}
    for name, c in (("heavy", heavy), ("light", light)):
        out = []
        train(c, lambda r, save=None: out.append(r), resume_from=tmp_path / "ck")
        norms[name] = out[-1]["param_norm"]
    # (1 - lr * wd) = 0.5 per step for 10 steps would shrink the weights ~1000x
    assert norms["heavy"] < 0.1 * norms["light"]
