"""How many answer classes a task has, and so the accuracy of guessing (chance).

The sweep's score (orchestrator.sweep.objective.grok_score) measures progress from chance and takes
it from here alone (the trial adapter hands it in), so a parity plateau at 0.5 +- noise is not
read as progress.
"""

from __future__ import annotations

from tasks.config import SPECS, TaskConfig


def n_classes(cfg: TaskConfig) -> int | None:
    """The number of answer tokens of the task (tasks.base: answer_tokens), None for lm.

    Args:
        cfg: the task section (validated).
    Returns:
        p for modular, 120 for s5, 2 for sparse parity, the answer vocabulary of a mixture
        (p if it has a modular op, plus 120 if it has an s5 op), None for lm (next-token
        prediction over a vocabulary only the data file knows).
    """
    return SPECS[cfg.name].classes(cfg)


def chance_level(cfg: TaskConfig) -> float | None:
    """Val accuracy of uniform guessing: 1 / n_classes(cfg) (0.5 for parity), None for lm."""
    n = n_classes(cfg)
    return None if not n else 1.0 / n


__all__ = ["chance_level", "n_classes"]
