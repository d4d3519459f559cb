"""The comparison sweep of benchmarks/sweep_throughput.py: plain Ray Tune + OptunaSearch, written
the way Ray's docs show it (a function trainable that trains and calls `tune.report` at every
eval; `Tuner(..., tune_config=TuneConfig(search_alg=OptunaSearch(), num_samples=N))`, defaults
everywhere else: fresh worker per trial, Ray's own loggers and snapshots, no checkpoints).

    python benchmarks/plain_tune.py CONFIG.yaml STORAGE NAME

CONFIG.yaml is the groktune experiment the groktune side runs (benchmarks/sweep_throughput.py
writes it): the same task, model, steps, search space and trial count, and the same trainer
(trials.train.train), so the two sweeps differ only in the orchestration around train().
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys


def main(config_path: str, storage: str, name: str) -> None:
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from orchestrator.config.experiment import load_config, with_values
    from trials.train import train

    exp = load_config(config_path)
    search, base = exp.search, dataclasses.replace(exp, search=None)

    def objective(config):  # Ray's docs: train, report the metric at every eval
        cfg = with_values(base, {**config, "train.num_threads": 1})

        def report(record, save=None):
            tune.report({k: v for k, v in record.items() if isinstance(v, (int, float)) and math.isfinite(v)})

        train(cfg, report)

    space = {key: {"loguniform": tune.loguniform, "uniform": tune.uniform}[d.kind](d.low, d.high)
             for key, d in search.params.items()}
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False)
    tuner = tune.Tuner(
        tune.with_resources(objective, {"cpu": search.cpus_per_trial}),
        tune_config=tune.TuneConfig(metric="val_acc", mode="max", search_alg=OptunaSearch(),
                                    num_samples=search.num_samples),
        run_config=tune.RunConfig(name=name, storage_path=storage),
        param_space=space,
    )
    tuner.fit()
    ray.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
