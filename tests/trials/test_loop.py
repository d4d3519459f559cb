"""trials.loop.Loop, the one loop driver of train() and train_population(): which steps
evaluate, when a checkpoint is due, when the loop ends, and how a resumed clock continues.
Driven by hand here (no model); tests/trials/test_train.py and test_population.py pin that both
trainers' curves and resumes are unchanged through it."""

from trials.config import TrainConfig
from trials.evalplan import StopRule, eval_steps
from trials.loop import Clock, Loop

TC = TrainConfig(steps=50, eval_dense_until=0, eval_dense_every=1, eval_log_ratio=2.0, eval_every=10,
                 checkpoint_every=20)


def drive(loop: Loop, stop_at: int | None = None) -> tuple[list[int], list[int]]:
    """Run the loop as a trainer does; return the steps evaluated and those offered a checkpoint."""
    evals, saves = [], []
    for _, at_eval in loop.steps():
        loop.tick(8)
        if not at_eval:
            continue
        evals.append(loop.clock.step)
        loop.finished = stop_at is not None and loop.clock.step >= stop_at
        save = loop.checkpoint(lambda: {"progress": loop.clock.state_dict()})
        if save is not None:
            saves.append(loop.clock.step)
    return evals, saves


def test_evals_follow_the_plan_and_checkpoints_the_cadence_and_the_end():
    loop = Loop(TC)
    evals, saves = drive(loop)
    assert evals == eval_steps(TC, TC.steps)
    # due at the first eval at or past each multiple of checkpoint_every, and at the last step
    assert saves == [20, 40, 50]
    assert (loop.clock.step, loop.clock.examples) == (50, 400)


def test_a_finished_loop_checkpoints_and_stops_at_that_eval():
    loop = Loop(TC)
    evals, saves = drive(loop, stop_at=30)
    assert evals[-1] == 30 and loop.clock.step == 30
    assert saves == [20, 30]


def test_a_checkpoint_due_between_evals_is_taken_at_the_next_eval():
    tc = TrainConfig(steps=50, eval_dense_until=0, eval_dense_every=1, eval_log_ratio=2.0, eval_every=15,
                     checkpoint_every=20)
    evals, saves = drive(Loop(tc))
    assert 20 not in evals and 30 in evals
    assert saves == [30, 45, 50]  # 30 >= 20, then the next due step is 40: taken at 45


def test_a_resumed_clock_continues_the_same_schedule():
    whole = Loop(TC)
    evals, saves = drive(whole)
    first = Loop(TC)
    states = []
    for _, at_eval in first.steps():
        first.tick(8)
        if at_eval and first.checkpoint(lambda: first.clock.state_dict()) is not None:
            states.append(first.clock.state_dict())
            break  # "killed" right after the checkpoint at step 20
    resumed = Loop(TC)
    resumed.clock.load_state_dict(states[0])
    rest_evals, rest_saves = drive(resumed)
    assert [e for e in evals if e > 20] == rest_evals
    assert [s for s in saves if s > 20] == rest_saves
    assert resumed.clock.examples == whole.clock.examples


def test_the_clock_round_trips_and_a_subclass_is_the_loops_clock():
    clock = Clock(step=7, examples=56, elapsed=1.5, next_checkpoint=20)
    copy = Clock()
    copy.load_state_dict(clock.state_dict())
    assert copy == clock

    class Tagged(Clock):
        pass

    assert type(Loop(TC, Tagged).clock) is Tagged and Loop(TC, Tagged).clock.next_checkpoint == 20


def test_the_result_reads_the_stop_rule():
    loop = Loop(TC)
    rule = StopRule(0.9, 1)
    drive(loop, stop_at=10)
    assert rule.update(10, 0.95, 0.1, True) == "grokked"
    result = loop.result(rule, "grokked", {"step": 10})
    assert (result.status, result.steps_to_target, result.final_step, result.final) == ("grokked", 10, 10, {"step": 10})
    budget = loop.result(StopRule(0.9, 1), None, {})
    assert (budget.status, budget.steps_to_target) == ("budget", None)
