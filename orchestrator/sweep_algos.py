"""Searchers and schedulers for a sweep, built from the `search:` section, by name.

SEARCHERS and SCHEDULERS are the registries: name -> spec (a builder plus the facts the rest
of the sweep asks about). SearchConfig.validate takes its allowed names from them, so an unknown
name is refused before Ray starts and can never fall through to a default. Adding a scheduler is
one builder function here plus one line in SCHEDULERS (ARCHITECTURE.md shows it).

Time for every scheduler is the optimizer step (the reported `step`), so grace periods, rungs
and PBT intervals are all in steps, whatever the eval schedule.

    algorithm   searcher                                   seeds repeat via
    tpe         OptunaSearch(TPESampler(seed))             Ray's Repeater (__trial_index__)
    random      BasicVariantGenerator(random_state=seed)   a "seed" grid dimension
    grid        BasicVariantGenerator, every value once    a "seed" grid dimension
    pbt         BasicVariantGenerator + PBT scheduler      a "seed" grid dimension

Ray, Optuna and the Ray-based schedulers are imported inside the builders: validation imports
this module, and a bad config must be refused before Ray is even imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from groktune.layout import SCHEDULER_STATE
from orchestrator.errors import UserError
from orchestrator.space import grid_size, mutations, parse_space, to_ray

TIME_ATTR = "step"


def _variants(search: Any, seed: int, study_name: str):
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Tune applies max_concurrent_trials only to a Searcher; this generator takes its own.
    return BasicVariantGenerator(random_state=seed, max_concurrent=search.max_concurrent)


def _tpe(search: Any, seed: int, study_name: str):
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


@dataclass(frozen=True)
class SearcherSpec:
    """A search algorithm: how to build it and how it covers the space and the seeds."""

    build: Callable[[Any, int, str], Any]
    """(search, seed, study_name) -> the Tune search_alg."""
    exhaustive: bool = False
    """Every listed value once, as grid dimensions (num_samples ignored)."""
    repeats_seeds: bool = False
    """The searcher repeats each point once per seed (no "seed" grid dimension)."""


SEARCHERS: dict[str, SearcherSpec] = {
    "tpe": SearcherSpec(_tpe, repeats_seeds=True),
    "random": SearcherSpec(_variants),
    "grid": SearcherSpec(_variants, exhaustive=True),
    "pbt": SearcherSpec(_variants),  # the PBT scheduler does the searching
}


def _asha(search: Any, budget: int, state_dir: Path | None):
    """ASHA; with the sweep folder, orchestrator.durable_asha.DurableASHA (rungs survive a kill)."""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    args = dict(time_attr=TIME_ATTR, max_t=budget, grace_period=min(search.grace_period, budget),
                reduction_factor=search.reduction_factor, stop_last_trials=False)
    if state_dir is None:
        return AsyncHyperBandScheduler(**args)
    from orchestrator.durable_asha import DurableASHA  # imports Ray at module level

    return DurableASHA(str(Path(state_dir) / SCHEDULER_STATE), **args)


def _hyperband(search: Any, budget: int, state_dir: Path | None):
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(time_attr=TIME_ATTR, max_t=budget, reduction_factor=search.reduction_factor,
                              stop_last_trials=False)


def _pbt(search: Any, budget: int, state_dir: Path | None):
    from ray.tune.schedulers import PopulationBasedTraining

    return PopulationBasedTraining(time_attr=TIME_ATTR, perturbation_interval=search.perturbation_interval,
                                   hyperparam_mutations=mutations(search.space), quantile_fraction=0.25)


def _fifo(search: Any, budget: int, state_dir: Path | None):
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


@dataclass(frozen=True)
class SchedulerSpec:
    """A trial scheduler: how to build it and what the sweep must do for it."""

    build: Callable[[Any, int, Path | None], Any]
    """(search, step budget, sweep folder or None) -> the Tune scheduler."""
    clones_checkpoints: bool = False
    """Trials continue from other trials' checkpoints (PBT's exploit): checkpoint at least every
    perturbation_interval and keep every checkpoint, since a clone may pick an older one."""


SCHEDULERS: dict[str, SchedulerSpec] = {
    "asha": SchedulerSpec(_asha),
    "hyperband": SchedulerSpec(_hyperband),
    "fifo": SchedulerSpec(_fifo),
    "pbt": SchedulerSpec(_pbt, clones_checkpoints=True),
}


def searcher_spec(search: Any) -> SearcherSpec:
    """The SEARCHERS entry of search.algorithm; UserError for a name the table lacks."""
    return _lookup(SEARCHERS, "algorithm", search.algorithm)


def scheduler_spec(search: Any) -> SchedulerSpec:
    """The SCHEDULERS entry of search.scheduler; UserError for a name the table lacks."""
    return _lookup(SCHEDULERS, "scheduler", search.scheduler)


def _lookup(table: dict, key: str, name: str):
    # Validation refuses these names first; this keeps an unvalidated config from a default.
    if name not in table:
        raise UserError(f"search.{key}: got {name!r}, allowed: {', '.join(table)}")
    return table[name]


def param_space(search: Any) -> dict:
    """The Tuner's param_space: Ray domains, grids, and the seed dimension where it is a grid."""
    from ray import tune

    spec = searcher_spec(search)
    space = dict(search.space)
    if spec.exhaustive:  # every listed value once: choices become grid dimensions too
        space = {k: {"grid": list(parse_space({k: v})[k].values)} for k, v in space.items()}
    out = to_ray(space)
    if not spec.repeats_seeds and len(search.seeds) > 1:
        out["seed"] = tune.grid_search(list(search.seeds))
    return out


