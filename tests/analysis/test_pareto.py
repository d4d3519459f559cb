"""analysis/pareto.py: the non-dominated trials of a multi-objective sweep and their report section.

The front is checked on a hand-worked example, against a brute-force restatement of the
definition on random points (hypothesis), and through the section on a small summary frame.
"""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.document import Figure, Table, Text
from analysis.pareto import objective_costs, pareto_mask, pareto_section, sweep_objectives

# Worked by hand, both objectives minimised:
#   A (1, 5)  on the front: nothing has x <= 1 with y < 5 (G ties it)
#   B (2, 3)  on the front: only A has a smaller x, and A's y is worse
#   C (3, 3)  dominated by B (same y, smaller x)
#   D (4, 1)  on the front: the smallest y
#   E (2, 4)  dominated by B (same x, smaller y)
#   F (nan, 0) no value: never on the front, and dominates nothing
#   G (1, 5)  equal to A: equal points do not dominate each other, both stay
HAND = np.array([[1, 5], [2, 3], [3, 3], [4, 1], [2, 4], [np.nan, 0], [1, 5]], dtype=float)
HAND_FRONT = [True, True, False, True, False, False, True]


def test_hand_checked_front():
    assert pareto_mask(HAND).tolist() == HAND_FRONT


def test_one_objective_front_is_the_minimum_and_its_ties():
    assert pareto_mask([[3.0], [1.0], [2.0], [1.0]]).tolist() == [False, True, False, True]


def test_costs_turn_max_objectives_around():
    """(min steps, max accuracy): the trial with the most accuracy at equal steps wins."""
    s = pd.DataFrame({"final_grok_score": [100, 100, 50, 300], "final_val_acc": [0.9, 0.99, 0.5, 1.0]})
    costs = objective_costs(s, [("grok_score", "min"), ("val_acc", "max")])
    assert costs[:, 1].tolist() == [-0.9, -0.99, -0.5, -1.0]
    assert pareto_mask(costs).tolist() == [False, True, True, True]


def test_missing_column_gives_no_values():
    costs = objective_costs(pd.DataFrame({"final_a": [1.0, 2.0]}), [("a", "min"), ("b", "min")])
    assert np.isnan(costs[:, 1]).all() and not pareto_mask(costs).any()


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match="expected an \\(n, k\\) array"):
        pareto_mask([1.0, 2.0])


def _dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 3)), max_size=25))
def test_front_matches_the_definition(points):
    """On the front exactly when no point dominates it (brute force, small integers for ties)."""
    costs = np.array(points, dtype=float).reshape(-1, 3)
    want = [not any(_dominates(q, p) for q in points) for p in points]
    assert pareto_mask(costs).tolist() == want


def test_sweep_objectives_from_the_saved_config():
    assert sweep_objectives({"search": {"metric": ["grok_score", "failure_rate"], "mode": ["min", "min"]}}) == [
        ("grok_score", "min"), ("failure_rate", "min")]
    assert sweep_objectives({"search": {"metric": "val_acc", "mode": "max"}}) == [("val_acc", "max")]
    assert sweep_objectives({"search": {"space": {}}}) == [("grok_score", "min")]
    assert sweep_objectives({"name": "a run"}) == []


def _ctx(config, summary, searched=("optim.lr",)):
    results = SimpleNamespace(config=config, searched=list(searched))
    return SimpleNamespace(results=results, summary=summary)


def test_section_draws_the_front_and_tables_it_best_first():
    summary = pd.DataFrame({
        "trial_id": list("ABCDEFG"),
        "final_grok_score": HAND[:, 0], "final_failure_rate": HAND[:, 1],
        "steps_to_target": [1, 2, 3, 4, 2, None, 1], "status": ["grokked"] * 7,
        "optim.lr": np.linspace(1e-3, 1e-2, 7),
    })
    config = {"search": {"metric": ["grok_score", "failure_rate"], "mode": ["min", "min"]}}
    section = pareto_section(_ctx(config, summary))
    figures = [b for b in section.blocks if isinstance(b, Figure)]
    (table,) = [b for b in section.blocks if isinstance(b, Table)]
    assert len(figures) == 1 and figures[0].png.startswith(b"\x89PNG")
    assert table.frame["trial_id"].tolist() == ["A", "G", "B", "D"]
    assert "optim.lr" in table.frame.columns
    text = " ".join(b.text for b in section.blocks if isinstance(b, Text))
    assert "4 of the 6 trial(s) with every value are on it; 1 trial(s) lack a value" in text


def test_section_is_left_out_for_one_objective_and_says_why_there_is_no_front():
    for config in ({"search": {"metric": "grok_score", "mode": "min"}}, {"search": {"metric": ["grok_score"]}}, {}):
        assert pareto_section(_ctx(config, pd.DataFrame())) is None, config  # the report leaves it out
    config = {"search": {"metric": ["grok_score", "failure_rate"], "mode": ["min", "min"]}}
    lacking = pareto_section(_ctx(config, pd.DataFrame({"trial_id": ["a"], "final_grok_score": [1.0]})))
    assert "no final value of failure_rate" in lacking.blocks[0].text
