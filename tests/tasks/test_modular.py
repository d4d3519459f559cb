"""tasks/modular.py: every row of every table against plain-int arithmetic (reference.py)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.config import NEEDS_PRIME
from tasks.modular import DIVIDES_BY_Y, OPERATIONS, build_modular, mod_inverse, modular_table
from tests.tasks.reference import ALL_MODULAR, DIVIDING, PRIMES, check_modular, divides, modular_pairs

COMPOSITES = [4, 6, 9, 10, 12]


def _check_table(op: str, p: int) -> None:
    tab = modular_table(op, p)
    rows = list(zip(tab.left.tolist(), tab.right.tolist(), tab.out.tolist()))
    assert {(x, y) for x, y, _ in rows} == modular_pairs(op, p)
    assert len(rows) == len(modular_pairs(op, p))  # each pair exactly once
    bad = [(x, y, c) for x, y, c in rows if not check_modular(op, p, x, y, c)]
    assert not bad, f"{op} mod {p}: wrong rows, e.g. {bad[:3]}"


def test_operation_names_are_the_papers():
    assert sorted(OPERATIONS) == ALL_MODULAR
    assert NEEDS_PRIME == DIVIDING == set(DIVIDES_BY_Y)


@pytest.mark.parametrize("p", PRIMES)
def test_conditional_op_keeps_its_y_zero_rows(p):
    """y = 0 is even, so "x/y if y odd else x-y" gives x - 0 = x there."""
    tab = modular_table("x/y if y odd else x-y", p)
    assert len(tab.out) == p * p
    at_zero = tab.right == 0
    assert int(at_zero.sum()) == p and torch.equal(tab.out[at_zero], tab.left[at_zero])


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(ALL_MODULAR), p=st.sampled_from([2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31]))
def test_only_rows_that_would_divide_by_zero_are_left_out(op, p):
    tab = modular_table(op, p)
    present = set(zip(tab.left.tolist(), tab.right.tolist()))
    missing = {(x, y) for x in range(p) for y in range(p)} - present
    assert missing == {(x, y) for x in range(p) for y in range(p) if divides(op, y) and y % p == 0}
    assert len(tab.out) == p * p - len(missing)
    assert len(missing) == (p if op == "x/y" else 0)


@pytest.mark.parametrize("op", ALL_MODULAR)
@pytest.mark.parametrize("p", PRIMES)
def test_every_row_of_every_table(op, p):
    _check_table(op, p)


@pytest.mark.parametrize("op", sorted(set(ALL_MODULAR) - DIVIDING))
@pytest.mark.parametrize("p", COMPOSITES)
def test_non_dividing_ops_work_for_any_modulus(op, p):
    _check_table(op, p)


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(ALL_MODULAR), p=st.sampled_from([17, 19, 23, 29, 31, 53, 61, 89, 113]))
def test_every_row_property(op, p):
    _check_table(op, p)


@pytest.mark.parametrize("p", PRIMES + [101, 4093])
def test_inverse_is_an_inverse(p):
    y = torch.arange(1, p)
    assert ((mod_inverse(y, p) * y) % p == 1).all()


@pytest.mark.parametrize("op", ALL_MODULAR)
def test_largest_modulus_does_not_overflow(op):
    # The config's largest prime p (MAX_P = 4096): intermediates must stay exact in int64.
    p = 4093
    x, y = torch.tensor([p - 1, p - 2, 2]), torch.tensor([p - 2, p - 1, 1])
    out = (OPERATIONS[op](x, y, p) % p).tolist()
    for a, b, c in zip(x.tolist(), y.tolist(), out):
        assert check_modular(op, p, a, b, c)


@pytest.mark.parametrize("op", ALL_MODULAR)
@pytest.mark.parametrize("p", [2, 7, 31])
def test_dataset_rows_are_the_table(op, p):
    d = build_modular(op, p, 0.4, seed=1)
    x = torch.cat([d.train_x, d.val_x])  # (N, 4)
    y = torch.cat([d.train_y, d.val_y])  # (N,)
    assert d.seq_len == 4 and d.vocab_size == p + 2
    assert d.vocab[:p] == [str(i) for i in range(p)] and d.vocab[p:] == [op, "="]
    assert torch.equal(d.answer_tokens, torch.arange(p))
    assert (x[:, 1] == p).all() and (x[:, 3] == p + 1).all()
    assert int(x.max()) < d.vocab_size and int(x.min()) >= 0
    assert torch.isin(y, d.answer_tokens).all()
    pairs = {(a, b) for a, _, b, _ in x.tolist()}
    assert pairs == modular_pairs(op, p) and len(pairs) == x.shape[0]
    for (a, _, b, _), c in zip(x.tolist(), y.tolist()):
        assert check_modular(op, p, a, b, c)
    n = x.shape[0]
    assert d.n_train == min(max(round(n * 0.4), 1), n - 1)
    assert d.group_names == [op] and not d.train_group.any() and not d.val_group.any()


def test_dataset_depends_on_seed_only_through_the_split():
    a, b, c = (build_modular("x/y", 31, 0.3, s) for s in (5, 5, 6))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert not torch.equal(a.train_x, c.train_x)
    key = lambda d: sorted(map(tuple, torch.cat([d.train_x, d.val_x]).tolist()))
    assert key(a) == key(c)  # same table, another split


def test_unknown_op_is_one_line():
    with pytest.raises(ValueError, match=r"^op: got 'x\*\*y', allowed: x\+y") as err:
        modular_table("x**y", 7)
    assert "\n" not in str(err.value)
