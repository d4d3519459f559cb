"""The grokking-speed score: the orderings ASHA and the searcher rely on."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

import pytest

from groktune.errors import CheckpointError
from groktune.events import EVENT_STEP, first_event
from orchestrator.sweep.objective import COMING, QUANTUM, ScoreState, grok_score, loss_trend, progress, scores_for_curve
from trials.evalplan import replay_facts

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
    s = scores_for_curve(curve, TARGET, B, chance=1 / 23)
    assert s[0] == 2 * B and s[1] > B and s[2] > B  # one eval at the target is not credited
    assert s[3] > B and s[4] > B and s[5] == 40  # credited once the streak has formed
    assert s[6] == s[7] == s[8] == 40  # a slingshot dip never throws it back above the budget
    assert s[9] == 3 * B
    reported = replay_facts(curve, TARGET, 3)  # the trainer's records: each carries its event so far
    assert [r[EVENT_STEP] for r in reported] == [None] * 5 + [40] * 5
    state = ScoreState(chance=1 / 23)
    for r in reported[:5]:
        state.update(r, TARGET, B)
    again = ScoreState.from_dict(state.state_dict(), chance=1 / 23)
    assert again == state and set(state.state_dict()) == {"val_losses"}  # no event state of its own
    assert again.update(reported[5], TARGET, B) == 40


def test_the_score_reads_the_event_the_trainer_reported_and_finds_none_itself():
    """A record at the target with no reported event is not grokked (the score keeps no tracker);
    a reported event is the score even while val accuracy dips (a slingshot)."""
    state = ScoreState(chance=CHANCE)
    at_target = [state.update(rec(s, 1.0, event_step=None), TARGET, B) for s in (10, 20, 30, 40)]
    assert min(at_target) > B
    assert state.update(rec(50, 0.3, event_step=20), TARGET, B) == 20
    with pytest.raises(KeyError):
        state.update(rec(60, 1.0), TARGET, B)  # a record without the trainer's facts is refused


def test_a_score_state_saved_by_the_earlier_version_resumes_and_damage_is_one_line():
    """tune_state.json written when the score kept its own event tracker: its val_losses carry on,
    its tracker and patience are dropped (the trainer's checkpoint holds its stop rule)."""
    old = {"chance": 0.25, "patience": 5, "tracked": {"event": 40, "streak": 3, "streak_start": 40},
           "val_losses": [[10, 2.0], [20, 1.5]]}
    state = ScoreState.from_dict(json.loads(json.dumps(old)), chance=0.5)
    assert state == ScoreState(chance=0.5, val_losses=[[10, 2.0], [20, 1.5]])
    assert state.update(rec(40, 0.3, val_loss=1.0, event_step=None), TARGET, B) == B * (2 - COMING)
    for bad in ([["a", 1]], {"x": 1}, [[1, 2, 3]], [[True, 1.0]]):
        with pytest.raises(CheckpointError, match="score.val_losses"):
            ScoreState.from_dict({"val_losses": bad}, chance=0.5)


def test_patience_is_the_trainers_target_patience():
    curve = [rec(10, 0.995), rec(20, 0.995), rec(30, 0.2)]
    assert scores_for_curve(curve, TARGET, B, patience=1)[0] == 10
    assert scores_for_curve(curve, TARGET, B, patience=2)[1] == 10
    assert min(scores_for_curve(curve, TARGET, B, patience=3)) > B


def test_chance_from_the_task_when_per_class_metrics_are_off():
    """Sparse parity sits at 0.5 +- noise; with chance 0 (the old default) that noise read as
    ~half-way progress and split tied trials."""
    from tasks.classes import chance_level
    from tasks.config import TaskConfig

    parity = chance_level(TaskConfig(name="sparse_parity", n_bits=8, k_bits=3, n_samples=100))
    assert parity == 0.5 and chance_level(TaskConfig(name="modular", p=97)) == 1 / 97
    assert chance_level(TaskConfig(name="s5", op="xy")) == 1 / 120
    plateau = [scores_for_curve([rec(10, 0.5 + d)], TARGET, B, chance=parity)[0] for d in (-0.01, 0.0, 0.01)]
    assert plateau == [2 * B] * 3
    assert len({scores_for_curve([rec(10, 0.5 + d)], TARGET, B)[0] for d in (-0.01, 0.0, 0.01)}) > 1
    assert ScoreState.from_dict({"chance": 0.25}, chance=0.5).chance == 0.5  # the task's, never a saved one
    assert ScoreState.from_dict({}, chance=None).chance == 0.0  # lm: no answer classes
    # The records' per-class accuracies no longer stand in for the task's chance.
    # (chance 0.5 from them would score 2B; chance 0 gives progress 0.5 / 0.99, floored to 0.5)
    assert scores_for_curve([rec(10, 0.5, val_acc_per_class=[0.5, 0.5])], TARGET, B)[0] == 1.5 * B


# --- The rung score on real curves (benchmarks/pools: p=97 transformers trained once to 4000 steps
# with no early stop; tests/analysis/fixtures: two real grokking runs).

POOLS = Path(__file__).resolve().parents[2] / "benchmarks" / "pools"
FIXTURES = Path(__file__).resolve().parents[1] / "analysis" / "fixtures"


def _final_and_rung_score(curve: pd.DataFrame, rung: int, budget: int = 4000):
    """(final steps to target or 2 x budget, the score at the last eval at or before `rung`,
    whether the trial had generalised by then)."""
    records = replay_facts(curve.sort_values("step").to_dict("records"), 0.99, 3)
    final = first_event([r["step"] for r in records], [r["val_acc"] for r in records], threshold=0.99, patience=3)
    state, score, event = ScoreState(chance=1 / 97), None, None
    for r in records:
        if r["step"] > rung:
            break
        score, event = state.update(r, 0.99, budget), r[EVENT_STEP]
    return (2 * budget if final is None else final), score, event is not None


def _spearman(a, b) -> float:
    ra, rb = pd.Series(a).rank(), pd.Series(b).rank()
    return float(np.corrcoef(ra, rb)[0, 1])


def test_rung_score_ranks_trials_not_yet_generalised_by_how_soon_they_grok():
    """On held-out real pools (the score's terms were chosen on plateau-0 and plateau-2), at each
    ASHA rung the score of the trials still short of the target rank-correlates with their final
    steps to target, and the trials whose val loss does not fall grok later (or never)."""
    for pool in ("plateau-1", "plateau-3"):
        frame = pd.read_parquet(POOLS / f"{pool}.parquet")
        for rung in (300, 900):
            rows = [_final_and_rung_score(c, rung) for _, c in frame.groupby("config")]
            open_ = [(f, s) for f, s, done in rows if not done]
            finals, scores = zip(*open_)
            assert _spearman(scores, finals) > 0.3, (pool, rung)
            coming = [f for f, s in open_ if s < 2 * 4000 * 0.75 + 1e-9]  # promise >= COMING
            rising = [f for f, s in open_ if s >= 2 * 4000 * 0.75 + 1e-9 and s > 1.9 * 4000]
            if rung == 300 or (coming and rising):
                assert coming and rising and np.median(coming) < np.median(rising), (pool, rung)


def test_rung_score_sees_grokking_coming_before_val_accuracy_moves():
    """On both real grokking runs the val-loss term turns on while val accuracy is still within
    a quantum of chance, before the event; before that the trial ties with the plateau (2B)."""
    for name in ("modmul_adamw_wd1_4000", "modmul_grokfast_3000"):
        records = replay_facts(json.loads((FIXTURES / f"{name}.json").read_text())["records"], 0.99, 3)
        budget = records[-1]["step"]
        state = ScoreState(chance=1 / 97)
        scores = [state.update(r, 0.99, budget) for r in records]
        event = records[-1][EVENT_STEP]
        early = [i for i, r in enumerate(records)
                 if r["step"] < event and progress(r["val_acc"], target=0.99, chance=1 / 97) == 0]
        assert any(scores[i] == budget * (2 - COMING) for i in early), name  # coming, at chance
        assert scores[0] == 2 * budget  # too early to tell: ties with every plateau trial
        assert all(s == event for s, r in zip(scores, records) if r["step"] >= event + 20)


def test_loss_trend_state_is_bounded_and_round_trips():
    state = ScoreState(chance=0.1)
    for step in range(1, 2001, 10):
        state.update({"step": step, "val_acc": 0.1, "val_loss": 5.0 - step / 1000, "train_loss": 0.1,
                      "param_norm": 1.0, EVENT_STEP: None}, 0.99, 2000)
    assert len(state.val_losses) < 110  # only what a later eval may look back to
    again = ScoreState.from_dict(json.loads(json.dumps(state.state_dict())), chance=0.1)
    nxt = {"step": 2001, "val_acc": 0.1, "val_loss": 2.9, "train_loss": 0.1, "param_norm": 1.0, EVENT_STEP: None}
    assert again.update(dict(nxt), 0.99, 2100) == state.update(dict(nxt), 0.99, 2100)
    assert loss_trend([[10, 4.0]], 15, 2.0) is None and loss_trend([[10, 4.0]], 20, 2.0) == math.log(2)
