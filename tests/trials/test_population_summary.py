"""What a population's evals and result say: the median record over members (stopped members at
their last values, NaN ranked as +inf), the population's status and its median steps to target."""

import math

import pytest

from groktune.events import EVENT_STEP
from trials.population_summary import median_event
from trials.train import PopulationEval, PopulationResult, TrainResult, median_steps_to_target


def _result(status, steps):
    return TrainResult(status=status, steps_to_target=steps, final_step=100, wall_time=0.0)


def test_median_counts_runs_that_did_not_grok_as_infinite():
    assert median_steps_to_target([_result("grokked", 100), _result("grokked", 300), _result("budget", None)]) == 300
    assert median_steps_to_target([_result("grokked", 100), _result("grokked", 200)]) == 150
    assert median_steps_to_target([_result("grokked", 100), _result("diverged", None)]) is None
    assert median_steps_to_target([_result("budget", None)]) is None
    assert not math.isnan(median_steps_to_target([_result("grokked", 7)]))


def _record(member, step, **metrics):
    return {"step": step, "epoch": step / 10, "lr": 1e-3, "train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5,
            "wall_time": 1.0, "val_acc_per_class": [0.5, 0.5], **metrics, "member": member}


def test_the_median_record_keeps_stopped_members_at_their_last_values():
    stopped = _record(0, 20, val_acc=1.0, val_loss=0.01, lr=9.0, val_acc_per_class=[1.0, 1.0])  # grokked at 20
    diverged = _record(1, 10, val_acc=0.0, val_loss=float("nan"), val_acc_per_class=[0.0, 0.0])
    live = [_record(2, 40, val_acc=0.3, val_loss=2.0, val_acc_per_class=[0.2, 0.4]),
            _record(3, 40, val_acc=0.8, val_loss=0.5, val_acc_per_class=[0.6, 1.0])]
    ev = PopulationEval(step=40, records=live, latest=[stopped, diverged, *live], grokked_fraction=0.25)
    median = ev.median_record()
    assert "member" not in median and median["step"] == 40 and isinstance(median["step"], int)
    assert median["epoch"] == 4.0 and median["lr"] == 1e-3  # this eval's, not the stopped member's
    assert median["val_acc"] == pytest.approx((0.3 + 0.8) / 2)  # of 1.0, 0.0, 0.3, 0.8
    assert median["val_loss"] == pytest.approx((0.5 + 2.0) / 2)  # NaN ranks as +inf: of 0.01, 0.5, 2.0, inf
    assert median["val_acc_per_class"] == pytest.approx([0.4, 0.7])
    half_diverged = PopulationEval(step=40, records=live[:1], latest=[diverged, diverged, live[0]], grokked_fraction=0.0)
    assert half_diverged.median_record()["val_loss"] == math.inf


def test_the_median_record_carries_the_median_of_the_members_events():
    """Each member's own event (its StopRule's), a member without one as +inf, as median_steps_to_target."""
    members = [_record(k, 40, **{EVENT_STEP: e}) for k, e in enumerate((30, None, 10, 20))]
    assert PopulationEval(40, members, members, 0.75).median_record()[EVENT_STEP] == 25.0
    assert PopulationEval(40, members[:2], members[:2], 0.5).median_record()[EVENT_STEP] is None
    assert median_event([None, 5, 7]) == 7 and median_event([]) is None


def test_the_population_status_is_the_median_members():
    def status(*members):
        result = PopulationResult(members=list(members), median_steps_to_target=median_steps_to_target(list(members)),
                                  grokked_fraction=0.0, wall_time=0.0)
        assert (result.status == "grokked") == (result.median_steps_to_target is not None)
        return result.status

    assert status(_result("grokked", 100), _result("grokked", 300), _result("budget", None)) == "grokked"
    assert status(_result("grokked", 100), _result("budget", None), _result("diverged", None)) == "budget"
    assert status(_result("grokked", 100), _result("diverged", None), _result("diverged", None)) == "diverged"
    assert status(_result("early_stopped", None), _result("budget", None), _result("diverged", None)) == "early_stopped"
    assert status(_result("grokked", 100), _result("grokked", 200), _result("budget", None), _result("budget", None)) == "budget"
    assert status(*[_result("grokked", s) for s in (100, 200, 300)], _result("budget", None)) == "grokked"
