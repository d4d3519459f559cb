"""groktune tasks: algorithmic datasets as tensors, and memory-mapped token streams.

    data = build_task(TaskConfig(name="modular", op="x/y", p=97), seed=0, device="cuda")
    logits = model(data.train_x)[:, -1]          # the answer is predicted at the last position
    loss = F.cross_entropy(logits, data.train_y)

Every dataset is a pure function of (task fields, train_fraction, seed). Token layouts are in
the docstrings of tasks.modular, tasks.permutation, tasks.sparse_parity and tasks.mixture.
"""

from tasks.base import AlgorithmicData
from tasks.classes import chance_level, n_classes
from tasks.config import NEEDS_PRIME, TaskConfig
from tasks.errors import DataError
from tasks.lm import TokenStream, perplexity, token_accuracy
from tasks.registry import TASKS, build_task, check_task
from tasks.split import split_indices

from tasks.modular import OPERATIONS as _MODULAR
from tasks.permutation import ALIASES as _S5_ALIASES
from tasks.permutation import OPERATIONS as _S5

MODULAR_OPERATIONS: list[str] = list(_MODULAR)
"""Modular operation names, as written in configs (Power et al. 2022, Table 1)."""
S5_OPERATIONS: list[str] = list(_S5)
"""Canonical S5 operation names: x∘y, x∘y∘x⁻¹, x∘y∘x."""
S5_ALIASES: dict[str, str] = dict(_S5_ALIASES)
"""ASCII spellings of the S5 operations accepted in configs: xy, xyx^-1, xyx."""

__all__ = [
    "AlgorithmicData",
    "DataError",
    "MODULAR_OPERATIONS",
    "NEEDS_PRIME",
    "S5_ALIASES",
    "S5_OPERATIONS",
    "TASKS",
    "TaskConfig",
    "TokenStream",
    "build_task",
    "chance_level",
    "check_task",
    "n_classes",
    "perplexity",
    "split_indices",
    "token_accuracy",
]
