"""tasks.classes: the number of answer classes agrees with the datasets the tasks build."""

import pytest

from tasks.classes import chance_level, n_classes
from tasks.config import TaskConfig
from tasks.registry import build_task


@pytest.mark.parametrize("cfg", [
    TaskConfig(name="modular", op="x+y", p=23),
    TaskConfig(name="s5", op="xy"),
    TaskConfig(name="sparse_parity", n_bits=8, k_bits=3, n_samples=100),
    TaskConfig(name="mixture", ops=["x+y", "xy"], p=7),
    TaskConfig(name="mixture", ops=["x+y", "x-y"], p=7),
], ids=["modular", "s5", "parity", "mixture-mod-s5", "mixture-mod"])
def test_n_classes_is_the_number_of_answer_tokens(cfg):
    data = build_task(cfg, seed=0)
    assert n_classes(cfg) == len(data.answer_tokens) == len(set(data.train_y.tolist()) | set(data.val_y.tolist()))
    assert chance_level(cfg) == pytest.approx(1 / len(data.answer_tokens))


def test_lm_has_no_fixed_class_count():
    lm = TaskConfig(name="lm", path="x.bin")
    assert n_classes(lm) is None and chance_level(lm) is None
