"""A parsed search space (groktune.space: SearchConfig.params) as Ray Tune's domains: the Tuner's param_space and
PBT's hyperparam_mutations. Ray is imported inside each function: sweep_algos, which calls them,
is also read by config validation, which never starts Ray.
"""

from __future__ import annotations

from groktune.space import PER_VALUE, Dist


def to_ray(dists: dict[str, Dist]) -> dict:
    """Ray Tune domains for a Tuner `param_space` (flat dotted keys)."""
    from ray import tune  # deferred: Ray; validation parses spaces without importing it

    out = {}
    for key, d in dists.items():
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


def mutations(dists: dict[str, Dist]) -> dict:
    """PBT `hyperparam_mutations`: ranges become Ray domains, lists stay lists (neighbour moves)."""
    from ray import tune  # deferred: Ray; validation parses spaces without importing it

    out = {}
    for key, d in dists.items():
        if d.discrete:
            out[key] = list(d.values)
        elif d.kind in PER_VALUE:
            out[key] = tune.uniform(0.0, 1.0)  # the position in the range; resolved by snap_values
        elif d.log:
            out[key] = tune.loguniform(d.low, d.high)
        elif d.kind == "randint":
            out[key] = tune.randint(int(d.low), int(d.high))
        else:
            out[key] = tune.uniform(d.low, d.high)
    return out


__all__ = ["mutations", "to_ray"]
