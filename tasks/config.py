"""TaskConfig: which dataset to build. Owned by `tasks`; composed by orchestrator.config.experiment."""

from __future__ import annotations

from dataclasses import dataclass, field

# NEEDS_PRIME and is_prime belong to tasks.modular (which divides by y); re-exported here for
# existing imports. The registry imports no config at run time, so there is no circle.
from tasks.modular import NEEDS_PRIME, is_prime  # noqa: F401
from tasks.registry import check_task


@dataclass
class TaskConfig:
    """The dataset: a pure function of these fields, `train_fraction` and the experiment seed."""

    name: str = "modular"
    """modular | s5 | sparse_parity | lm | mixture"""
    op: str = "x*y"
    """Operation for `modular` and `s5` (see tasks.modular.OPERATIONS, tasks.permutation.OPERATIONS)."""
    ops: list[str] = field(default_factory=list)
    """Operations for `mixture` (each a modular or s5 operation name)."""
    p: int = 97
    """Modulus of the modular operations."""
    train_fraction: float = 0.5
    """Share of the table (or of the samples) used for training; the rest is validation."""
    n_bits: int = 40
    """sparse_parity: input length in bits."""
    k_bits: int = 3
    """sparse_parity: number of relevant bits whose parity is the label."""
    n_samples: int = 2000
    """sparse_parity: number of samples drawn (train + validation)."""
    path: str = ""
    """lm: a .bin file of uint16 tokens, or any other file read as bytes."""
    context_length: int = 64
    """lm: tokens per training window."""
    val_windows: int = 64
    """lm: number of fixed validation windows drawn from the validation tail of the file."""

    def validate(self) -> None:
        """Raise ValueError('field: message') on the first invalid field."""
        check_task(self)
