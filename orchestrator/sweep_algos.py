"""Searchers and schedulers for a sweep, built from the `search:` section.

Time for every scheduler is the optimizer step (the reported `step`), so grace periods, rungs
and PBT intervals are all in steps, whatever the eval schedule.

    algorithm   searcher                                   seeds repeat via
    tpe         OptunaSearch(TPESampler(seed))             Ray's Repeater (__trial_index__)
    random      BasicVariantGenerator(random_state=seed)   a "seed" grid dimension
    grid        BasicVariantGenerator, every value once    a "seed" grid dimension
    pbt         BasicVariantGenerator + PBT scheduler      a "seed" grid dimension
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import UserError
from orchestrator.space import grid_size, mutations, parse_space, to_ray

TIME_ATTR = "step"


def param_space(search: Any) -> dict:
    """The Tuner's param_space: Ray domains, grids, and the seed dimension where it is a grid."""
    from ray import tune

    space = dict(search.space)
    if search.algorithm == "grid":  # every listed value once: choices become grid dimensions too
        space = {k: {"grid": list(parse_space({k: v})[k].values)} for k, v in space.items()}
    out = to_ray(space)
    if search.algorithm != "tpe" and len(search.seeds) > 1:
        out["seed"] = tune.grid_search(list(search.seeds))
    return out


def num_samples(search: Any) -> int:
    """Tune's num_samples: a grid sweep runs its grid once; TPE asks once per seed."""
    if search.algorithm == "grid":
        return 1
    if search.algorithm == "tpe":
        return search.num_samples * len(search.seeds)
    return search.num_samples


def expected_trials(search: Any) -> int:
    """How many trials the sweep will create."""
    if search.algorithm == "tpe":
        return search.num_samples * len(search.seeds)
    grid = grid_size({k: ({"grid": parse_space({k: v})[k].values} if search.algorithm == "grid" else v)
                      for k, v in search.space.items()})
    return num_samples(search) * grid * (len(search.seeds) if len(search.seeds) > 1 else 1)


def build_searcher(search: Any, seed: int, study_name: str):
    """The search algorithm for TuneConfig(search_alg=...)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if search.algorithm != "tpe":
        # Tune applies max_concurrent_trials only to a Searcher; this generator takes its own.
        return BasicVariantGenerator(random_state=seed, max_concurrent=search.max_concurrent)
    import optuna
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None
    if search.optuna_storage:
        try:
            storage = optuna.storages.RDBStorage(search.optuna_storage)
        except Exception as err:  # noqa: BLE001 - bad URL, missing driver, unreachable database
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            raise UserError(f"search.optuna_storage: cannot open {search.optuna_storage!r} ({first})") from None
    searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed), storage=storage, study_name=study_name)
    if len(search.seeds) > 1:
        searcher = Repeater(searcher, repeat=len(search.seeds), set_index=True)
    return searcher


def build_scheduler(search: Any, budget: int, state_dir: Any = None):
    """The trial scheduler; ASHA keeps trials that pass its last rung (stop_last_trials=False)
    so that the trainer, not the scheduler, ends them and reports their final status.

    With `state_dir` (the sweep folder) ASHA is orchestrator.durable_asha.DurableASHA, whose
    rungs survive a driver kill; HyperBand and PBT state is Ray's own (lost on a resume).
    """
    from ray.tune.schedulers import (
        AsyncHyperBandScheduler,
        FIFOScheduler,
        HyperBandScheduler,
        PopulationBasedTraining,
    )

    grace = min(search.grace_period, budget)
    if search.scheduler == "asha" and state_dir is not None:
        from pathlib import Path

        from orchestrator.durable_asha import SCHEDULER_STATE, DurableASHA

        return DurableASHA(
            str(Path(state_dir) / SCHEDULER_STATE), time_attr=TIME_ATTR, max_t=budget, grace_period=grace,
            reduction_factor=search.reduction_factor, stop_last_trials=False,
        )
    if search.scheduler == "asha":
        return AsyncHyperBandScheduler(
            time_attr=TIME_ATTR, max_t=budget, grace_period=grace,
            reduction_factor=search.reduction_factor, stop_last_trials=False,
        )
    if search.scheduler == "hyperband":
        return HyperBandScheduler(time_attr=TIME_ATTR, max_t=budget, reduction_factor=search.reduction_factor,
                                  stop_last_trials=False)
    if search.scheduler == "pbt":
        return PopulationBasedTraining(
            time_attr=TIME_ATTR, perturbation_interval=search.perturbation_interval,
            hyperparam_mutations=mutations(search.space), quantile_fraction=0.25,
        )
    return FIFOScheduler()


def checkpoint_every(search: Any, train_every: int) -> int:
    """Trial checkpoint spacing in steps: search.checkpoint_every, else train's; PBT needs one
    at least every perturbation interval so exploited trials clone recent weights."""
    every = search.checkpoint_every or train_every
    if search.scheduler == "pbt":
        every = min(every, search.perturbation_interval)
    return every


__all__ = [
    "TIME_ATTR",
    "build_scheduler",
    "build_searcher",
    "checkpoint_every",
    "expected_trials",
    "num_samples",
    "param_space",
]
