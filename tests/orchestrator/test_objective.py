"""The grokking-speed score: the orderings ASHA and the searcher rely on."""

import math

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.sweep.objective import QUANTUM, ScoreState, grok_score, progress, scores_for_curve

B = 1000
TARGET = 0.99
CHANCE = 1 / 23
unit = st.floats(0.0, 1.0)
below_target = st.floats(0.0, TARGET - 1e-6)
step = st.integers(1, B)


def score(**kw):
    base = dict(budget=B, target=TARGET, chance=CHANCE, val_acc=0.0)
    base.update(kw)
    return grok_score(**base)


@given(s=step, va=unit, vb=below_target)
def test_any_trial_that_generalised_beats_any_trial_that_has_not(s, va, vb):
    assert score(val_acc=va, event=s) <= B < score(val_acc=vb)


@given(s1=step, s2=step)
def test_earlier_grokking_scores_lower_and_equals_the_step(s1, s2):
    a, b = score(val_acc=1.0, event=s1), score(val_acc=1.0, event=s2)
    assert a == s1 and ((s1 < s2) == (a < b))


@given(v1=below_target, v2=below_target)
def test_higher_val_acc_never_scores_worse(v1, v2):
    lo, hi = sorted((v1, v2))
    assert score(val_acc=hi) <= score(val_acc=lo)


@given(v1=below_target, v2=below_target)
def test_a_quantum_of_progress_always_ranks_strictly_better(v1, v2):
    lo, hi = sorted((v1, v2))
    if (hi - CHANCE) / (TARGET - CHANCE) - max((lo - CHANCE) / (TARGET - CHANCE), 0) >= QUANTUM + 1e-9:
        assert score(val_acc=hi) < score(val_acc=lo)


@given(va=unit, s=st.one_of(st.none(), step))
def test_diverged_is_worst(va, s):
    assert score(val_acc=float("nan")) == 3 * B
    assert score(val_acc=va, finite=False) == 3 * B > score(val_acc=va, event=s)


def test_noise_at_chance_ties_so_asha_does_not_prune_on_it():
    noise = [score(val_acc=CHANCE + d) for d in (-0.02, -0.01, 0.0, 0.01, 0.02)]
    assert len(set(noise)) == 1 and noise[0] == 2 * B


def test_progress_stays_below_one_just_under_the_target():
    assert progress(TARGET - 1e-9, target=TARGET, chance=CHANCE) == 1 - QUANTUM


def rec(step, val_acc, train_loss=0.1, **kw):
    return {"step": step, "val_acc": val_acc, "train_loss": train_loss, "val_loss": 0.1, "param_norm": 8.0, **kw}


def test_state_needs_a_streak_keeps_the_event_through_dips_and_round_trips():
    curve = [rec(10, 0.05, val_acc_per_class=[0.0] * 23), rec(20, 0.995), rec(30, 0.2),  # a spike
             rec(40, 0.995), rec(50, 1.0), rec(60, 0.999),  # the streak of 3 that starts at 40
             rec(70, 0.5), rec(80, 0.4), rec(90, 0.3), rec(100, 0.5, train_loss=float("nan"))]
    s = scores_for_curve(curve, TARGET, B)
    assert s[0] == 2 * B and s[1] > B and s[2] > B  # one eval at the target is not credited
    assert s[3] > B and s[4] > B and s[5] == 40  # credited once the streak has formed
    assert s[6] == s[7] == s[8] == 40  # a slingshot dip never throws it back above the budget
    assert s[9] == 3 * B
    state = ScoreState()
    for r in curve[:5]:
        state.update(r, TARGET, B)
    again = ScoreState.from_dict(state.state_dict())
    assert again == state and again.event is None and math.isclose(again.chance, 1 / 23)
    assert again.update(curve[5], TARGET, B) == 40 and again.event == 40


def test_patience_comes_from_the_state():
    curve = [rec(10, 0.995), rec(20, 0.995), rec(30, 0.2)]
    assert scores_for_curve(curve, TARGET, B, patience=1)[0] == 10
    assert scores_for_curve(curve, TARGET, B, patience=2)[1] == 10
    assert min(scores_for_curve(curve, TARGET, B, patience=3)) > B


def test_chance_from_the_task_when_per_class_metrics_are_off():
    """Sparse parity sits at 0.5 +- noise; with chance 0 (the old default) that noise read as
    ~half-way progress and split tied trials."""
    from tasks import TaskConfig, chance_level

    parity = chance_level(TaskConfig(name="sparse_parity", n_bits=8, k_bits=3, n_samples=100))
    assert parity == 0.5 and chance_level(TaskConfig(name="modular", p=97)) == 1 / 97
    assert chance_level(TaskConfig(name="s5", op="xy")) == 1 / 120
    plateau = [scores_for_curve([rec(10, 0.5 + d)], TARGET, B, chance=parity)[0] for d in (-0.01, 0.0, 0.01)]
    assert plateau == [2 * B] * 3
    assert len({scores_for_curve([rec(10, 0.5 + d)], TARGET, B)[0] for d in (-0.01, 0.0, 0.01)}) > 1
    given_wins = ScoreState.from_dict({"chance": 0.25, "patience": 5}, chance=0.5, patience=None)
    assert (given_wins.chance, given_wins.patience) == (0.5, 5)
