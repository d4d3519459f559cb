"""Searchers and schedulers for a sweep, built from the `search:` section, by name.

SEARCHERS and SCHEDULERS are the registries: name -> spec (a builder plus the facts the rest
of the sweep asks about). SearchConfig.validate takes its allowed names from them, so an unknown
name is refused before Ray starts and can never fall through to a default. Adding a scheduler is
one builder function here plus one line in SCHEDULERS (ARCHITECTURE.md shows it).

tpe and nsga2 also take several objectives (search.metric/mode as lists, FIFO only:
orchestrator.search.multi_objective decides what is allowed from the multi_objective flags below).

Time for every scheduler is the optimizer step (the reported `step`), so grace periods, rungs
and PBT intervals are all in steps, whatever the eval schedule.

    algorithm   searcher                                   seeds repeat via
    tpe         OptunaSearch(TPESampler(seed))             Ray's Repeater (__trial_index__)
    nsga2       OptunaSearch(NSGAIISampler(seed))          Ray's Repeater (__trial_index__)
    random      BasicVariantGenerator(random_state=seed)   a "seed" grid dimension
    grid        BasicVariantGenerator, every value once    a "seed" grid dimension
    pbt         BasicVariantGenerator + PBT scheduler      a "seed" grid dimension

Ray, Optuna and the Ray-based schedulers are imported inside the builders: validation imports
this module, and a bad config must be refused before Ray is even imported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from groktune.errors import UserError
from groktune.layout import SCHEDULER_STATE, TIME_ATTR
from groktune.space import Dist, grid_size
from orchestrator.search.multi_objective import searcher_objective
from orchestrator.search.ray_space import mutations, to_ray
from trials.config import is_structural, structural_part


def _variants(search: Any, seed: int, study_name: str):
    from ray.tune.search.basic_variant import BasicVariantGenerator  # deferred: Ray, only to build

    # Tune applies max_concurrent_trials only to a Searcher; this generator takes its own.
    # constant_grid_search: a random draw is held over the grid dimensions, the seeds among them
    # (param_space), so every sampled config trains once per seed; Ray's default draws anew per
    # grid value, which would give each seed a config of its own.
    return BasicVariantGenerator(random_state=seed, max_concurrent=search.max_concurrent, constant_grid_search=True)


def _tpe(search: Any, seed: int, study_name: str):
    """Optuna TPE through orchestrator.search.optuna_searcher.StepOptunaSearch (intermediate values at
    the optimizer step, PRUNED for stopped trials), in search.optuna_storage when given. TPE
    takes one objective or several (search.metric as a list: orchestrator.search.multi_objective)."""
    import optuna  # deferred: validation imports this module before Ray or Optuna

    return _optuna(search, study_name, optuna.samplers.TPESampler(seed=seed))


def _nsga2(search: Any, seed: int, study_name: str):
    """Optuna NSGA-II (a genetic multi-objective sampler; also runs with one objective). Its first
    generation (Optuna's population_size, 50) is sampled at random, so below ~100 trials TPE,
    which models the front from its first ~10 trials on, is the better multi-objective choice."""
    import optuna  # deferred: validation imports this module before Ray or Optuna

    return _optuna(search, study_name, optuna.samplers.NSGAIISampler(seed=seed))


def _optuna(search: Any, study_name: str, sampler: Any):
    """StepOptunaSearch with `sampler`; with several objectives the metric and mode lists go to
    the searcher (tune.TuneConfig gets None: orchestrator.search.multi_objective.tune_objective)."""
    # deferred: Optuna, Ray and the modules that import them load only when a sweep is built
    import optuna
    from ray.tune.search import Repeater  # deferred: as above

    from orchestrator.search.optuna_searcher import StepOptunaSearch  # deferred: imports Ray
    from orchestrator.storage.optuna_study import open_storage  # deferred: as above

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(search.optuna_storage)  # UserError, one line, when it cannot be opened
    searcher = StepOptunaSearch(sampler=sampler, storage=storage, study_name=study_name,
                                **searcher_objective(search))
    if len(search.seeds) > 1:  # one objective only (multi_objective.check_objectives)
        searcher = Repeater(searcher, repeat=len(search.seeds), set_index=True)
    return searcher


def _tpe_packs(search: Any, seed: int, study_name: str):
    """TPE over packed trials: orchestrator.search.pack_searcher.PackedOptunaSearch (a batched ask
    per pack, each point told its own result), in search.optuna_storage when given."""
    # deferred: Optuna, Ray and the modules that import them load only when a sweep is built
    import optuna

    from orchestrator.search.pack_searcher import PackedOptunaSearch  # deferred: imports Ray and Optuna
    from orchestrator.storage.optuna_study import open_storage  # deferred: as above

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return PackedOptunaSearch(to_ray(search.params), search.pack, list(search.seeds), search.num_samples,
                              optuna.samplers.TPESampler(seed=seed), search.metric, search.mode,
                              storage=open_storage(search.optuna_storage), study_name=study_name, key=structural_part)


@dataclass(frozen=True)
class SearcherSpec:
    """A search algorithm: how to build it and how it covers the space and the seeds."""

    build: Callable[[Any, int, str], Any]
    """(search, seed, study_name) -> the Tune search_alg."""
    exhaustive: bool = False
    """Every listed value once, as grid dimensions (num_samples ignored)."""
    repeats_seeds: bool = False
    """The searcher repeats each point once per seed (no "seed" grid dimension)."""
    grid_dimensions: bool = True
    """Takes `grid` dimensions (Tune's grid_search); a model-based sampler (TPE) cannot."""
    needs_space: bool = False
    """Refuses an empty space (it has nothing to model)."""
    defers_to_scheduler: bool = False
    """Only starts the trials; a scheduler with `needs_mutations` does the searching."""
    multi_objective: bool = False
    """Takes search.metric / search.mode as lists (orchestrator.search.multi_objective)."""
    packs: bool = False
    """Its points can be drawn up front on the driver and packed (search.pack, orchestrator.sweep.packing)."""
    build_packs: Callable[[Any, int, str], Any] | None = None
    """(search, seed, study_name) -> a Tune Searcher whose suggestions are packs (search.pack > 1):
    a model-based searcher that asks for its points pack by pack instead of up front."""


SEARCHERS: dict[str, SearcherSpec] = {
    "tpe": SearcherSpec(_tpe, repeats_seeds=True, grid_dimensions=False, needs_space=True, multi_objective=True,
                        build_packs=_tpe_packs),
    "random": SearcherSpec(_variants, multi_objective=True, packs=True),  # ignores the values: lists only name the front
    "grid": SearcherSpec(_variants, exhaustive=True, multi_objective=True, packs=True),
    "pbt": SearcherSpec(_variants, defers_to_scheduler=True, packs=True),  # the PBT scheduler does the searching
    "nsga2": SearcherSpec(_nsga2, repeats_seeds=True, grid_dimensions=False, needs_space=True, multi_objective=True),
}


def _asha(search: Any, budget: int, state_dir: Path | None):
    """ASHA; with the sweep folder, orchestrator.search.durable_asha.DurableASHA (rungs survive a kill)."""
    from ray.tune.schedulers import AsyncHyperBandScheduler  # deferred: Ray, only to build

    args = dict(time_attr=TIME_ATTR, max_t=budget, grace_period=min(search.grace_period, budget),
                reduction_factor=search.reduction_factor, stop_last_trials=False)
    if state_dir is None:
        return AsyncHyperBandScheduler(**args)
    from orchestrator.search.durable_asha import DurableASHA  # deferred: imports Ray at module level

    return DurableASHA(str(Path(state_dir) / SCHEDULER_STATE), **args)


def _hyperband(search: Any, budget: int, state_dir: Path | None):
    from ray.tune.schedulers import HyperBandScheduler  # deferred: Ray, only to build

    return HyperBandScheduler(time_attr=TIME_ATTR, max_t=budget, reduction_factor=search.reduction_factor,
                              stop_last_trials=False)


def _pbt(search: Any, budget: int, state_dir: Path | None):
    from ray.tune.schedulers import PopulationBasedTraining  # deferred: Ray, only to build

    return PopulationBasedTraining(time_attr=TIME_ATTR, perturbation_interval=search.perturbation_interval,
                                   hyperparam_mutations=mutations(search.params), quantile_fraction=0.25)


def _fifo(search: Any, budget: int, state_dir: Path | None):
    from ray.tune.schedulers import FIFOScheduler  # deferred: Ray, only to build

    return FIFOScheduler()


@dataclass(frozen=True)
class SchedulerSpec:
    """A trial scheduler: how to build it and what the sweep must do for it."""

    build: Callable[[Any, int, Path | None], Any]
    """(search, step budget, sweep folder or None) -> the Tune scheduler."""
    clones_checkpoints: bool = False
    """Trials continue from other trials' checkpoints (PBT's exploit): checkpoint at least every
    perturbation_interval and keep every checkpoint, since a clone may pick an older one. Only
    optim/train keys may vary then: a clone must fit the task and model of the weights it takes."""
    needs_mutations: bool = False
    """Searches by mutating the space (PBT's hyperparam_mutations): goes with a searcher whose
    spec `defers_to_scheduler`, and only with one."""
    multi_objective: bool = False
    """Never compares trials on the metric, so several metrics are fine (ASHA/HyperBand cut at
    rungs and PBT exploits by one number; orchestrator.search.multi_objective)."""
    packs: bool = False
    """Works on packed trials (search.pack): it never stops or clones a trial by its metric (a
    pack's points would be cut together)."""
    cuts_points: Callable[[Any, int, Path], Any] | None = None
    """(search, step budget, sweep folder) -> the rung table that cuts each point of a pack
    inside its pack (orchestrator.search.point_rungs); Ray's own scheduler is then FIFO."""
    perturbs_points: Callable[[Any, int], Any] | None = None
    """(search, the sweep's seed) -> what exploits and explores the points of a pack inside
    their pack (orchestrator.search.point_pbt); Ray's own scheduler is then FIFO."""


def _asha_points(search: Any, budget: int, state_dir: Path):
    """ASHA per point of packed trials: orchestrator.search.point_rungs.PointRungs over the same
    DurableASHA state file an unpacked sweep's ASHA keeps."""
    from orchestrator.search.point_rungs import PointRungs  # deferred: imports Ray at module level

    return PointRungs(str(Path(state_dir) / SCHEDULER_STATE), metric=search.metric, mode=search.mode, max_t=budget,
                      grace_period=search.grace_period, reduction_factor=search.reduction_factor)


def _hyperband_points(search: Any, budget: int, state_dir: Path):
    """HyperBand per point of packed trials: the asynchronous form (brackets of ASHA, each point in
    one), since a point cannot wait inside its pack for a bracket to fill (orchestrator.search.point_rungs)."""
    from orchestrator.search.point_rungs import PointRungs, hyperband_brackets  # deferred: imports Ray

    return PointRungs(str(Path(state_dir) / SCHEDULER_STATE), metric=search.metric, mode=search.mode, max_t=budget,
                      grace_period=search.grace_period, reduction_factor=search.reduction_factor,
                      brackets=hyperband_brackets(budget, search.grace_period, search.reduction_factor))


def _pbt_points(search: Any, seed: int):
    """PBT per point of packed trials: each pack's points are one population
    (orchestrator.search.point_pbt), with the unpacked PBT's interval and quantile."""
    from orchestrator.search.point_pbt import PointPBT  # deferred: numpy, only to build

    return PointPBT(search.params, search.perturbation_interval, search.metric, search.mode, seed)


SCHEDULERS: dict[str, SchedulerSpec] = {
    "asha": SchedulerSpec(_asha, cuts_points=_asha_points),
    "hyperband": SchedulerSpec(_hyperband, cuts_points=_hyperband_points),
    "fifo": SchedulerSpec(_fifo, multi_objective=True, packs=True),
    "pbt": SchedulerSpec(_pbt, clones_checkpoints=True, needs_mutations=True, perturbs_points=_pbt_points),
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
    from ray import tune  # deferred: Ray, only to build

    spec = searcher_spec(search)
    out = to_ray(_searched(search, spec))
    if not spec.repeats_seeds and len(search.seeds) > 1:
        out["seed"] = tune.grid_search(list(search.seeds))
    return out


def _searched(search: Any, spec: Any) -> dict[str, Dist]:
    """The parsed space as the searcher walks it: an exhaustive one takes every listed value once,
    so its choices are grid dimensions too (validation allows it lists only)."""
    if not spec.exhaustive:
        return search.params
    return {k: dataclasses.replace(d, kind="grid") for k, d in search.params.items()}


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
    grid = grid_size(_searched(search, spec))
    return num_samples(search) * grid * (len(search.seeds) if len(search.seeds) > 1 else 1)


def build_searcher(search: Any, seed: int, study_name: str):
    """The search algorithm for TuneConfig(search_alg=...), from SEARCHERS; with search.pack > 1
    the spec's build_packs (None for points drawn up front: orchestrator.sweep.driver.packed_space)."""
    spec = searcher_spec(search)
    if search.pack > 1:
        return spec.build_packs(search, seed, study_name) if spec.build_packs is not None else None
    return spec.build(search, seed, study_name)


def packs_searched(search: Any) -> bool:
    """Whether a packed sweep's packs come from a searcher (SearcherSpec.build_packs) rather than
    being drawn up front on the driver."""
    return search.pack > 1 and searcher_spec(search).build_packs is not None


def pack_count(search: Any) -> int:
    """The most packs (Ray trials) a searcher that builds packs suggests: num_samples points,
    pack // len(seeds) (at least 1) per pack, each trained once per seed; with a structural key
    in the space a batch may split into several packs, up to one per point (the searcher says
    FINISHED after its last)."""
    if any(is_structural(key) for key in search.params):
        return search.num_samples
    per_pack = max(1, search.pack // len(search.seeds))
    return -(-search.num_samples // per_pack)


def build_scheduler(search: Any, budget: int, state_dir: Any = None):
    """The trial scheduler, from SCHEDULERS. ASHA and HyperBand keep trials that pass their last
    rung (stop_last_trials=False) so that the trainer, not the scheduler, ends them and reports
    their final status.

    Args:
        search: the SearchConfig.
        budget: train.steps (the schedulers' max_t).
        state_dir: the sweep folder: ASHA keeps its rungs there (orchestrator.search.durable_asha);
            HyperBand and PBT state is Ray's own (lost on a resume).
    Returns:
        A Ray Tune TrialScheduler.
    """
    spec = scheduler_spec(search)
    if search.pack > 1 and (spec.cuts_points is not None or spec.perturbs_points is not None):
        return _fifo(search, budget, None)  # the points are cut or perturbed inside their packs
    return spec.build(search, budget, None if state_dir is None else Path(state_dir))


def point_rungs(search: Any, budget: int, state_dir: Path):
    """The table that cuts points inside their packs (SchedulerSpec.cuts_points), or None."""
    spec = scheduler_spec(search)
    if search.pack > 1 and spec.cuts_points is not None:
        return spec.cuts_points(search, budget, Path(state_dir))
    return None


def point_pbt(search: Any, seed: int):
    """What exploits and explores points inside their packs (SchedulerSpec.perturbs_points), or None."""
    spec = scheduler_spec(search)
    if search.pack > 1 and spec.perturbs_points is not None:
        return spec.perturbs_points(search, seed)
    return None


def clones_checkpoints(search: Any) -> bool:
    """Whether trials continue from other trials' checkpoints (PBT, unpacked: packed points
    clone each other inside their pack, point_pbt); see SchedulerSpec."""
    return scheduler_spec(search).clones_checkpoints and search.pack <= 1


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
    "SchedulerSpec",
    "SearcherSpec",
    "build_scheduler",
    "build_searcher",
    "checkpoint_every",
    "clones_checkpoints",
    "expected_trials",
    "num_samples",
    "pack_count",
    "point_pbt",
    "packs_searched",
    "param_space",
    "point_rungs",
    "scheduler_spec",
    "searcher_spec",
]
