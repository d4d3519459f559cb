"""Upper bounds on sizes and budgets, checked when a config is validated, before any allocation.

Without them `train.steps: 1e12` filled memory building the eval plan and `d_model: 1e9` the
model. The bounds are far above any grokking study and low enough that a typo fails at once
instead of after an hour. trials.config applies them; no torch here.
"""

from __future__ import annotations

import math
from typing import Any

MAX_STEPS = 1_000_000_000
MAX_EVALS = 1_000_000
"""Evaluations one run's schedule may hold (each is a record in metrics.jsonl)."""
MAX_PARAMS = 10_000_000_000
"""Estimated model parameters (40 GB of fp32 weights, before optimizer state)."""
MAX_WIDTH = 1 << 20
MAX_LAYERS = 1024
MAX_BATCH = 1 << 24
MAX_WINDOW = 100_000
"""Grokfast MA keeps `window` gradients of every parameter."""
MAX_COUNT = 1_000_000
"""Patiences, probe counts and other small counters."""


def at_most(name: str, value: float, high: float) -> None:
    """Raise ValueError("name: got V, must be <= HIGH") when value > high."""
    if value > high:
        shown = f"{value:.3g}" if isinstance(value, float) or value > 10**12 else str(value)
        raise ValueError(f"{name}: got {shown}, must be <= {high:_}")


def estimated_evals(train: Any) -> float:
    """Roughly how many evals trials.evalplan.eval_steps plans for a TrainConfig (an upper bound).

    Args:
        train: a TrainConfig (steps, eval_dense_until/every, eval_log_ratio, eval_every).
    Returns:
        The estimate; nothing is built.
    """
    dense = min(train.eval_dense_until, train.steps) / train.eval_dense_every
    start = max(train.eval_dense_until, 1)
    ratio = math.log(train.eval_log_ratio)
    logs = math.log(train.steps / start) / ratio if train.steps > start else 0.0
    return dense + logs + train.steps / train.eval_every + 2


__all__ = ["MAX_BATCH", "MAX_COUNT", "MAX_EVALS", "MAX_LAYERS", "MAX_PARAMS", "MAX_STEPS", "MAX_WIDTH",
           "MAX_WINDOW", "at_most", "estimated_evals"]