def num_samples(search: Any) -> int:
    """Tune's num_samples: a grid sweep runs its grid once; TPE asks once per seed."""
    spec = searcher_spec(search)
    if spec.exhaustive:
        return 1
    if spec.repeats_seeds:
        return search.num_samples * len(search.seeds)
    return search.num_samples


def expected_trials(search: Any) -> int:
    """How many trials the sweep will create."""
    spec = searcher_spec(search)
    if spec.repeats_seeds:
        return num_samples(search)
    grid = grid_size({k: ({"grid": parse_space({k: v})[k].values} if spec.exhaustive else v)
                      for k, v in search.space.items()})
    return num_samples(search) * grid * (len(search.seeds) if len(search.seeds) > 1 else 1)


def build_searcher(search: Any, seed: int, study_name: str):
    """The search algorithm for TuneConfig(search_alg=...), from SEARCHERS."""
    return searcher_spec(search).build(search, seed, study_name)


def build_scheduler(search: Any, budget: int, state_dir: Any = None):
    """The trial scheduler, from SCHEDULERS. ASHA and HyperBand keep trials that pass their last
    rung (stop_last_trials=False) so that the trainer, not the scheduler, ends them and reports
    their final status.

    Args:
        search: the SearchConfig.
        budget: train.steps (the schedulers' max_t).
        state_dir: the sweep folder: ASHA keeps its rungs there (orchestrator.durable_asha);
            HyperBand and PBT state is Ray's own (lost on a resume).
    Returns:
        A Ray Tune TrialScheduler.
    """
    return scheduler_spec(search).build(search, budget, None if state_dir is None else Path(state_dir))


def clones_checkpoints(search: Any) -> bool:
    """Whether trials continue from other trials' checkpoints (PBT); see SchedulerSpec."""
    return scheduler_spec(search).clones_checkpoints


def checkpoint_every(search: Any, train_every: int) -> int:
    """Trial checkpoint spacing in steps: search.checkpoint_every, else train's; PBT needs one
    at least every perturbation interval so exploited trials clone recent weights."""
    every = search.checkpoint_every or train_every
    if clones_checkpoints(search):
        every = min(every, search.perturbation_interval)
    return every


__all__ = [
    "SCHEDULERS",
    "SEARCHERS",
    "TIME_ATTR",
    "SchedulerSpec",
    "SearcherSpec",
    "build_scheduler",
    "build_searcher",
    "checkpoint_every",
    "clones_checkpoints",
    "expected_trials",
    "num_samples",
    "param_space",
    "scheduler_spec",
    "searcher_spec",
]
