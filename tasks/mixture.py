"""Mixtures: several binary operations in one dataset, told apart by their op token.

Ops may be modular (sharing one modulus p) and/or S5 (canonical names or ASCII aliases).
Token layout (see tasks.base), with K ops in the order given:

    0 .. p-1                residues "0".."p-1"            (only if some op is modular)
    next 120 ids            permutations "[01234]"...      (only if some op is S5)
    next K ids              one token per op, named by its canonical op name
    last id                 "="

x = [a, op_k, b, =], y = c, group k = the k-th op. answer_tokens are all element ids.
Each op's table is split on its own (tasks.base.assemble), so every op is represented on
both sides, and an op's rows are split exactly as in the single-op task with the same seed.
"""

from __future__ import annotations

from tasks.base import AlgorithmicData, Family, OpTable, assemble
from tasks.modular import modular_table, residues
from tasks.ops import MODULAR_OPERATIONS, canonical_op
from tasks.permutation import permutations_family, s5_table


def mixture_tables(ops: list[str], p: int) -> tuple[list[Family], list[OpTable]]:
    """The families used and one table per op, in the order of `ops`.

    Args:
        ops: operation names, each modular or S5 (aliases allowed), no repeats.
        p: modulus of the modular ops.
    Returns:
        (families, tables): residues first, then S5, each only when used.
    """
    tables = []
    for op in ops:
        if op in MODULAR_OPERATIONS:
            tables.append(modular_table(op, p))
        elif canonical_op(op) is not None:
            tables.append(s5_table(op))
        else:
            raise ValueError(f"ops: got {op!r}, not a modular or s5 operation")
    names = [t.op for t in tables]
    if len(set(names)) != len(names):
        raise ValueError(f"ops: got {ops!r}, must name each operation once")
    used = {t.family for t in tables}
    families = ([residues(p)] if "mod" in used else []) + (
        [permutations_family()] if "s5" in used else []
    )
    return families, tables


def build_mixture(ops: list[str], p: int, train_fraction: float, seed: int) -> AlgorithmicData:
    """One dataset holding the tables of several operations.

    Args:
        ops: operation names (modular and/or S5), in op-token order.
        p: modulus of the modular ops (ignored when there are none).
        train_fraction: share of each op's table used for training, in (0, 1).
        seed: the experiment seed (only the splits depend on it).
    Returns:
        AlgorithmicData with T = 4; group_names are the canonical op names.
    """
    families, tables = mixture_tables(list(ops), p)
    return assemble(families, tables, train_fraction, seed)
