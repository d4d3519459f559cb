"""Which way is better: the one place in `analysis` that knows "min" from "max".

Every decision that ranks values (which trial is best, what Optuna minimises) goes through
`as_cost`, so a metric is turned into a cost once: lower is better afterwards, whatever the
metric was. Whether a value has reached a threshold is groktune.events.reaches (the event rule's
own comparison); `reached` applies it to an array.
"""

from __future__ import annotations

import numpy as np

from groktune.events import MODES, check_mode, reaches

# The direction of each metric the analysis compares; anything else must be given explicitly.
METRIC_MODES = {
    "train_acc": "max",
    "val_acc": "max",
    "final_val_acc": "max",
    "final_train_acc": "max",
    "train_loss": "min",
    "val_loss": "min",
    "final_val_loss": "min",
    "steps": "min",
}


def as_cost(values, mode: str) -> np.ndarray:
    """Values as a cost (lower is better): unchanged for "min", negated for "max".

    Args:
        values: scalar or array-like of floats (NaN stays NaN).
        mode: "min" when lower values are better, "max" when higher are.
    Returns:
        A float64 array of costs.
    """
    arr = np.asarray(values, dtype=np.float64)
    return arr if check_mode(mode) == "min" else -arr


def reached(values, threshold: float, mode: str) -> np.ndarray:
    """Which values are at or beyond `threshold` in the good direction (NaN never is).

    Args:
        values: array-like of floats.
        threshold: the target value.
        mode: "max" (reached when value >= threshold) or "min" (value <= threshold).
    Returns:
        A bool array, False where the value is NaN.
    """
    check_mode(mode)
    # groktune.events.reaches is the one comparison the event rule uses; applied per value here.
    return np.array([reaches(x, threshold, mode) for x in np.asarray(values, dtype=np.float64).ravel()],
                    dtype=bool).reshape(np.shape(values))
