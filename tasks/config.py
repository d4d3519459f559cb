"""TaskConfig: which dataset to build, and its checks. Owned by `tasks`; composed by
orchestrator.config.experiment.

Each check raises ValueError("field: got X, <what is allowed>"), one line; the orchestrator
prefixes the section ("task."). File problems are found when building (DataError), not here.
Torch-free (tasks.ops holds the operation names), so a config is checked before torch loads;
tasks.registry builds the datasets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from tasks.ops import MODULAR_OPERATIONS, NEEDS_PRIME, S5_ALIASES, S5_OPERATIONS, S5_ORDER, canonical_op, is_prime

MAX_P = 4096  # p*p rows of 4 int64 tokens: 0.5 GB at the cap
MAX_BITS = 1024  # sparse_parity sequence length bound
MAX_SAMPLES = 1 << 20  # sparse_parity samples bound (see tasks.sparse_parity.EXHAUSTIVE_BITS)
MAX_CONTEXT = 1 << 16  # lm window length bound (attention is quadratic in it)
MAX_VAL_WINDOWS = 1 << 20  # lm validation windows bound


def _fail(name: str, value: object, rule: str) -> None:
    raise ValueError(f"{name}: got {value!r}, {rule}")


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(name, value, "must be an integer")
    if value < lo or (hi is not None and value > hi):
        _fail(name, value, f"must be >= {lo}" if hi is None else f"must be in [{lo}, {hi}]")


def _check_modulus(p: object, ops: list[str]) -> None:
    """p for the modular ops in `ops`: an integer in [2, MAX_P], prime if one divides by y."""
    _check_int("p", p, 2, MAX_P)
    dividing = [op for op in ops if op in NEEDS_PRIME]
    if dividing and not is_prime(p):
        _fail("p", p, f"must be prime for {dividing[0]!r} (it needs a modular inverse)")


def _check_fraction(value: object) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and 0.0 < value < 1.0):
        _fail("train_fraction", value, "must be a number strictly between 0 and 1")


def _check_mixture(ops: object, p: object) -> None:
    allowed = ", ".join(list(MODULAR_OPERATIONS) + list(S5_OPERATIONS) + list(S5_ALIASES))
    if not isinstance(ops, (list, tuple)) or not ops:
        _fail("ops", ops, f"must be a non-empty list of operations from: {allowed}")
    canon = []
    for op in ops:
        if not isinstance(op, str) or (op not in MODULAR_OPERATIONS and canonical_op(op) is None):
            _fail("ops", op, f"allowed: {allowed}")
        canon.append(op if op in MODULAR_OPERATIONS else canonical_op(op))
    if len(set(canon)) != len(canon):
        _fail("ops", list(ops), "must name each operation once (aliases count as their operation)")
    modular = [op for op in canon if op in MODULAR_OPERATIONS]
    if modular:
        _check_modulus(p, modular)


def _check_sparse_parity(cfg: TaskConfig) -> None:
    _check_int("n_bits", cfg.n_bits, 1, MAX_BITS)
    _check_int("k_bits", cfg.k_bits, 1)
    if cfg.k_bits > cfg.n_bits:
        _fail("k_bits", cfg.k_bits, f"must be <= n_bits ({cfg.n_bits})")
    _check_int("n_samples", cfg.n_samples, 2, MAX_SAMPLES)
    if cfg.n_samples > 2**cfg.n_bits:
        rule = f"must be <= 2**n_bits = {2**cfg.n_bits} (the strings are distinct)"
        _fail("n_samples", cfg.n_samples, rule)


def _check_lm(cfg: TaskConfig) -> None:
    if not isinstance(cfg.path, str) or not cfg.path.strip():
        _fail("path", cfg.path, "must name a token file (.bin of uint16, or any file as bytes)")
    if "\x00" in cfg.path or not cfg.path.isprintable():
        _fail("path", cfg.path, "must be a file path without control characters")
    _check_int("context_length", cfg.context_length, 1, MAX_CONTEXT)
    _check_int("val_windows", cfg.val_windows, 1, MAX_VAL_WINDOWS)


def _check_modular(cfg: TaskConfig) -> None:
    if not isinstance(cfg.op, str) or cfg.op not in MODULAR_OPERATIONS:
        _fail("op", cfg.op, f"allowed for modular: {', '.join(MODULAR_OPERATIONS)}")
    _check_modulus(cfg.p, [cfg.op])


def _check_s5(cfg: TaskConfig) -> None:
    if not isinstance(cfg.op, str) or canonical_op(cfg.op) is None:
        names = ", ".join(list(S5_OPERATIONS) + list(S5_ALIASES))
        _fail("op", cfg.op, f"allowed for s5: {names}")


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


@dataclass(frozen=True)
class TaskSpec:
    """How one task is checked and how many answer classes it has: the table entry of a task name
    (tasks.registry.BUILDERS holds how it is built)."""

    check: Callable[[TaskConfig], None]
    """Raise ValueError("field: got X, ...") on the first invalid field (train_fraction aside)."""
    classes: Callable[[TaskConfig], int | None]
    """The number of answer tokens (tasks.classes.n_classes), None when only the data knows."""


def _mixture_classes(cfg: TaskConfig) -> int:
    """p if some op is modular, plus 120 if some op is s5 (the answer vocabulary)."""
    modular = any(op in MODULAR_OPERATIONS for op in cfg.ops)
    s5 = any(op not in MODULAR_OPERATIONS for op in cfg.ops)
    return (int(cfg.p) if modular else 0) + (S5_ORDER if s5 else 0)


# The table of tasks: validation takes its allowed names from it. A new task is a module with
# its check and build functions, one line here and one in tasks.registry.BUILDERS.
SPECS: dict[str, TaskSpec] = {
    "modular": TaskSpec(_check_modular, lambda c: int(c.p)),
    "s5": TaskSpec(_check_s5, lambda c: S5_ORDER),
    "sparse_parity": TaskSpec(_check_sparse_parity, lambda c: 2),
    "lm": TaskSpec(_check_lm, lambda c: None),  # next-token prediction: the vocabulary is the file's
    "mixture": TaskSpec(lambda c: _check_mixture(c.ops, c.p), _mixture_classes),
}
TASKS = tuple(SPECS)


def check_task(cfg: TaskConfig) -> None:
    """Raise ValueError('field: got X, allowed ...') on the first invalid field of `cfg`."""
    if cfg.name not in SPECS:
        _fail("name", cfg.name, f"allowed: {', '.join(SPECS)}")
    _check_fraction(cfg.train_fraction)
    SPECS[cfg.name].check(cfg)


__all__ = ["MAX_BITS", "MAX_CONTEXT", "MAX_P", "MAX_SAMPLES", "MAX_VAL_WINDOWS", "SPECS", "TASKS", "TaskConfig",
           "TaskSpec", "check_task"]
