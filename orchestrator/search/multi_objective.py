"""Several objectives at once: `search.metric` / `search.mode` as lists.

    search:
      metric: [grok_score, failure_rate]   # steps to target (the score) and the share of seeds that failed
      mode: [min, min]
      algorithm: tpe                       # tpe or nsga2: Optuna's multi-objective samplers
      scheduler: fifo                      # ASHA/HyperBand/PBT compare trials on one number
      seeds_per_trial: 5                   # failure_rate is over a trial's seeds

The study is an Optuna multi-objective study run through Ray Tune's OptunaSearch, which takes
lists for metric and mode (ray/tune/search/optuna/optuna_search.py, ray 2.60) and is told each
trial's final values; Optuna keeps its Pareto front (study.best_trials) and the report draws it
(analysis.pareto). Tune's own TuneConfig takes one metric, so with lists the objectives go to
the searcher only (`tune_objective` gives TuneConfig None).

What is refused here, one line each, before anything starts:

- lists of different lengths, repeated names, a mode other than min/max;
- a metric a trial does not report at every eval (Ray stops the sweep at the first result that
  lacks one): OBJECTIVE_METRICS for every trial, POPULATION_METRICS only with seeds_per_trial > 1
  (failure_rate and grokked_fraction are over a trial's seeds; one seed has no rate);
- a scheduler other than FIFO: ASHA and HyperBand cut trials at rungs by one metric, PBT
  exploits by one metric; none of them has a rule for several (the `multi_objective` flags of
  orchestrator.search.algos' SEARCHERS and SCHEDULERS tables say who takes lists);
- search.seeds with more than one seed: Ray's Repeater averages a single metric over the
  repeats; use seeds_per_trial, which also gives failure_rate;
- algorithm pbt (it needs scheduler pbt). random and grid take lists too: they do not learn
  from the values, the lists then only say which front the report draws.

Validation imports this module, so it stays pure: no Ray, no Optuna, no torch.

A single string keeps today's behaviour unchanged (any reported metric, any scheduler).
"""

from __future__ import annotations

from typing import Any

from orchestrator.search.algos import SCHEDULERS, SEARCHERS

MODES = ("min", "max")
OBJECTIVE_METRICS = (
    "grok_score", "val_acc", "val_loss", "train_acc", "train_loss", "param_norm", "grad_norm",
    "wall_time", "cpu_time_s", "peak_memory_mb",
)
"""Metrics every trial reports at every eval (trials.train's record and the adapter's additions)."""
POPULATION_METRICS = ("failure_rate", "grokked_fraction")
"""Metrics only a population trial (search.seeds_per_trial > 1) reports: the share of its seeds
that have not / have generalised so far (orchestrator.sweep.adapter.population_trainable); the last
eval's is the final share."""


def objectives(search: Any) -> list[tuple[str, str]]:
    """The (metric, mode) pairs of a SearchConfig; one pair for a single string metric.

    Args:
        search: a SearchConfig (metric and mode each a string or a list of strings).
    Returns:
        [(metric, mode), ...] in the order given.
    """
    metrics = search.metric if isinstance(search.metric, list) else [search.metric]
    modes = search.mode if isinstance(search.mode, list) else [search.mode] * len(metrics)
    return list(zip(metrics, modes))


def is_multi(search: Any) -> bool:
    """Whether the search optimises more than one objective (metric given as a list)."""
    return isinstance(search.metric, list)


def check_objectives(search: Any) -> None:
    """Refuse a metric/mode combination the sweep cannot run; see the module docstring.

    Args:
        search: a SearchConfig whose algorithm, scheduler and seeds are already checked.
    Raises:
        ValueError: one line naming the key, the value and what is allowed.
    """
    metric, mode = search.metric, search.mode
    if isinstance(mode, list) != isinstance(metric, list):
        raise ValueError(f"mode: got {mode!r} for metric {metric!r}; give both as lists of equal length, "
                         f"or both as one name")
    if not isinstance(metric, list):
        if mode not in MODES:
            raise ValueError(f"mode: got {mode!r}, allowed: {', '.join(MODES)}")
        return
    if not metric or len(metric) != len(mode):
        raise ValueError(f"metric: got {len(metric)} metric(s) and {len(mode)} mode(s); "
                         f"give one mode (min or max) per metric, at least one")
    for m in mode:
        if m not in MODES:
            raise ValueError(f"mode: got {m!r} in {mode!r}, allowed: {', '.join(MODES)}")
    if len(set(metric)) != len(metric):
        raise ValueError(f"metric: got {metric!r}; each metric at most once")
    population = search.seeds_per_trial > 1
    for m in metric:
        if m in POPULATION_METRICS and not population:
            raise ValueError(f"metric: {m} is a share of a trial's seeds; set search.seeds_per_trial > 1 "
                             f"(one seed has no rate)")
        if m not in OBJECTIVE_METRICS + POPULATION_METRICS:
            allowed = OBJECTIVE_METRICS + (POPULATION_METRICS if population else ())
            raise ValueError(f"metric: got {m!r}, not reported at every eval; allowed in a list: "
                             f"{', '.join(allowed)}")
    if not SCHEDULERS[search.scheduler].multi_objective:
        ok = ", ".join(n for n, spec in SCHEDULERS.items() if spec.multi_objective)
        raise ValueError(f"scheduler: got {search.scheduler} with {len(metric)} metrics; {search.scheduler} "
                         f"compares trials on one metric; with several use scheduler: {ok}")
    if not SEARCHERS[search.algorithm].multi_objective:
        ok = ", ".join(n for n, spec in SEARCHERS.items() if spec.multi_objective)
        raise ValueError(f"algorithm: got {search.algorithm} with several metrics; allowed: {ok}")
    if len(search.seeds) > 1:
        raise ValueError(f"seeds: got {len(search.seeds)} seeds with several metrics (Ray's Repeater averages "
                         f"one metric); give one seed and search.seeds_per_trial instead")


def tune_objective(search: Any) -> dict:
    """metric= and mode= for tune.TuneConfig: the single objective, or None for both with lists
    (the searcher then carries them; Tune refuses a searcher built with its own metric otherwise).

    Args:
        search: a validated SearchConfig.
    Returns:
        {"metric": ..., "mode": ...}.
    """
    if is_multi(search):
        return {"metric": None, "mode": None}
    return {"metric": search.metric, "mode": search.mode}


def searcher_objective(search: Any) -> dict:
    """metric= and mode= for an Optuna searcher: the lists with several objectives, else
    nothing (Tune hands the single one to the searcher through TuneConfig).

    Args:
        search: a validated SearchConfig.
    Returns:
        {"metric": [...], "mode": [...]} or {}.
    """
    if is_multi(search):
        return {"metric": list(search.metric), "mode": list(search.mode)}
    return {}


__all__ = ["MODES", "OBJECTIVE_METRICS", "POPULATION_METRICS", "check_objectives", "is_multi", "objectives",
           "searcher_objective", "tune_objective"]
