"""DurableASHA: ASHA's rungs and stop decisions survive a driver kill (Ray's snapshot drops them).

No Ray is started: the scheduler is driven with the calls Tune makes, and a "kill" is a new
scheduler object built as Tuner.restore builds it (fresh from its constructor arguments).
"""

from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from orchestrator.search.durable_asha import DurableASHA


def make(tmp_path):
    return DurableASHA(str(tmp_path / "scheduler.state"), time_attr="step", metric="loss", mode="min",
                       max_t=900, grace_period=100, reduction_factor=3, stop_last_trials=False)


def test_rungs_and_stop_decisions_come_back_after_a_kill(tmp_path):
    trials = [SimpleNamespace(trial_id=t) for t in ("a", "b", "c", "d")]
    asha = make(tmp_path)
    for t in trials:
        asha.on_trial_add(None, t)
    decisions = {t.trial_id: asha.on_trial_result(None, t, {"step": 100, "loss": loss})
                 for t, loss in zip(trials, (1.0, 2.0, 3.0, 9.0))}
    assert decisions["d"] == TrialScheduler.STOP and decisions["a"] == TrialScheduler.CONTINUE
    before = asha.state()

    resumed = make(tmp_path)  # the driver died before Tune stopped d
    for t in trials:
        resumed.on_trial_add(None, t)
    assert resumed.state() == before
    # d restarts from a checkpoint before its rung: the old decision holds
    assert resumed.on_trial_result(None, trials[3], {"step": 50, "loss": 0.1}) == TrialScheduler.STOP
    # a's rung result reported again after a restart is not judged twice
    assert resumed.on_trial_result(None, trials[0], {"step": 100, "loss": 99.0}) == TrialScheduler.CONTINUE
    # a newcomer is judged against the rung recorded before the kill (cutoff of 1, 2, 3, 9)
    late = SimpleNamespace(trial_id="e")
    resumed.on_trial_add(None, late)
    assert resumed.on_trial_result(None, late, {"step": 100, "loss": 8.0}) == TrialScheduler.STOP
    (tmp_path / "other").mkdir()
    fresh = make(tmp_path / "other")
    fresh.on_trial_add(None, late)
    assert fresh.on_trial_result(None, late, {"step": 100, "loss": 8.0}) == TrialScheduler.CONTINUE  # empty rungs


def test_a_trial_at_the_end_of_its_budget_is_never_stopped(tmp_path):
    """A rung on the budget (100 * 3**2 = 900 = max_t) must not prune the trainer's last eval:
    its closing report (the status) would be lost and a finished trial recorded as pruned."""
    asha = make(tmp_path)
    trials = [SimpleNamespace(trial_id=t) for t in "abcd"]
    for t in trials:
        asha.on_trial_add(None, t)
    for t, loss in zip(trials, (1.0, 2.0, 3.0, 4.0)):
        asha.on_trial_result(None, t, {"step": 900, "loss": loss})
    assert asha.on_trial_result(None, trials[3], {"step": 900, "loss": 9.0}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, trials[3], {"step": 300, "loss": 99.0}) == TrialScheduler.CONTINUE  # rung 300 empty
    late = SimpleNamespace(trial_id="e")
    asha.on_trial_add(None, late)
    asha.on_trial_result(None, trials[0], {"step": 300, "loss": 1.0})
    asha.on_trial_result(None, trials[1], {"step": 300, "loss": 1.0})
    asha.on_trial_result(None, trials[2], {"step": 300, "loss": 1.0})
    assert asha.on_trial_result(None, late, {"step": 300, "loss": 50.0}) == TrialScheduler.STOP  # below the budget it prunes
