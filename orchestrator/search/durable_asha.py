"""ASHA whose rungs and stop decisions survive a driver kill.

Ray 2.60 leaves the scheduler out of its experiment snapshot (TuneController.__getstate__
drops `_scheduler_alg`): Tuner.restore brings back the scheduler as it was pickled into
tuner.pkl when the sweep began, with empty rungs. A resumed ASHA would then judge trials
against rungs that hold only what arrives after the resume, and forget that it had already
decided to stop a trial whose stop the kill interrupted.

DurableASHA writes its rungs and stop decisions (JSON, groktune.layout.write_atomic) to
STORAGE/NAME/scheduler.state (not *.json: Tune would copy it back stale) whenever they change, before Tune acts on the decision, and
loads them on first use in a restored driver. A trial it had decided to stop is stopped again
at its first result after the resume; a rung result reported again after a checkpoint restart
is already recorded and is not judged twice.

It also never stops a trial at the end of its budget (a result at max_t, the trainer's step
budget, or a rung that falls on it): the trainer finishes there anyway, and stopping it would
drop its closing report, so the ledger, the Optuna study and the progress line would call a
trial that ran its whole budget (or grokked at its last eval) "pruned".
"""

from __future__ import annotations

import json
from pathlib import Path

from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from groktune.layout import SCHEDULER_STATE, write_atomic
from groktune.readback import read_scheduler_state


class DurableASHA(AsyncHyperBandScheduler):
    """AsyncHyperBandScheduler that persists its state to `state_file` (see module doc)."""

    def __init__(self, state_file: str, **kwargs):
        super().__init__(**kwargs)
        self._state_file = str(state_file)
        self._stopped: set[str] = set()
        self._loaded = False

    def on_trial_add(self, tune_controller, trial):
        self._load()
        super().on_trial_add(tune_controller, trial)

    def add_to_bracket(self, trial, index: int) -> None:
        """on_trial_add with the bracket chosen by the caller (orchestrator.search.point_rungs draws
        it from the point's id, the same in every process), not at random."""
        self._load()
        self._trial_info[trial.trial_id] = self._brackets[index]

    def on_trial_result(self, tune_controller, trial, result):
        self._load()
        if trial.trial_id in self._stopped:
            return TrialScheduler.STOP  # decided before a driver kill; the stop never happened
        if result.get(self._time_attr, 0) >= self._max_t:
            return TrialScheduler.CONTINUE  # the trainer's last eval: its closing report follows
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP:
            self._stopped.add(trial.trial_id)
        self._save()
        return action

    def on_trial_complete(self, tune_controller, trial, result):
        self._load()
        super().on_trial_complete(tune_controller, trial, result)
        self._save()

    def state(self) -> dict:
        """The persisted part: rung records per bracket, stop decisions, the stop count."""
        return {
            "rungs": [[[milestone, recorded] for milestone, recorded in b._rungs] for b in self._brackets],
            "stopped": sorted(self._stopped),
            "num_stopped": self._num_stopped,
        }

    def _save(self) -> None:
        write_atomic(Path(self._state_file), json.dumps(self.state(), default=float))

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        path = Path(self._state_file)
        if not path.exists():
            return  # a fresh sweep
        saved = read_scheduler_state(path)  # damaged: one line naming it, never a silent fresh start
        for bracket, rungs in zip(self._brackets, saved.get("rungs", [])):
            by_milestone = {float(m): recorded for m, recorded in rungs}
            for milestone, recorded in bracket._rungs:
                recorded.update(by_milestone.get(float(milestone), {}))
        self._stopped = set(saved.get("stopped", []))
        self._num_stopped = int(saved.get("num_stopped", 0))


__all__ = ["SCHEDULER_STATE", "DurableASHA"]
