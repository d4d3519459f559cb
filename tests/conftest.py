"""Shared fixtures: tiny experiment configs that train in well under a second per 100 steps."""

import os

import pytest
from hypothesis import settings

# CI runs a fixed draw of every property test (reproducible; a red CI is a real regression).
# Locally the draws stay random to keep finding new cases.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

from orchestrator.config.experiment import config_from_dict

TINY = {
    "name": "tiny",
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 7, "train_fraction": 0.5},
    "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32},
    "optim": {"lr": 3e-3, "weight_decay": 0.1},
    "train": {"steps": 60, "batch_size": 16, "num_threads": 1, "eval_dense_until": 20,
              "eval_dense_every": 5, "eval_every": 20, "checkpoint_every": 30,
              "target_val_acc": 1.0, "target_patience": 0},
}


def deep_merge(base: dict, extra: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture
def tiny_cfg():
    """Factory: tiny_cfg(train={"steps": 10}) -> a validated ExperimentConfig."""
    return lambda **extra: config_from_dict(deep_merge(TINY, extra))
