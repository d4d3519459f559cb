"""The loop driver of trials.train (K >= 1 members): which steps evaluate, when to checkpoint,
when to stop. This module owns the "when":

    loop = Loop(cfg.train)                  # the eval plan, the step budget, a fresh Clock
    loop.clock.load_state_dict(...)         # on a resume, before iterating
    for step, at_eval in loop.steps():      # step: optimizer steps done before this one
        ...one optimizer step...
        loop.tick(batch_size)
        if not at_eval:
            continue
        ...evaluate, update the stop rules (trials.evalplan.StopRule)...
        loop.finished = <nothing left to train>
        save = loop.checkpoint(lambda: <the state to save>)  # None unless one is due
        report(..., save)

and `loop.result(rule, stop, record)` turns a stop rule into a member's TrainResult.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from trials.checkpoint import save_checkpoint
from trials.config import TrainConfig
from trials.evalplan import StopRule, eval_steps

Save = Callable[[str | Path], Path]
"""save(directory) -> the checkpoint file written there."""


@dataclass
class TrainResult:
    """How one run ended: what train() returns, and each member of a population's result."""

    status: str
    """grokked | budget | diverged | early_stopped"""
    steps_to_target: int | None
    final_step: int
    wall_time: float
    final: dict = field(default_factory=dict)


@dataclass
class Clock:
    """The loop's position, saved in every checkpoint: steps and examples done, wall time spent
    before this process, and the step at or after which the next checkpoint is due."""

    step: int = 0
    examples: int = 0
    elapsed: float = 0.0
    next_checkpoint: int = 0

    def state_dict(self) -> dict:
        return {"step": self.step, "examples": self.examples, "elapsed": self.elapsed,
                "next_checkpoint": self.next_checkpoint}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.examples = int(state["step"]), int(state["examples"])
        self.elapsed, self.next_checkpoint = float(state["elapsed"]), int(state["next_checkpoint"])


class Loop:
    """The eval plan (trials.evalplan.eval_steps), the step budget, the checkpoint cadence and
    the wall clock of one training loop.

    Args:
        tc: the TrainConfig (steps, the eval schedule, checkpoint_every).
        clock_type: Clock or a subclass carrying more loop state; the loop starts a fresh one
            (`self.clock`), whose first checkpoint is due at train.checkpoint_every. A resume
            loads its state before iterating `steps()`.
    """

    def __init__(self, tc: TrainConfig, clock_type: type[Clock] = Clock):
        self.tc = tc
        self.clock = clock_type(next_checkpoint=tc.checkpoint_every)
        self.plan = frozenset(eval_steps(tc, tc.steps))
        self.finished = False
        """Set by the trainer when nothing is left to train (a stop rule fired for every run)."""
        self._started = time.perf_counter()

    def steps(self) -> Iterator[tuple[int, bool]]:
        """Yield (steps done, whether an eval follows this step) until the budget is spent or
        `finished` is set. The wall clock starts here, counting the time a resumed run had spent."""
        self._started = time.perf_counter() - self.clock.elapsed
        while self.clock.step < self.tc.steps and not self.finished:
            yield self.clock.step, self.clock.step + 1 in self.plan

    def tick(self, examples: int) -> None:
        """Count one optimizer step over `examples` training examples (per run)."""
        self.clock.step += 1
        self.clock.examples += examples

    @property
    def at_end(self) -> bool:
        """This eval is the loop's last: the budget is spent or `finished` is set."""
        return self.finished or self.clock.step >= self.tc.steps

    def wall(self) -> float:
        """Seconds of training so far, across resumes."""
        return time.perf_counter() - self._started

    def checkpoint(self, snapshot: Callable[[], dict]) -> Save | None:
        """At an eval: a save function when a checkpoint is due, else None.

        Due every train.checkpoint_every steps, at the last step and when `finished`. The clock
        moves on to the next due step and its elapsed time is brought up to date before
        `snapshot()` is taken, so a resumed loop continues exactly from here.

        Args:
            snapshot: returns the state to save (tensors already copied off the device).
        Returns:
            None, or save(directory) -> path writing that state (trials.checkpoint).
        """
        c, every = self.clock, self.tc.checkpoint_every
        if not (c.step >= c.next_checkpoint or self.at_end):
            return None
        c.next_checkpoint = (c.step // every + 1) * every
        c.elapsed = self.wall()
        state = snapshot()
        return lambda directory: save_checkpoint(state, directory)

    def result(self, rule: StopRule, stop: str | None, record: dict) -> TrainResult:
        """A run's TrainResult now: its status by the stop rule, the step it reached the target
        (when it grokked), the current step and wall time and its last record."""
        status = rule.final_status(stop)
        return TrainResult(status=status, steps_to_target=rule.event if status == "grokked" else None,
                           final_step=self.clock.step, wall_time=self.wall(), final=dict(record))


def stop_rule(tc: TrainConfig) -> StopRule:
    """The StopRule of a TrainConfig (target, patience, early stop), the same for every run."""
    return StopRule(tc.target_val_acc, tc.target_patience, tc.early_stop_patience)


__all__ = ["Clock", "Loop", "Save", "TrainResult", "stop_rule"]
