"""A sweep: the Ray Tune Tuner over the trials adapter, started fresh or restored.

    cfg = load_config("configs/demo_sweep.yaml")
    outcome = run_sweep(cfg, storage="results", name=None, address=None, resume=False)

STORAGE/NAME/ holds Ray's own layout (one folder per trial with result.json, params.json,
checkpoints and TensorBoard events; the experiment state Tune restores from), plus
experiment.yaml (the resolved experiment config, search included), driver.json (the heartbeat
`groktune status` reads) and, at the end, curves.parquet and trials.parquet (orchestrator.results).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from orchestrator.config import ExperimentConfig, dump_config, load_config
from orchestrator.errors import UserError

EXPERIMENT_FILE = "experiment.yaml"


@dataclass
class SweepOutcome:
    path: Path
    wall_time: float
    trials: object  # pandas DataFrame of trials.parquet


def experiment_dir(cfg: ExperimentConfig, storage: str | Path, name: str | None) -> Path:
    return Path(storage).expanduser().resolve() / (name or cfg.name)


def prepare(cfg: ExperimentConfig, path: Path, resume: bool) -> ExperimentConfig:
    """Check the folder against --resume; return the config the sweep runs (the saved one on resume)."""
    from ray.tune import Tuner

    if cfg.search is None:
        raise UserError("search: missing; a sweep config needs a `search:` section (see configs/demo_sweep.yaml)")
    saved = path / EXPERIMENT_FILE
    if resume:
        if not Tuner.can_restore(str(path)):
            raise UserError(f"--resume: {path} holds no sweep to resume (no Tune state found)")
        resumed = load_config(saved) if saved.exists() else cfg
        if dump_config(resumed) != dump_config(cfg):
            print(f"groktune: note: resuming with the config saved in {saved}, not the one given", flush=True)
        return resumed
    if Tuner.can_restore(str(path)) or saved.exists():
        raise UserError(f"{path}: already holds a sweep; pass --resume to continue it, or choose another --name")
    path.mkdir(parents=True, exist_ok=True)
    saved.write_text(dump_config(cfg))
    return cfg


def build_trainable(cfg: ExperimentConfig):
    """The adapter with its config maker and scorer bound, and the per-trial resources.

    With search.seeds_per_trial > 1 a trial trains its point with that many seeds as one
    population in one process (trials.tune_adapter.population_trainable), on the same resources.
    """
    from ray import tune

    from orchestrator.objective import ScoreState
    from orchestrator.sweep_algos import checkpoint_every
    from orchestrator.trial_config import maker_for
    from trials.tune_adapter import population_trainable, trainable

    s = cfg.search
    maker = maker_for(cfg, {"train.checkpoint_every": checkpoint_every(s, cfg.train.checkpoint_every)})
    if s.seeds_per_trial > 1:
        bound = tune.with_parameters(population_trainable, make_members=maker.members, scorer=ScoreState,
                                     vectorize=s.population_vectorize)
    else:
        bound = tune.with_parameters(trainable, make_config=maker, scorer=ScoreState)
    return tune.with_resources(bound, {"cpu": s.cpus_per_trial, "gpu": s.gpus_per_trial})


def trial_dirname(trial) -> str:
    """Short trial folder names (Ray's default spells every parameter out)."""
    return f"trial_{trial.trial_id}"


def build_tuner(cfg: ExperimentConfig, path: Path, callbacks: Sequence = ()):
    """A fresh Tuner; `callbacks` are extra Tune callbacks (benchmarks/sweep_overhead.py's clock)."""
    from ray import tune

    from orchestrator.sweep_algos import build_scheduler, build_searcher, num_samples, param_space
    from orchestrator.sweep_callbacks import Heartbeat, tracking_callbacks

    s = cfg.search
    tune_config = tune.TuneConfig(
        metric=s.metric,
        mode=s.mode,
        search_alg=build_searcher(s, cfg.seed, path.name),
        scheduler=build_scheduler(s, cfg.train.steps),
        num_samples=num_samples(s),
        max_concurrent_trials=s.max_concurrent or None,
        reuse_actors=s.reuse_actors,  # off: one process per trial, its peak memory is its own
        trial_dirname_creator=trial_dirname,
        trial_name_creator=trial_dirname,
    )
    run_config = tune.RunConfig(
        name=path.name,
        storage_path=str(path.parent),
        failure_config=tune.FailureConfig(max_failures=s.max_failures),
        # PBT restores trials from other trials' checkpoints, possibly older than the newest two.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None if s.scheduler == "pbt" else 2),
        callbacks=[Heartbeat(str(path)), *tracking_callbacks(s.tracking, path.name), *callbacks],
        verbose=1,
    )
    return tune.Tuner(build_trainable(cfg), param_space=param_space(s), tune_config=tune_config, run_config=run_config)


def restore_tuner(cfg: ExperimentConfig, path: Path):
    """Tuner.restore: finished trials stay as they are; unfinished and errored ones continue
    from their last checkpoints; the searcher's and scheduler's state come back with it."""
    from ray import tune

    from orchestrator.sweep_algos import param_space

    return tune.Tuner.restore(
        str(path), trainable=build_trainable(cfg), resume_unfinished=True, resume_errored=True,
        param_space=param_space(cfg.search),
    )


def run_sweep(cfg: ExperimentConfig, storage: str | Path, name: str | None,
              address: str | None = None, resume: bool = False, callbacks: Sequence = ()) -> SweepOutcome:
    """Run (or resume) a sweep to the end; write both parquet files; return the trials table.

    `callbacks`: extra Tune callbacks for a fresh sweep (not used on resume)."""
    from orchestrator.raysession import start_ray, stop_ray
    from orchestrator.results import collect

    path = experiment_dir(cfg, storage, name)
    cfg = prepare(cfg, path, resume)
    started = time.perf_counter()
    start_ray(address)
    try:
        tuner = restore_tuner(cfg, path) if resume else build_tuner(cfg, path, callbacks)
        tuner.fit()
    finally:
        stop_ray()
    _, trials = collect(path)
    return SweepOutcome(path=path, wall_time=time.perf_counter() - started, trials=trials)


__all__ = ["EXPERIMENT_FILE", "SweepOutcome", "build_tuner", "experiment_dir", "prepare", "restore_tuner", "run_sweep"]
