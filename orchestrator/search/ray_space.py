"""A parsed search space (orchestrator.search.space) as Ray Tune's domains: the Tuner's param_space and
PBT's hyperparam_mutations. Ray is imported inside each function: sweep_algos, which calls them,
is also read by config validation, which never starts Ray.
"""

from __future__ import annotations

from orchestrator.search.space import DISCRETE, LOG, PER_VALUE, parse_space


def to_ray(space: dict) -> dict:
    """Ray Tune domains for a Tuner `param_space` (flat dotted keys)."""
    from ray import tune  # deferred: Ray; validation parses spaces without importing it

    out = {}
    for key, d in parse_space(space).items():
        if d.kind in ("loguniform", "qloguniform"):
            out[key] = tune.loguniform(d.low, d.high)  # q applied by `snap` in the trainable
        elif d.kind == "uniform":
            out[key] = tune.uniform(d.low, d.high)
        elif d.kind == "quniform":
            out[key] = tune.quniform(d.low, d.high, d.q)
        elif d.kind == "randint":
            out[key] = tune.randint(int(d.low), int(d.high))
        elif d.kind == "choice":
            out[key] = tune.choice(list(d.values))
        elif d.kind in PER_VALUE:
            out[key] = tune.uniform(0.0, 1.0)  # the position in the range; resolved by snap_values
        else:
            out[key] = tune.grid_search(list(d.values))
    return out


def mutations(space: dict) -> dict:
    """PBT `hyperparam_mutations`: ranges become Ray domains, lists stay lists (neighbour moves)."""
    from ray import tune  # deferred: Ray; validation parses spaces without importing it

    out = {}
    for key, d in parse_space(space).items():
        if d.kind in DISCRETE:
            out[key] = list(d.values)
        elif d.kind in PER_VALUE:
            out[key] = tune.uniform(0.0, 1.0)  # the position in the range; resolved by snap_values
        elif d.kind in LOG:
            out[key] = tune.loguniform(d.low, d.high)
        elif d.kind == "randint":
            out[key] = tune.randint(int(d.low), int(d.high))
        else:
            out[key] = tune.uniform(d.low, d.high)
    return out


__all__ = ["mutations", "to_ray"]
