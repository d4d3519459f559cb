"""The symmetric group S5: full 120 x 120 tables of x∘y, x∘y∘x⁻¹ and x∘y∘x.

Convention. A permutation is a tuple s of the images of 0..4: s maps i to s[i]. Composition
is function composition, right to left: (x∘y)[i] = x[y[i]] (apply y first, then x). The 120
elements are ordered as `itertools.permutations(range(5))` (lexicographic), so element id 0 is
the identity (0,1,2,3,4). openai/grok's "s5" computes b[a], i.e. y∘x here: the transposed table
of the same group, an equivalent task.

Token layout (see tasks.base): ids 0..119 are the permutations, named in one-line notation
"[01234]"; id 120 is the op token, id 121 is "=": x = [a, 120, b, 121], y = c,
vocab_size = 122, answer_tokens = 0..119.
"""

from __future__ import annotations

import itertools
from typing import Callable

import torch

from tasks.base import AlgorithmicData, Family, OpTable, assemble
from tasks.ops import S5_ALIASES, canonical_op

Tensor = torch.Tensor

DEGREE = 5
PERMUTATIONS: list[tuple[int, ...]] = list(itertools.permutations(range(DEGREE)))  # 120


def perm_tensor() -> Tensor:
    """All permutations as rows, in PERMUTATIONS order. Returns (120, 5) long."""
    return torch.tensor(PERMUTATIONS, dtype=torch.long)


def compose(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise a∘b: out[n, i] = a[n, b[n, i]]. a, b: (N, 5) -> (N, 5)."""
    return torch.gather(a, 1, b)


def inverse(a: Tensor) -> Tensor:
    """Row-wise inverse: out[n, a[n, i]] = i. a: (N, 5) -> (N, 5)."""
    ids = torch.arange(a.shape[1]).expand_as(a)  # (N, 5)
    return torch.empty_like(a).scatter_(1, a, ids)


def perm_index(perms: Tensor) -> Tensor:
    """Element id of each row (its position in PERMUTATIONS). perms: (N, 5) -> (N,)."""
    weights = DEGREE ** torch.arange(DEGREE - 1, -1, -1)  # (5,): base-5 digits, big-endian
    lookup = torch.full((DEGREE**DEGREE,), -1, dtype=torch.long)  # (3125,)
    lookup[perm_tensor() @ weights] = torch.arange(len(PERMUTATIONS))
    return lookup[perms @ weights]


# canonical name (tasks.ops.S5_OPERATIONS) -> f(x, y) on (N, 5) permutation rows; aliases in
# tasks.ops.S5_ALIASES.
OPERATIONS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "x∘y": lambda x, y: compose(x, y),
    "x∘y∘x⁻¹": lambda x, y: compose(compose(x, y), inverse(x)),
    "x∘y∘x": lambda x, y: compose(compose(x, y), x),
}


def s5_table(op: str) -> OpTable:
    """The full 120 x 120 table of `op` (canonical name or alias), x-major.

    Returns:
        OpTable(canonical op, "s5", left, right, out), each (14400,) element ids.
    """
    name = canonical_op(op)
    if name is None:
        allowed = ", ".join(list(OPERATIONS) + list(S5_ALIASES))
        raise ValueError(f"op: got {op!r}, allowed for s5: {allowed}")
    n = len(PERMUTATIONS)
    x, y = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")  # (120, 120) each
    x, y = x.reshape(-1), y.reshape(-1)  # (14400,)
    perms = perm_tensor()  # (120, 5)
    out = perm_index(OPERATIONS[name](perms[x], perms[y]))  # (14400,)
    return OpTable(op=name, family="s5", left=x, right=y, out=out)


def permutations_family() -> Family:
    """The 120 elements of S5, named in one-line notation, e.g. "[01234]"."""
    return Family(name="s5", names=["[" + "".join(map(str, s)) + "]" for s in PERMUTATIONS])


def build_s5(op: str, train_fraction: float, seed: int) -> AlgorithmicData:
    """The dataset `a op b = c` over S5, split by train_fraction and seed.

    Args:
        op: canonical name or ASCII alias ("xy", "xyx^-1", "xyx").
        train_fraction: share of the 14400 rows used for training, in (0, 1).
        seed: the experiment seed (only the split depends on it).
    Returns:
        AlgorithmicData with T = 4, vocab_size = 122 (layout in the module docstring).
    """
    return assemble([permutations_family()], [s5_table(op)], train_fraction, seed)
