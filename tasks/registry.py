"""check_task (TaskConfig.validate) and build_task: the dispatch from a TaskConfig to a dataset.

Each check raises ValueError("field: got X, <what is allowed>"), one line; the orchestrator
prefixes the section ("task."). File problems are found when building (DataError), not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from tasks.base import AlgorithmicData
from tasks.lm import TokenStream
from tasks.mixture import build_mixture
from tasks.modular import OPERATIONS as MODULAR_OPERATIONS
from tasks.modular import NEEDS_PRIME, build_modular, is_prime
from tasks.permutation import ALIASES as S5_ALIASES
from tasks.permutation import OPERATIONS as S5_OPERATIONS
from tasks.permutation import PERMUTATIONS, build_s5, canonical_op
from tasks.sparse_parity import build_sparse_parity

if TYPE_CHECKING:  # tasks.config imports this module to validate; a type is all we need back
    from tasks.config import TaskConfig

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


@dataclass(frozen=True)
class TaskSpec:
    """How one task is checked and built: the registry entry of a task name."""

    check: Callable[[TaskConfig], None]
    """Raise ValueError("field: got X, ...") on the first invalid field (train_fraction aside)."""
    build: Callable[[TaskConfig, float, int], AlgorithmicData | TokenStream]
    """(cfg, train_fraction, seed) -> the dataset on the CPU (lm: a TokenStream)."""
    classes: Callable[[TaskConfig], int | None]
    """The number of answer tokens (tasks.classes.n_classes), None when only the data knows."""


def _mixture_classes(cfg: TaskConfig) -> int:
    """p if some op is modular, plus 120 if some op is s5 (the answer vocabulary)."""
    modular = any(op in MODULAR_OPERATIONS for op in cfg.ops)
    s5 = any(op not in MODULAR_OPERATIONS for op in cfg.ops)
    return (int(cfg.p) if modular else 0) + (len(PERMUTATIONS) if s5 else 0)


# The one table of tasks: validation takes its allowed names from it, build_task dispatches on
# it. A new task is a module with its check and build functions plus one line here.
REGISTRY: dict[str, TaskSpec] = {
    "modular": TaskSpec(_check_modular, lambda c, frac, seed: build_modular(c.op, c.p, frac, seed),
                        lambda c: int(c.p)),
    "s5": TaskSpec(_check_s5, lambda c, frac, seed: build_s5(c.op, frac, seed), lambda c: len(PERMUTATIONS)),
    "sparse_parity": TaskSpec(_check_sparse_parity, lambda c, frac, seed: build_sparse_parity(
        c.n_bits, c.k_bits, c.n_samples, frac, seed), lambda c: 2),
    "lm": TaskSpec(_check_lm, lambda c, frac, seed: TokenStream(c.path, c.context_length, frac, c.val_windows),
                   lambda c: None),  # next-token prediction: the vocabulary is the file's
    "mixture": TaskSpec(lambda c: _check_mixture(c.ops, c.p),
                        lambda c, frac, seed: build_mixture(list(c.ops), c.p, frac, seed), _mixture_classes),
}
TASKS = tuple(REGISTRY)


def check_task(cfg: TaskConfig) -> None:
    """Raise ValueError('field: got X, allowed ...') on the first invalid field of `cfg`."""
    if cfg.name not in REGISTRY:
        _fail("name", cfg.name, f"allowed: {', '.join(REGISTRY)}")
    _check_fraction(cfg.train_fraction)
    REGISTRY[cfg.name].check(cfg)


def build_task(
    cfg: TaskConfig, seed: int, device: str | torch.device = "cpu"
) -> AlgorithmicData | TokenStream:
    """Validate `cfg` and build its dataset: a pure function of (cfg, seed).

    Args:
        cfg: the task section of the experiment config.
        seed: the experiment seed (splits, sparse-parity draws).
        device: where the tensors (or the LM batches) go.
    Returns:
        AlgorithmicData on `device` for modular, s5, sparse_parity and mixture; a TokenStream
        for lm.
    Raises:
        ValueError: an invalid field (one line); DataError: an unusable lm file.
    """
    check_task(cfg)
    return REGISTRY[cfg.name].build(cfg, float(cfg.train_fraction), seed).to(device)
