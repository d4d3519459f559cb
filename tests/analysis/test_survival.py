"""analysis.survival: Kaplan-Meier against hand-computed estimates, medians and their intervals."""

from __future__ import annotations

import pytest

from analysis.survival import describe_median, kaplan_meier


def share_at(km, step):
    """The estimate's share generalised by `step` (a right-continuous step function)."""
    hits = [s for s in km.steps if s <= step]
    return km.share[km.steps.index(hits[-1])] if hits else 0.0


def test_matches_a_hand_computed_kaplan_meier():
    # Runs generalised at 10, 20, 30; one censored at 10 (tie: censored after the event) and one
    # at 30. At risk 5 at 10 -> S = 4/5; 3 at 20 -> S = 4/5 * 2/3; 2 at 30 -> S = 4/5 * 2/3 * 1/2.
    km = kaplan_meier([10, 10, 20, 30, 30], [True, False, True, True, False])
    assert share_at(km, 9) == 0.0
    assert share_at(km, 10) == pytest.approx(1 - 4 / 5)
    assert share_at(km, 25) == pytest.approx(1 - 8 / 15)
    assert share_at(km, 30) == pytest.approx(1 - 4 / 15)
    assert km.median == 30 and km.n == 5 and km.events == 3 and km.horizon == 30
    for lo, s, hi in zip(km.low, km.share, km.high):
        assert 0.0 <= lo <= s <= hi <= 1.0


def test_censored_runs_push_the_median_out():
    """The median over the two that generalised would be 205; counting the censored seed it is 236."""
    km = kaplan_meier([175, 600, 236], [True, False, True])
    assert km.median == 236
    assert km.median_low == 175 and km.median_high is None
    assert describe_median(km) == "236 (95% CI 175–not reached; 2/3 generalised)"
    most_never = kaplan_meier([100, 900, 900, 900], [True, False, False, False])
    assert most_never.median is None and describe_median(most_never).startswith("not reached (")


def test_no_run_generalised():
    km = kaplan_meier([500, 800], [False, False])
    assert km.steps == () and km.median is None and km.events == 0
    assert describe_median(km) == "not reached (0/2 generalised)"


def test_bad_input():
    with pytest.raises(ValueError):
        kaplan_meier([1, 2], [True])
    with pytest.raises(ValueError):
        kaplan_meier([1, float("nan")], [True, True])
