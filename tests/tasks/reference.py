"""Independent references for the task tests, in plain Python ints and tuples (no torch).

Division-like ops are not recomputed: `check_modular` verifies (c * y) % p == x with y != 0,
so a wrong inverse (or the x*y-for-x/y bug of teddykoker/grokking) cannot agree by accident.
"""

from __future__ import annotations

import itertools

# Non-dividing modular ops: the value of x op y mod p, written out by hand.
MODULAR_VALUE = {
    "x+y": lambda x, y, p: (x + y) % p,
    "x-y": lambda x, y, p: (x - y) % p,
    "x*y": lambda x, y, p: (x * y) % p,
    "x^2+y": lambda x, y, p: (x * x + y) % p,
    "x^3+y": lambda x, y, p: (x * x * x + y) % p,
    "x^2+y^2": lambda x, y, p: (x * x + y * y) % p,
    "x^2+xy+y^2": lambda x, y, p: (x * x + x * y + y * y) % p,
    "x^2+xy+y^2+x": lambda x, y, p: (x * x + x * y + y * y + x) % p,
    "x^3+xy": lambda x, y, p: (x * x * x + x * y) % p,
    "x^3+xy^2+y": lambda x, y, p: (x * x * x + x * y * y + y) % p,
    "x+y if x even else x*y": lambda x, y, p: (x + y) % p if x % 2 == 0 else (x * y) % p,
    "x+y if x even else x-y": lambda x, y, p: (x + y) % p if x % 2 == 0 else (x - y) % p,
}
DIVIDING = {"x/y", "x/y if y odd else x-y"}
ALL_MODULAR = sorted(set(MODULAR_VALUE) | DIVIDING)
PRIMES = [2, 3, 5, 7, 11, 13, 97]


def check_modular(op: str, p: int, x: int, y: int, c: int) -> bool:
    """True when c is a correct answer of x op y mod p (c must be a residue)."""
    if not 0 <= c < p:
        return False
    if op == "x/y" or (op == "x/y if y odd else x-y" and y % 2 == 1):
        return y != 0 and (c * y) % p == x
    if op == "x/y if y odd else x-y":  # y even, y = 0 included: x - 0 = x (openai/grok keeps it)
        return c == (x - y) % p
    return c == MODULAR_VALUE[op](x, y, p)


def divides(op: str, y: int) -> bool:
    """True when x op y is computed by a division by y."""
    return op == "x/y" or (op == "x/y if y odd else x-y" and y % 2 == 1)


def modular_pairs(op: str, p: int) -> set[tuple[int, int]]:
    """The operand pairs a full table must hold: all but those dividing by zero (y = 0 of x/y)."""
    return {(x, y) for x in range(p) for y in range(p) if not (divides(op, y) and y == 0)}


S5 = list(itertools.permutations(range(5)))


def s5_compose(a: tuple, b: tuple) -> tuple:
    """(a∘b)(i) = a(b(i))."""
    return tuple(a[b[i]] for i in range(5))


def s5_inverse(a: tuple) -> tuple:
    inv = [0] * 5
    for i, ai in enumerate(a):
        inv[ai] = i
    return tuple(inv)


S5_VALUE = {
    "x∘y": lambda a, b: s5_compose(a, b),
    "x∘y∘x⁻¹": lambda a, b: s5_compose(s5_compose(a, b), s5_inverse(a)),
    "x∘y∘x": lambda a, b: s5_compose(s5_compose(a, b), a),
}
