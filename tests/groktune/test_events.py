"""groktune.events: the one event rule (online and offline), collapses, and the tail property."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.grokking import detect_grokking
from groktune.events import (
    DEFAULT_PATIENCE,
    Collapse,
    EventTracker,
    clean_series,
    collapses,
    event_patience,
    first_event,
)

acc = st.floats(0.0, 1.0, allow_nan=False)
acc_or_nan = st.one_of(acc, st.just(float("nan")))


def test_tracker_finds_the_first_streak_and_never_moves_it():
    t = EventTracker(0.9, patience=2)
    got = [t.update(s, v) for s, v in [(1, 0.95), (2, 0.1), (3, 0.91), (4, 0.92), (5, 0.1), (6, 0.1),
                                       (7, 0.95), (8, 0.99)]]
    assert got == [None, None, None, 3, 3, 3, 3, 3]
    assert t.event == 3 and t.streak == 2 and t.streak_start == 7 and t.at_threshold


def test_tracker_min_mode_nan_and_bad_arguments():
    t = EventTracker(0.1, patience=1, mode="min")
    assert [t.update(s, v) for s, v in [(1, math.nan), (2, 0.5), (3, 0.1)]] == [None, None, 3]
    nan_streak = EventTracker(0.5, patience=2)
    assert [nan_streak.update(s, v) for s, v in [(1, 1.0), (2, math.nan), (3, 1.0)]] == [None] * 3
    with pytest.raises(ValueError, match="patience"):
        EventTracker(0.5, patience=0)
    with pytest.raises(ValueError, match="mode"):
        EventTracker(0.5, mode="up")


def test_tracker_state_round_trip_mid_streak():
    a = EventTracker(0.9, patience=3)
    for s, v in [(10, 0.95), (20, 0.96)]:
        a.update(s, v)
    b = EventTracker(0.9, patience=3)
    b.load_state_dict(a.state_dict())
    assert all(isinstance(x, int) for x in a.state_dict().values())  # weights_only / JSON friendly
    assert b.update(30, 0.97) == 10


def test_event_patience_zero_means_the_default():
    assert event_patience(0) == DEFAULT_PATIENCE == 3
    assert event_patience(5) == 5


def test_first_event_sorts_and_keeps_the_last_record_of_a_step():
    steps = [30, 10, 20, 40, 50, 40, 60]
    vals = [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0]  # step 40 logged twice: last wins (0.0)
    assert clean_series(steps, vals)[1].tolist() == [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert first_event(steps, vals, threshold=0.99, patience=2) == 20
    assert first_event([], [], threshold=0.5) is None


def test_collapses_with_loss_spike_and_norm_change():
    steps = np.arange(0, 200, 10)
    val = np.ones(20)
    val[:3] = 0.1
    val[[8, 9]] = [0.6, 0.3]  # a dip of two evals at steps 80, 90, back at 100
    val[19] = 0.5  # the curve ends in a dip
    loss = np.full(20, 0.01)
    loss[[8, 9]] = [0.5, 2.0]
    loss[7] = 0.05
    norm = np.arange(20) * 1.0
    ev = first_event(steps, val, threshold=0.99, patience=3)
    assert ev == 30
    got = collapses(steps, val, threshold=0.99, event_step=ev, train_loss=loss, param_norm=norm)
    assert got == (Collapse(80, 0.3, 100, pytest.approx(1.95), 3.0),
                   Collapse(190, 0.5, None, pytest.approx(0.0), 1.0))
    assert collapses(steps, val, threshold=0.99, event_step=None) == ()
    plain = collapses(steps[::-1], val[::-1], threshold=0.99, event_step=ev)  # order does not matter
    assert [(c.step, c.recovered_step, c.train_loss_spike) for c in plain] == [(80, 100, None), (190, None, None)]


def brute_force_dips(values, threshold, event_index):
    """(start, end) index pairs of the runs below the threshold after the event, by a scan."""
    dips, start = [], None
    for i in range(event_index + 1, len(values)):
        below = not values[i] >= threshold  # NaN is below
        if below and start is None:
            start = i
        if not below and start is not None:
            dips.append((start, i))
            start = None
    if start is not None:
        dips.append((start, None))
    return dips


@settings(max_examples=200, deadline=None)
@given(values=st.lists(acc_or_nan, min_size=1, max_size=50), patience=st.integers(1, 4),
       threshold=st.sampled_from([0.5, 0.95, 0.99]))
def test_collapses_match_a_brute_force_scan(values, patience, threshold):
    steps = np.arange(len(values)) * 7 + 3
    ev = first_event(steps, values, threshold=threshold, patience=patience)
    got = collapses(steps, values, threshold=threshold, event_step=ev)
    if ev is None:
        assert got == ()
        return
    want = brute_force_dips(values, threshold, (ev - 3) // 7)
    assert [(c.step, c.recovered_step) for c in got] == [
        (int(steps[a]), None if b is None else int(steps[b])) for a, b in want]


@settings(max_examples=300, deadline=None)
@given(head=st.lists(acc_or_nan, min_size=0, max_size=40), tail=st.lists(acc_or_nan, min_size=0, max_size=40),
       patience=st.integers(1, 5), threshold=st.floats(0.3, 1.0))
def test_a_tail_appended_after_the_event_never_changes_it(head, tail, patience, threshold):
    """The event rule's property: whatever follows an event (dips, collapses, NaN) never moves it."""
    steps = np.arange(len(head) + len(tail)) * 10 + 10
    before = first_event(steps[:len(head)], head, threshold=threshold, patience=patience)
    after = first_event(steps, head + tail, threshold=threshold, patience=patience)
    if before is not None:
        assert after == before
    elif after is not None and head:
        # no event in the head: one found later can only start in its last patience - 1 evals
        assert after >= steps[max(len(head) - patience + 1, 0)]


@settings(max_examples=200, deadline=None)
@given(train=st.lists(acc, min_size=1, max_size=40), val=st.lists(acc, min_size=1, max_size=40),
       tail_train=st.lists(acc, min_size=0, max_size=30), tail_val=st.lists(acc, min_size=0, max_size=30),
       threshold=st.sampled_from([0.9, 0.95, 0.99]))
def test_detect_grokking_events_survive_any_tail(train, val, tail_train, tail_val, threshold):
    n = min(len(train), len(val))
    m = min(len(tail_train), len(tail_val))
    train, val = train[:n], val[:n]
    steps = np.arange(n + m) + 1
    ev = detect_grokking(steps[:n], train, val, threshold=threshold)
    longer = detect_grokking(steps, train + tail_train[:m], val + tail_val[:m], threshold=threshold)
    if ev.memorized_step is not None:
        assert longer.memorized_step == ev.memorized_step
    if ev.generalized_step is not None:
        assert longer.generalized_step == ev.generalized_step
        assert longer.n_collapses >= ev.n_collapses  # a tail adds falls, never removes one
