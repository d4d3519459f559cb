"""ExperimentConfig: the one typed config tree (task, model, optim, train, search).

    cfg = load_config("configs/modmul_grokfast.yaml", ["optim.lr=3e-4"])

Unknown keys, wrong types and out-of-range values raise ConfigError with a one-line message
naming the dotted key, the value and what is allowed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from groktune.names import check_name
from groktune.yamlio import load_yaml_file
from orchestrator.config.tree import (
    ConfigError,
    apply_overrides,
    set_dotted,
    from_dict,
    to_dict,
    validate_tree,
)
from orchestrator.search.config import SearchConfig
from tasks.config import TaskConfig
from trials.config import ModelConfig, OptimConfig, ProbeConfig, TrainConfig


MAX_SEED = 2**31 - 1
"""Seeds derive streams seed .. seed + 3 and population members seed + 1000 i; all stay in int64."""


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    """Names the run or sweep folder (`--name` overrides it): one path component of letters, digits and `_.-`."""
    seed: int = 0
    """Seeds the data split, the initialisation, batch draws, dropout and gradient noise."""
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    """Learning-dynamics probes (weights, activations, attention, Fourier, per-class); off by default."""
    search: SearchConfig | None = None
    """Only for `groktune sweep`: the search space, algorithm, scheduler and resources."""

    def validate(self) -> None:
        try:
            check_name(self.name)  # it names run and sweep folders: one safe path component
        except ValueError as err:
            raise ValueError(f"name: {err}") from None
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed: got {self.seed}, must be in [0, {MAX_SEED}]")
        if self.search is not None:
            self.search.check_against(self)


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with a one-line ConfigError for missing or malformed files."""
    data = load_yaml_file(path, ConfigError, what="config file")  # the one loader: limits, 1e-3
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections, got {type(data).__name__}")
    return data


def config_from_dict(data: dict, overrides: list[str] | None = None) -> ExperimentConfig:
    """Build and validate an ExperimentConfig from a nested dict plus `--set` overrides."""
    data = apply_overrides(copy.deepcopy(data), list(overrides or []))  # never the caller's dict
    cfg = from_dict(ExperimentConfig, data)
    validate_tree(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Defaults < YAML file < overrides; validated."""
    return config_from_dict(read_yaml(path), overrides)


def config_to_dict(cfg: ExperimentConfig) -> dict:
    data = to_dict(cfg)
    if data.get("search") is None:
        data.pop("search", None)
    return data


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def with_values(cfg: ExperimentConfig, values: dict) -> ExperimentConfig:
    """A re-validated copy of `cfg` with dotted keys set, e.g. {"optim.lr": 3e-4} (sweeps)."""
    data = config_to_dict(cfg)
    for dotted, value in values.items():
        set_dotted(data, dotted, value)
    return config_from_dict(data)


__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "MAX_SEED",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "load_config",
    "read_yaml",
    "with_values",
]
