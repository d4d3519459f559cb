"""analysis.grokking: events and phases on synthetic curves with known events."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.grokking import (
    PHASES,
    classify_phase,
    clean_series,
    detect_grokking,
    sustained_onset,
)
from tests.analysis.synth import KINDS, crossing, curves, log_grid, trainer_grid


def first_step_at_or_after(steps, value):
    steps = np.asarray(steps)
    return int(steps[np.searchsorted(steps, value)])


def events(kind, steps, threshold=0.99, **kw):
    c = curves(kind, steps, **kw)
    return detect_grokking(c["step"], c["train_acc"], c["val_acc"], threshold=threshold)


@pytest.mark.parametrize("threshold", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("grid", [trainer_grid(), log_grid(), np.arange(1, 100_001, 97)],
                         ids=["trainer", "log", "linear"])
@pytest.mark.parametrize("kind", ["grokking", "slow_grokking"])
def test_grokking_events_match_the_known_crossings(kind, grid, threshold):
    train_onset, val_onset, train_width, val_width = KINDS[kind]
    ev = events(kind, grid, threshold)
    # lo = 1/97 shifts the curve; crossing() takes the same lo so the truth is exact
    mem = crossing(threshold, train_onset, train_width, lo=1 / 97)
    gen = crossing(threshold, val_onset, val_width, lo=1 / 97)
    assert ev.memorized_step == first_step_at_or_after(grid, mem)
    assert ev.generalized_step == first_step_at_or_after(grid, gen)
    assert ev.delay == ev.generalized_step - ev.memorized_step
    assert ev.phase == "grokking"


def test_sharp_grokking_has_a_long_delay_and_comprehension_a_short_one():
    grok = events("grokking", trainer_grid())
    comp = events("comprehension", trainer_grid())
    assert grok.phase == "grokking" and grok.delay > 10_000
    assert comp.phase == "comprehension" and 0 <= comp.delay < 1000


def test_no_grokking_memorization_and_confusion():
    mem = events("memorization", trainer_grid())
    assert mem.memorized_step is not None and mem.generalized_step is None
    assert mem.delay is None and mem.phase == "memorization"
    conf = events("confusion", trainer_grid())
    assert (conf.memorized_step, conf.generalized_step, conf.delay) == (None, None, None)
    assert conf.phase == "confusion"


def test_delay_boundary_is_a_parameter():
    c = curves("comprehension", trainer_grid())
    ev = detect_grokking(c["step"], c["train_acc"], c["val_acc"], delay_boundary=100)
    assert ev.phase == "grokking"


def test_a_transient_spike_is_not_an_event():
    steps = np.arange(0, 3000, 10)
    val = np.full(steps.size, 0.3)
    val[20] = 1.0  # one eval above the threshold, then back down
    val[200:] = 1.0  # the real generalisation
    train = np.ones(steps.size)
    ev = detect_grokking(steps, train, val)
    assert ev.generalized_step == 2000
    assert ev.memorized_step == 0


def test_a_later_fall_never_moves_the_event_and_is_a_collapse():
    steps = np.arange(100)
    val = np.zeros(100)
    val[10:20] = 1.0  # reached and held for 10 evals...
    val[20:40] = 0.5  # ...then lost for 20: a collapse, not a reason to move the onset
    val[40:] = 1.0
    assert sustained_onset(steps, val, threshold=0.99) == 10
    ev = detect_grokking(steps, np.ones(100), val, threshold=0.99)
    assert ev.generalized_step == 10 and ev.n_collapses == 1
    (c,) = ev.collapses
    assert (c.step, c.depth, c.recovered_step) == (20, 0.5, 40)
    assert ev.collapse_period is None and ev.at_target_share == pytest.approx(70 / 90)


def test_short_dips_after_reaching_are_forgiven():
    steps = np.arange(100) * 50
    val = np.zeros(100)
    val[30:] = 1.0
    val[[45, 60, 61, 90]] = 0.9  # dips of one or two evals (patience 3)
    assert sustained_onset(steps, val, threshold=0.99, patience=3) == 1500


def test_noisy_curves_give_events_near_the_truth():
    grid = log_grid(ratio=1.02)
    true = first_step_at_or_after(grid, crossing(0.95, 20_000, 0.08, lo=1 / 97))
    for seed in range(20):
        c = curves("grokking", grid, seed=seed, noise=0.01)
        step = sustained_onset(c["step"], c["val_acc"], threshold=0.95)
        assert step is not None and abs(np.log10(step / true)) < 0.05  # within 12%


def test_unsorted_and_repeated_steps():
    steps = np.array([30, 10, 20, 40, 50, 40, 60])
    vals = np.array([1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0])  # step 40 logged twice: last wins (0.0)
    s, v = clean_series(steps, vals)
    assert s.tolist() == [10, 20, 30, 40, 50, 60]
    assert v.tolist() == [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert sustained_onset(steps, vals, threshold=0.99, patience=2) == 20


def test_nan_never_counts_as_reached_and_empty_curves_are_fine():
    assert sustained_onset([1, 2, 3], [np.nan, np.nan, np.nan], threshold=0.5, patience=1) is None
    ev = detect_grokking([], [], [])
    assert ev.phase == "confusion" and ev.memorized_step is None


def test_loss_curves_use_min_mode():
    steps = np.arange(10)
    loss = np.array([5, 4, 3, 2, 1, 0.5, 0.1, 0.05, 0.04, 0.03])
    assert sustained_onset(steps, loss, threshold=0.1, mode="min") == 6


def test_bad_arguments():
    with pytest.raises(ValueError, match="patience"):
        sustained_onset([1], [1.0], threshold=0.5, patience=0)
    with pytest.raises(ValueError, match="differ in length"):
        sustained_onset([1, 2], [1.0], threshold=0.5)
    with pytest.raises(ValueError, match="mode"):
        sustained_onset([1], [1.0], threshold=0.5, mode="up")


@pytest.mark.parametrize("mem,gen,phase", [
    (100, 5000, "grokking"), (100, 1099, "comprehension"), (100, 1100, "grokking"),
    (None, 300, "comprehension"), (500, 200, "comprehension"), (100, None, "memorization"),
    (None, None, "confusion")])
def test_classify_phase(mem, gen, phase):
    assert classify_phase(mem, gen, delay_boundary=1000) == phase
    assert phase in PHASES


acc = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(acc, min_size=1, max_size=60), gaps=st.data(),
       patience=st.integers(1, 5), threshold=st.floats(0.5, 1.0))
def test_only_the_order_of_evals_matters(values, gaps, patience, threshold):
    """Any strictly increasing step grid gives the event at the same eval."""
    n = len(values)
    base = sustained_onset(np.arange(n), values, threshold=threshold, patience=patience)
    deltas = gaps.draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n))
    steps = np.cumsum(deltas)
    other = sustained_onset(steps, values, threshold=threshold, patience=patience)
    assert (base is None) == (other is None)
    if base is not None:
        assert other == steps[base]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(acc, min_size=1, max_size=60), patience=st.integers(1, 5),
       threshold=st.floats(0.5, 1.0), seed=st.integers(0, 2**31))
def test_event_is_the_first_window_of_patience_evals_at_the_threshold(values, patience, threshold, seed):
    """Checked by brute force against the definition (first window of `patience` evals all at
    the threshold; whatever follows is irrelevant), on shuffled records."""
    v = np.array(values)
    n = len(v)
    expected = next((i for i in range(n - patience + 1) if min(v[i:i + patience]) >= threshold), None)
    order = np.random.default_rng(seed).permutation(n)
    got = sustained_onset(np.arange(n)[order], v[order], threshold=threshold, patience=patience)
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(values=st.lists(acc, min_size=1, max_size=40), spike_at=st.integers(0, 39))
def test_a_single_eval_spike_never_moves_an_absent_event(values, spike_at):
    """Lifting one eval (a spike) to 1.0 cannot create an event where none was with patience 3
    unless it joins neighbours already above the threshold."""
    v = np.minimum(np.array(values), 0.5)  # nowhere near the threshold
    v[spike_at % len(v)] = 1.0
    assert sustained_onset(np.arange(len(v)), v, threshold=0.99, patience=3) is None
