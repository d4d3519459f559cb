"""Per-member scalars: one formula for one model and for K models stacked along dim 0.

A hyperparameter of the optimizer or a filter is a Python float when the tensors belong to one
model, and a (K,) tensor when each tensor holds K members' copies stacked along dim 0
(trials.stacked). The helpers below take either: a float goes to torch's `_foreach_` kernels as
a scalar (exactly what a single run always did), a (K,) tensor is broadcast as a (K, 1, ..., 1)
column per tensor. trials.optim and trials.filters write each update once with them, so a
stacked member follows its own scalars through the same arithmetic as its separate run.
"""

from __future__ import annotations

import math

import torch

Scalar = float | torch.Tensor
"""A float (one model) or a (K,) tensor (one value per stacked member)."""


def per_member(c: Scalar, xs: list[torch.Tensor]) -> Scalar | list[torch.Tensor]:
    """c as a `_foreach_` operand for xs: a float as it is, a (K,) tensor as a (K, 1, ..) view per x."""
    if isinstance(c, torch.Tensor):
        return [c.view(-1, *([1] * (x.ndim - 1))) for x in xs]
    return c


def column(c: Scalar, x: torch.Tensor) -> Scalar:
    """c broadcastable against one tensor x: a float as it is, a (K,) tensor as (K, 1, ..., 1)."""
    return c.view(-1, *([1] * (x.ndim - 1))) if isinstance(c, torch.Tensor) else c


def is_zero(c: Scalar) -> bool:
    """True for the float 0 only: a per-member tensor always takes part (its zeros are exact no-ops)."""
    return not isinstance(c, torch.Tensor) and c == 0


def axpy(xs: list[torch.Tensor], ys: list[torch.Tensor], c: Scalar) -> list[torch.Tensor]:
    """New tensors x + c y."""
    if isinstance(c, torch.Tensor):
        return torch._foreach_add(xs, torch._foreach_mul(ys, per_member(c, ys)))
    return torch._foreach_add(xs, ys, alpha=c)


def axpy_(xs: list[torch.Tensor], ys: list[torch.Tensor], c: Scalar) -> None:
    """x <- x + c y in place."""
    if isinstance(c, torch.Tensor):
        torch._foreach_add_(xs, torch._foreach_mul(ys, per_member(c, ys)))
    else:
        torch._foreach_add_(xs, ys, alpha=c)


def addcmul_(xs: list[torch.Tensor], a: list[torch.Tensor], b: list[torch.Tensor], c: Scalar) -> None:
    """x <- x + c a b in place."""
    if isinstance(c, torch.Tensor):
        torch._foreach_addcmul_(xs, torch._foreach_mul(a, per_member(c, a)), b)
    else:
        torch._foreach_addcmul_(xs, a, b, value=c)


def addcdiv_(xs: list[torch.Tensor], a: list[torch.Tensor], b: list[torch.Tensor], c: Scalar) -> None:
    """x <- x + c a / b in place."""
    if isinstance(c, torch.Tensor):
        torch._foreach_addcdiv_(xs, torch._foreach_mul(a, per_member(c, a)), b)
    else:
        torch._foreach_addcdiv_(xs, a, b, value=c)


def sqrt(c: Scalar) -> Scalar:
    return c.sqrt() if isinstance(c, torch.Tensor) else math.sqrt(c)


__all__ = ["Scalar", "addcdiv_", "addcmul_", "axpy", "axpy_", "column", "is_zero", "per_member", "sqrt"]
