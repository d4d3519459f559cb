"""tasks/config.py and tasks/registry.py: one-line validation errors, build_task dispatch."""

import numpy as np
import pytest
import torch

from groktune.errors import DataError
from tasks import modular, permutation
from tasks.base import AlgorithmicData
from tasks.classes import chance_level, n_classes
from tasks.config import MAX_P, SPECS, TASKS, TaskConfig, TaskSpec
from tasks.lm import TokenStream
from tasks.ops import MODULAR_OPERATIONS, NEEDS_PRIME, S5_ALIASES, S5_OPERATIONS, S5_ORDER
from tasks.registry import BUILDERS, build_task

# (field named in the message, the offending value as repr'd, TaskConfig fields)
BAD = [
    ("name", "'sorting'", dict(name="sorting")),
    ("train_fraction", "0.0", dict(train_fraction=0.0)),
    ("train_fraction", "1.0", dict(train_fraction=1.0)),
    ("train_fraction", "-0.5", dict(train_fraction=-0.5)),
    ("train_fraction", "nan", dict(train_fraction=float("nan"))),
    ("train_fraction", "'half'", dict(train_fraction="half")),
    ("train_fraction", "True", dict(train_fraction=True)),
    ("op", "'x**y'", dict(name="modular", op="x**y")),
    ("op", "'x∘y'", dict(name="modular", op="x∘y")),
    ("op", "'x*y'", dict(name="s5", op="x*y")),
    ("op", "['x+y']", dict(name="modular", op=["x+y"])),
    ("op", "None", dict(name="s5", op=None)),
    ("ops", "'x+y'", dict(name="mixture", ops="x+y")),
    ("ops", "['x+y']", dict(name="mixture", ops=["x+y", ["x+y"]])),
    ("p", "1", dict(name="modular", op="x+y", p=1)),
    ("p", "-7", dict(name="modular", op="x+y", p=-7)),
    ("p", "97.0", dict(name="modular", op="x+y", p=97.0)),
    ("p", f"{MAX_P + 1}", dict(name="modular", op="x+y", p=MAX_P + 1)),
    ("p", "96", dict(name="modular", op="x/y", p=96)),
    ("p", "9", dict(name="modular", op="x/y if y odd else x-y", p=9)),
    ("ops", "[]", dict(name="mixture", ops=[])),
    ("ops", "'x%y'", dict(name="mixture", ops=["x+y", "x%y"])),
    ("ops", "['x+y', 'x+y']", dict(name="mixture", ops=["x+y", "x+y"])),
    ("ops", "['xy', 'x∘y']", dict(name="mixture", ops=["xy", "x∘y"])),
    ("p", "10", dict(name="mixture", ops=["x+y", "x/y"], p=10)),
    ("p", "1", dict(name="mixture", ops=["x+y"], p=1)),
    ("n_bits", "0", dict(name="sparse_parity", n_bits=0)),
    ("k_bits", "0", dict(name="sparse_parity", k_bits=0)),
    ("k_bits", "5", dict(name="sparse_parity", n_bits=4, k_bits=5, n_samples=10)),
    ("n_samples", "1", dict(name="sparse_parity", n_samples=1)),
    ("n_samples", "17", dict(name="sparse_parity", n_bits=4, k_bits=2, n_samples=17)),
    ("path", "''", dict(name="lm", path="")),
    ("path", "'   '", dict(name="lm", path="   ")),
    ("context_length", "0", dict(name="lm", path="x.bin", context_length=0)),
    ("val_windows", "0", dict(name="lm", path="x.bin", val_windows=0)),
]


