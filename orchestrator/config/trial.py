"""From a sampled point to one trial's ExperimentConfig (runs inside the Ray workers).

A sampled point is a flat dict of dotted keys (`{"optim.lr": 3e-3, "task.op": "x*y"}`) plus,
when the sweep repeats configs over seeds, "seed" (random/grid/pbt) or "__trial_index__"
(Ray's Repeater around TPE). The trial config is the experiment config without `search`,
with the sampled values set (quantised as the space says), the seed replaced and the torch
thread count set from the trial's CPUs so parallel trials do not oversubscribe the cores.
With search.seeds_per_trial = K > 1 a trial is a population (trials.train.train_population): the same config
K times, member i with seed trial_seed + 1000 i (`TrialConfigMaker.members`).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from groktune.layout import task_label as layout_task_label
from groktune.space import Dist, snap_values
from orchestrator.config.experiment import ExperimentConfig, config_from_dict, config_to_dict
from orchestrator.config.tree import set_dotted
from orchestrator.search.config import trial_device

TRIAL_INDEX = "__trial_index__"
MEMBER_SEED_STRIDE = 1000
"""Member i of a population trial trains seed + 1000 i: trials.setup.build_run derives its
generators from seed .. seed + 3, so members a stride apart share no stream."""


@dataclass
class TrialConfigMaker:
    """Picklable `make_config(point) -> ExperimentConfig` handed to the trainable."""

    base: dict
    """The experiment config as a dict, `search` included (its space, seeds and resources)."""
    params: dict[str, Dist] = field(default_factory=dict)
    """The parsed space (SearchConfig.params): what the point's values are snapped and resolved by."""
    overrides: dict = field(default_factory=dict)
    """Dotted keys every trial gets (e.g. train.checkpoint_every for PBT)."""

    def __call__(self, point: dict) -> ExperimentConfig:
        search = self.base["search"]
        data = copy.deepcopy(self.base)
        data.pop("search", None)
        for key, value in searched_values(point, self.params).items():
            set_dotted(data, key, value)
        data["seed"] = trial_seed(point, search["seeds"])
        for key, value in self.overrides.items():
            set_dotted(data, key, value)
        # Ray's GPU reservation decides the device: auto -> cuda with GPUs per trial, else cpu.
        data["train"]["device"] = trial_device(data["train"].get("device", "auto"), search["gpus_per_trial"])
        if not data["train"].get("num_threads"):
            data["train"]["num_threads"] = max(1, int(search["cpus_per_trial"]))
        return config_from_dict(data)

    def members(self, point: dict) -> list[ExperimentConfig]:
        """A population trial's configs: the point's config once per member seed."""
        cfg = self(point)
        k = self.base["search"]["seeds_per_trial"]
        return [dataclasses.replace(cfg, seed=cfg.seed + MEMBER_SEED_STRIDE * i) for i in range(k)]


def searched_values(point: dict, params: dict[str, Dist]) -> dict:
    """The point's values of the searched keys, quantised (Optuna drops q on log scales) and
    per-value positions resolved; `params`: the parsed space (SearchConfig.params)."""
    return snap_values(params, {k: v for k, v in point.items() if k in params})


def trial_seed(point: dict, seeds: list[int]) -> int:
    """The seed of a trial: the sampled "seed", the Repeater's index into `seeds`, or seeds[0]."""
    if "seed" in point:
        return int(point["seed"])
    if TRIAL_INDEX in point:
        return int(seeds[int(point[TRIAL_INDEX]) % len(seeds)])
    return int(seeds[0])


def maker_for(cfg: ExperimentConfig, overrides: dict | None = None) -> TrialConfigMaker:
    return TrialConfigMaker(base=config_to_dict(cfg), params=dict(cfg.search.params), overrides=dict(overrides or {}))


def task_label(cfg: Any) -> str:
    """groktune.layout.task_label of an ExperimentConfig's task, e.g. "modular:x*y"."""
    return layout_task_label(dataclasses.asdict(cfg.task))


__all__ = ["MEMBER_SEED_STRIDE", "TRIAL_INDEX", "TrialConfigMaker", "maker_for", "searched_values", "task_label", "trial_seed"]
