import math

from trials.config import TrainConfig
from groktune.events import EVENT_STEP
from trials.evalplan import StopRule, eval_steps, replay_facts


def test_eval_steps_are_dense_early_log_spaced_later_and_include_every_n_and_the_end():
    cfg = TrainConfig(eval_dense_until=50, eval_dense_every=10, eval_log_ratio=1.5, eval_every=400)
    steps = eval_steps(cfg, 1000)
    assert steps[:6] == [1, 10, 20, 30, 40, 50]
    assert {75, 113, 169, 254, 380, 570, 855} <= set(steps)  # ceil(50 * 1.5^k)
    assert {400, 800, 1000} <= set(steps)
    assert steps == sorted(set(steps)) and steps[-1] == 1000
    sparse = TrainConfig(eval_dense_until=50, eval_dense_every=10, eval_log_ratio=1.5, eval_every=10**6)
    assert len(eval_steps(sparse, 10**6)) < 40  # log spacing keeps long runs cheap


def test_stop_rule_needs_k_consecutive_evals_and_reports_the_event():
    rule = StopRule(target=0.9, patience=3)
    seq = [(10, 0.5), (20, 0.95), (30, 0.8), (40, 0.91), (50, 0.99), (60, 0.97)]
    out = [rule.update(s, a, 1.0, True) for s, a in seq]
    assert out == [None] * 5 + ["grokked"]
    assert rule.event == 40  # the spike at 20 fell back and does not count


def test_stop_rule_diverged_early_stop_and_budget():
    assert StopRule(0.9, 3).update(5, 0.1, math.nan, False) == "diverged"
    rule = StopRule(0.9, 3, early_stop_patience=2)
    assert [rule.update(s, 0.1, loss, True) for s, loss in [(1, 1.0), (2, 1.1), (3, 1.2)]] == [
        None, None, "early_stopped"]
    rule = StopRule(0.9, 2)
    rule.update(1, 0.95, 1.0, True)
    assert rule.final_status(None) == "budget"  # one eval at the target at the end is a spike
    # patience 0: never stops at the target, but the event is still found with the default
    # patience (3), and a later dip does not undo it (it used to report "budget").
    rule = StopRule(0.9, 0)
    rule.update(1, 0.95, 1.0, True)
    assert rule.final_status(None) == "budget"  # one eval at the target is not an event
    out = [rule.update(s, a, 1.0, True) for s, a in [(2, 0.95), (3, 0.97), (4, 0.5), (5, 0.5), (6, 0.5)]]
    assert out == [None] * 5 and rule.event == 1 and rule.final_status(None) == "grokked"


def test_stop_rule_state_round_trip():
    a = StopRule(0.9, 3)
    a.update(1, 0.95, 0.5, True)
    b = StopRule(0.9, 3)
    b.load_state_dict(a.state_dict())
    assert (b.tracker.streak, b.tracker.streak_start, b.event, b.best_val_loss) == (1, 1, None, 0.5)
    assert [b.update(s, 0.95, 0.5, True) for s in (2, 3)] == [None, "grokked"] and b.event == 1


def test_stop_rule_loads_a_checkpoint_written_before_the_event_was_saved():
    rule = StopRule(0.9, 3)
    rule.load_state_dict({"streak": 2, "streak_start": 7, "best_val_loss": 0.5, "evals_since_best": 0})
    assert rule.update(9, 0.95, 0.4, True) == "grokked" and rule.event == 7


def test_the_rule_states_its_event_facts_and_replays_them_over_a_saved_curve():
    rule = StopRule(target=0.9, patience=2)
    assert rule.facts() == {EVENT_STEP: None}
    curve = [{"step": s, "val_acc": a, "val_loss": 1.0, "train_loss": 1.0} for s, a in
             [(10, 0.95), (20, 0.5), (30, 0.95), (40, 0.95), (50, 0.1)]]
    curve.append({"step": 60, "val_acc": 0.95, "val_loss": math.nan, "train_loss": 1.0})
    replayed = replay_facts(curve, 0.9, 2)
    assert [r[EVENT_STEP] for r in replayed] == [None, None, None, 30, 30, 30]  # a dip never moves it
    assert [{k: v for k, v in r.items() if k != EVENT_STEP} for r in replayed] == curve
    assert replay_facts([{**curve[0], EVENT_STEP: 7}], 0.9, 2)[0][EVENT_STEP] == 7  # reported facts win
