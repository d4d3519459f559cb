"""The operations and sizes a task config may name, torch-free: a config is checked (and
`groktune status` reads one) before torch is imported.

tasks.modular and tasks.permutation implement these operations on tensors; their OPERATIONS
tables are keyed by exactly these names (tests/tasks/test_registry.py checks it).
"""

from __future__ import annotations

# Modular operations, as written in configs (Power et al. 2022, Table 1).
MODULAR_OPERATIONS = (
    "x+y", "x-y", "x*y", "x/y", "x^2+y", "x^3+y", "x^2+y^2", "x^2+xy+y^2", "x^2+xy+y^2+x", "x^3+xy",
    "x^3+xy^2+y", "x/y if y odd else x-y", "x+y if x even else x*y", "x+y if x even else x-y",
)
# Modular operations whose table needs a modular inverse, so p must be prime.
NEEDS_PRIME = frozenset({"x/y", "x/y if y odd else x-y"})

# Canonical S5 operation names (x∘y, x∘y∘x⁻¹, x∘y∘x) and the ASCII spellings configs may use.
S5_OPERATIONS = ("x∘y", "x∘y∘x⁻¹", "x∘y∘x")
S5_ALIASES: dict[str, str] = {"xy": "x∘y", "xyx^-1": "x∘y∘x⁻¹", "xyx": "x∘y∘x"}
# Elements of S5 (5!): the answer classes of an s5 task.
S5_ORDER = 120


def is_prime(n: int) -> bool:
    """True when n is a prime number (trial division; p is small here)."""
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def canonical_op(name: str) -> str | None:
    """The canonical name of an S5 operation or alias; None when it is not one."""
    if name in S5_OPERATIONS:
        return name
    return S5_ALIASES.get(name)


__all__ = ["MODULAR_OPERATIONS", "NEEDS_PRIME", "S5_ALIASES", "S5_OPERATIONS", "S5_ORDER", "canonical_op",
           "is_prime"]
