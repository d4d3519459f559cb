"""How many answer classes a task has, and so the accuracy of guessing (chance).

The sweep's score (orchestrator.objective.grok_score) measures progress from chance; it takes
it from here when per-class metrics are off, so a parity plateau at 0.5 +- noise is not read
as progress (issue 11).
"""

from __future__ import annotations

from tasks.config import TaskConfig
from tasks.permutation import PERMUTATIONS


def n_classes(cfg: TaskConfig) -> int | None:
    """The number of answer tokens of the task (tasks.base: answer_tokens), None for lm.

    Args:
        cfg: the task section (validated).
    Returns:
        p for modular, 120 for s5, 2 for sparse parity, the answer vocabulary of a mixture
        (p if it has a modular op, plus 120 if it has an s5 op), None for lm (next-token
        prediction over a vocabulary only the data file knows).
    """
    from tasks.modular import OPERATIONS as MODULAR_OPERATIONS

    if cfg.name == "modular":
        return int(cfg.p)
    if cfg.name == "s5":
        return len(PERMUTATIONS)
    if cfg.name == "sparse_parity":
        return 2
    if cfg.name == "mixture":
        modular = any(op in MODULAR_OPERATIONS for op in cfg.ops)
        s5 = any(op not in MODULAR_OPERATIONS for op in cfg.ops)
        return (int(cfg.p) if modular else 0) + (len(PERMUTATIONS) if s5 else 0)
    return None


def chance_level(cfg: TaskConfig) -> float | None:
    """Val accuracy of uniform guessing: 1 / n_classes(cfg) (0.5 for parity), None for lm."""
    n = n_classes(cfg)
    return None if not n else 1.0 / n


__all__ = ["chance_level", "n_classes"]
