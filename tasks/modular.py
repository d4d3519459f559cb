"""Modular arithmetic tables: the binary operations of Power et al. 2022 ("Grokking"), mod p.

Each operation is a small function of int64 tensors (x, y, p) over all pairs at once
(danielmamay/grokking style); `modular_table` reduces the result mod p. Operations in
`tasks.ops.NEEDS_PRIME` divide by y on some rows, so p must be prime; a table leaves out
exactly the rows that would divide by zero (`DIVIDES_BY_Y`): for x/y the p rows y = 0, as in the
paper's Table 1; for "x/y if y odd else x-y" none, since y = 0 is even and takes x - 0 = x
(openai/grok's generator keeps those rows too). Every table but x/y's covers all p*p pairs.

Token layout (see tasks.base): ids 0..p-1 are the residues (names "0".."p-1"), id p is the op
token, id p+1 is "=": x = [a, p, b, p+1], y = c, vocab_size = p + 2, answer_tokens = 0..p-1.
Intermediate values stay below p**3 + p**3, well inside int64 for any p the config allows.
"""

from __future__ import annotations

from typing import Callable

import torch

from tasks.base import AlgorithmicData, Family, OpTable, assemble

Tensor = torch.Tensor


def mod_pow(base: Tensor, exponent: int, p: int) -> Tensor:
    """base ** exponent mod p elementwise, by square-and-multiply (products stay below p**2)."""
    result = torch.ones_like(base)
    base = base % p
    while exponent > 0:
        if exponent & 1:
            result = (result * base) % p
        base = (base * base) % p
        exponent >>= 1
    return result


def mod_inverse(y: Tensor, p: int) -> Tensor:
    """y ** (p - 2) mod p: the inverse of y by Fermat's little theorem (p prime, y != 0 mod p)."""
    return mod_pow(y, p - 2, p)


def _div(x: Tensor, y: Tensor, p: int) -> Tensor:
    return x * mod_inverse(y, p)


def _even(v: Tensor) -> Tensor:
    return v % 2 == 0


# name -> f(x, y, p); the result is reduced mod p by modular_table. Names are the config's.
# torch.where evaluates both branches: _div of y = 0 gives 0 (0 ** (p-2)), never an error, and
# those values are discarded, or the row is left out (DIVIDES_BY_Y).
OPERATIONS: dict[str, Callable[[Tensor, Tensor, int], Tensor]] = {
    "x+y": lambda x, y, p: x + y,
    "x-y": lambda x, y, p: x - y,
    "x*y": lambda x, y, p: x * y,
    "x/y": _div,
    "x^2+y": lambda x, y, p: x**2 + y,
    "x^3+y": lambda x, y, p: x**3 + y,
    "x^2+y^2": lambda x, y, p: x**2 + y**2,
    "x^2+xy+y^2": lambda x, y, p: x**2 + x * y + y**2,
    "x^2+xy+y^2+x": lambda x, y, p: x**2 + x * y + y**2 + x,
    "x^3+xy": lambda x, y, p: x**3 + x * y,
    "x^3+xy^2+y": lambda x, y, p: x**3 + x * y**2 + y,
    "x/y if y odd else x-y": lambda x, y, p: torch.where(_even(y), x - y, _div(x, y, p)),
    "x+y if x even else x*y": lambda x, y, p: torch.where(_even(x), x + y, x * y),
    "x+y if x even else x-y": lambda x, y, p: torch.where(_even(x), x + y, x - y),
}


# name -> the rows (bool, per pair) on which the op divides by y; keys are tasks.ops.NEEDS_PRIME.
DIVIDES_BY_Y: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "x/y": lambda x, y: torch.ones_like(y, dtype=torch.bool),
    "x/y if y odd else x-y": lambda x, y: ~_even(y),
}


def operand_pairs(op: str, p: int) -> tuple[Tensor, Tensor]:
    """All (x, y) operand pairs of `op`, x-major, less those that would divide by zero.

    Returns:
        (x, y): LongTensors of shape (p*p,), or (p*(p-1),) for x/y (y = 0 left out).
    """
    x, y = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")  # (p, p) each
    x, y = x.reshape(-1), y.reshape(-1)
    if op in DIVIDES_BY_Y:
        keep = ~(DIVIDES_BY_Y[op](x, y) & (y % p == 0))
        x, y = x[keep], y[keep]
    return x, y


def modular_table(op: str, p: int) -> OpTable:
    """The full table of `op` mod p.

    Args:
        op: a key of OPERATIONS.
        p: the modulus (prime when op is in tasks.ops.NEEDS_PRIME).
    Returns:
        OpTable(op, "mod", left=x, right=y, out=op(x, y) mod p), each (N,).
    """
    if op not in OPERATIONS:
        raise ValueError(f"op: got {op!r}, allowed: {', '.join(OPERATIONS)}")
    x, y = operand_pairs(op, p)  # (N,), (N,)
    out = OPERATIONS[op](x, y, p) % p  # (N,); torch's % is Python's: non-negative for p > 0
    return OpTable(op=op, family="mod", left=x, right=y, out=out)


def residues(p: int) -> Family:
    """The family of residues 0..p-1, named by their value."""
    return Family(name="mod", names=[str(i) for i in range(p)])


def build_modular(op: str, p: int, train_fraction: float, seed: int) -> AlgorithmicData:
    """The dataset `a op b = c (mod p)`, split by train_fraction and seed.

    Args:
        op: a key of OPERATIONS.
        p: the modulus.
        train_fraction: share of the table used for training, in (0, 1).
        seed: the experiment seed (only the split depends on it).
    Returns:
        AlgorithmicData with T = 4, vocab_size = p + 2 (layout in the module docstring).
    """
    return assemble([residues(p)], [modular_table(op, p)], train_fraction, seed)
