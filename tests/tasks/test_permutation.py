"""tasks/permutation.py: every row of the S5 tables against composition of plain tuples."""

import itertools

import pytest
import torch

from tasks.ops import S5_ALIASES as ALIASES
from tasks.ops import canonical_op
from tasks.permutation import (
    OPERATIONS, PERMUTATIONS, build_s5, compose, inverse, perm_index,
    perm_tensor, s5_table,
)
from tests.tasks.reference import S5, S5_VALUE


def test_canonical_order_is_itertools():
    assert PERMUTATIONS == S5 and len(S5) == 120
    assert PERMUTATIONS[0] == (0, 1, 2, 3, 4)  # id 0 is the identity
    assert torch.equal(perm_index(perm_tensor()), torch.arange(120))


def test_compose_convention_is_right_to_left():
    # x maps 0->1, y maps 0->2: (x∘y)(0) = x(y(0)) = x(2).
    x, y = (1, 0, 3, 2, 4), (2, 1, 0, 3, 4)
    out = compose(torch.tensor([x]), torch.tensor([y]))[0].tolist()
    assert out == [x[y[i]] for i in range(5)] == [3, 0, 1, 2, 4]
    assert inverse(torch.tensor([x]))[0].tolist() == [1, 0, 3, 2, 4]


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_every_row_of_every_table(op):
    tab = s5_table(op)
    assert tab.op == op and tab.family == "s5"
    rows = list(zip(tab.left.tolist(), tab.right.tolist(), tab.out.tolist()))
    assert {(a, b) for a, b, _ in rows} == set(itertools.product(range(120), repeat=2))
    assert len(rows) == 14400
    ref = S5_VALUE[op]
    bad = [(a, b, c) for a, b, c in rows if S5[c] != ref(S5[a], S5[b])]
    assert not bad, f"{op}: wrong rows, e.g. {bad[:3]}"


def test_composition_table_is_a_group_table():
    out = s5_table("x∘y").out.view(120, 120)  # (x, y) -> x∘y
    assert torch.equal(out[0], torch.arange(120)) and torch.equal(out[:, 0], torch.arange(120))
    for row in (out, out.T):  # Latin square: each element once per row and column
        assert (row.sort(dim=1).values == torch.arange(120)).all()
    assert not torch.equal(out, out.T)  # S5 is not abelian: the convention matters


@pytest.mark.parametrize("alias, name", list(ALIASES.items()))
def test_ascii_aliases(alias, name):
    assert canonical_op(alias) == name and canonical_op(name) == name
    assert torch.equal(s5_table(alias).out, s5_table(name).out)
    assert build_s5(alias, 0.5, 0).group_names == [name]


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_dataset_layout_and_bounds(op):
    d = build_s5(op, 0.3, seed=2)
    x = torch.cat([d.train_x, d.val_x])  # (14400, 4)
    y = torch.cat([d.train_y, d.val_y])
    assert d.vocab_size == 122 and d.seq_len == 4 and len(d.vocab) == 122
    assert d.vocab[0] == "[01234]" and d.vocab[119] == "[43210]" and d.vocab[120:] == [op, "="]
    assert torch.equal(d.answer_tokens, torch.arange(120))
    assert (x[:, 1] == 120).all() and (x[:, 3] == 121).all()
    assert int(x.max()) < 122 and torch.isin(y, d.answer_tokens).all()
    assert d.n_train == round(14400 * 0.3)
    ref = S5_VALUE[op]
    assert all(S5[c] == ref(S5[a], S5[b]) for (a, _, b, _), c in zip(x.tolist(), y.tolist()))


def test_unknown_op_is_one_line():
    with pytest.raises(ValueError, match=r"^op: got 'x\*y', allowed for s5: x∘y") as err:
        s5_table("x*y")
    assert "\n" not in str(err.value)