@pytest.mark.parametrize("field, shown, kwargs", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_each_bad_field_is_one_line_naming_field_and_value(field, shown, kwargs):
    with pytest.raises(ValueError) as err:
        TaskConfig(**kwargs).validate()
    msg = str(err.value)
    assert msg.startswith(f"{field}: got {shown}, "), msg
    assert "\n" not in msg and len(msg) < 400
    assert any(w in msg for w in ("allowed", "must")), msg


GOOD = [
    dict(),
    dict(name="modular", op="x/y", p=2),
    dict(name="modular", op="x^3+xy", p=12),  # no inverse: any modulus
    dict(name="s5", op="xyx^-1", p=0),  # p is not used by s5
    dict(name="s5", op="x∘y∘x"),
    dict(name="mixture", ops=["x+y", "xy"], p=4),
    dict(name="mixture", ops=["xy"], p=1),  # no modular op: p is not used
    dict(name="sparse_parity", n_bits=4, k_bits=4, n_samples=16),
    dict(name="lm", path="does/not/exist/yet.bin"),  # files are checked when building
]


@pytest.mark.parametrize("kwargs", GOOD)
def test_valid_configs_pass(kwargs):
    TaskConfig(**kwargs).validate()


@pytest.mark.parametrize(
    "kwargs, n_rows, vocab_size, seq_len",
    [
        (dict(name="modular", op="x-y", p=13), 169, 15, 4),
        (dict(name="modular", op="x/y", p=13), 156, 15, 4),
        (dict(name="s5", op="xy"), 14400, 122, 4),
        (dict(name="mixture", ops=["x+y", "x*y"], p=5), 50, 8, 4),
        (dict(name="sparse_parity", n_bits=10, k_bits=3, n_samples=300), 300, 3, 11),
    ],
)
def test_build_task_dispatches(kwargs, n_rows, vocab_size, seq_len):
    cfg = TaskConfig(train_fraction=0.3, **kwargs)
    d = build_task(cfg, seed=0)
    assert isinstance(d, AlgorithmicData)
    assert d.n_train + d.n_val == n_rows and d.vocab_size == vocab_size and d.seq_len == seq_len
    assert d.train_x.shape == (d.n_train, seq_len) and d.val_x.shape == (d.n_val, seq_len)
    assert d.train_group.shape == (d.n_train,) and d.val_group.shape == (d.n_val,)
    assert int(max(d.train_x.max(), d.val_x.max())) < d.vocab_size
    assert torch.isin(torch.cat([d.train_y, d.val_y]), d.answer_tokens).all()
    assert torch.equal(d.answer_tokens, d.answer_tokens.sort().values)
    again = build_task(cfg, seed=0)  # pure: same config and seed, same tensors
    assert torch.equal(d.train_x, again.train_x) and torch.equal(d.val_y, again.val_y)


def test_build_task_device():
    d = build_task(TaskConfig(p=5), seed=0, device="meta")
    assert d.train_x.device.type == "meta" and d.answer_tokens.device.type == "meta"


def test_build_task_validates_first():
    with pytest.raises(ValueError, match="^p: got 1"):
        build_task(TaskConfig(p=1), seed=0)


def test_build_task_lm(tmp_path):
    path = tmp_path / "tokens.bin"
    np.arange(1000, dtype=np.uint16).tofile(path)
    ts = build_task(TaskConfig(name="lm", path=str(path), context_length=8, val_windows=5), 0)
    assert isinstance(ts, TokenStream) and ts.seq_len == 8 and ts.vocab_size == 1000
    assert len(ts.val_starts()) == 5
    with pytest.raises(DataError, match="not found"):
        build_task(TaskConfig(name="lm", path=str(tmp_path / "nope.bin")), 0)


def test_the_torch_free_names_are_the_tensor_tables():
    assert MODULAR_OPERATIONS == tuple(modular.OPERATIONS) and len(MODULAR_OPERATIONS) == 14
    assert "x/y if y odd else x-y" in MODULAR_OPERATIONS
    assert S5_OPERATIONS == tuple(permutation.OPERATIONS) == ("x∘y", "x∘y∘x⁻¹", "x∘y∘x")
    assert set(S5_ALIASES) == {"xy", "xyx^-1", "xyx"} and set(S5_ALIASES.values()) == set(S5_OPERATIONS)
    assert NEEDS_PRIME == set(modular.DIVIDES_BY_Y) and NEEDS_PRIME <= set(MODULAR_OPERATIONS)
    assert S5_ORDER == len(permutation.PERMUTATIONS)
    assert TASKS == ("modular", "s5", "sparse_parity", "lm", "mixture")
    assert issubclass(DataError, ValueError)


def test_the_builders_are_the_list_of_tasks_validation_allows():
    assert TASKS == tuple(SPECS) == tuple(BUILDERS)
    with pytest.raises(ValueError, match="allowed: " + ", ".join(SPECS)):
        TaskConfig(name="sorting").validate()


def test_a_new_task_is_a_spec_and_a_builder(monkeypatch):
    # What ARCHITECTURE.md promises: a check, a build, one line in each table, nothing else changes.
    def check(cfg):
        if cfg.p != 5:
            raise ValueError(f"p: got {cfg.p!r}, must be 5 for tiny")

    monkeypatch.setitem(SPECS, "tiny", TaskSpec(check, lambda c: 5))
    monkeypatch.setitem(BUILDERS, "tiny", lambda c, frac, seed: modular.build_modular("x+y", 5, frac, seed))
    data = build_task(TaskConfig(name="tiny", p=5), seed=0)
    assert isinstance(data, AlgorithmicData) and data.vocab_size == 7
    assert n_classes(TaskConfig(name="tiny", p=5)) == 5 and chance_level(TaskConfig(name="tiny")) == 0.2
    with pytest.raises(ValueError, match="^p: got 7, must be 5 for tiny$"):
        TaskConfig(name="tiny", p=7).validate()
