"""Tune callbacks of a sweep: the ledger (statuses), the driver heartbeat that `groktune status`
reads, the console's progress line, TensorBoard, and tracking.

TensorBoard: orchestrator.sweep.tensorboard.StepTensorBoard (one run per trial, or per point of
a pack, at the optimizer step, in SWEEP/tensorboard/). MLflow and W&B callbacks (orchestrator.sweep.tracking, also on the optimizer
step) are added when asked for in `search.tracking` and their packages are installed; asked for
but missing, they are skipped with a warning.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path

from ray.tune import Callback
from ray.tune.logger import JsonLoggerCallback

from groktune.layout import EXPERIMENT, HEARTBEAT, TUNE_ERROR, write_atomic
from orchestrator.config.experiment import load_config
from orchestrator.sweep.console import LinePrinter, eta_seconds, progress_line
from orchestrator.sweep.ledger import final_status, record_trial, restore_curve
from orchestrator.session.start import cluster_resources
from orchestrator.sweep.packing import DONE_KEY, OUTCOMES_KEY, PACK_KEY, point_trial_id, record_points
# Re-exported: the tuner.pkl of a sweep started before the move names callbacks.StepTensorBoard.
from orchestrator.sweep.tensorboard import StepTensorBoard, run_name



class LedgerCallback(Callback):
    """Writes a trial's ledger record (orchestrator.sweep.ledger) the moment Tune reports it finished
    (returned, or stopped by the scheduler) or failed for good; listed first, so it runs before
    any other callback of the same event: when a trial the ledger holds as finished starts again
    (a resumed driver), its whole curve is back in its result.json before Tune's JSON logger
    opens that file (orchestrator.sweep.ledger.restore_curve)."""

    def __init__(self, experiment_dir: str):
        self.exp = str(experiment_dir)

    def on_trial_start(self, iteration, trials, trial, **info):
        restore_curve(self.exp, trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if PACK_KEY in trial.config and result.get(DONE_KEY):
            record_points(self.exp, trial, result=result)  # points that stopped inside a pack that goes on

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._record(trial, errored=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._record(trial, errored=True)

    def _record(self, trial, errored: bool) -> None:
        """The trial's record; a pack's points first, each its own (orchestrator.sweep.packing)."""
        extra = None
        if PACK_KEY in trial.config:
            record_points(self.exp, trial, final_status(dict(trial.last_result or {}), errored))
            extra = {"points": [point_trial_id(str(trial.trial_id), j) for j in range(len(trial.config[PACK_KEY]))]}
        record_trial(self.exp, trial, errored=errored, train_cfg=self._train(), extra=extra)

    def _train(self):
        """The experiment's TrainConfig (its budget and stop rule), read once from experiment.yaml."""
        saved = Path(self.exp) / EXPERIMENT
        if getattr(self, "_train_cfg", None) is None and saved.is_file():  # written before Tune starts
            self._train_cfg = load_config(saved).train
        return getattr(self, "_train_cfg", None)

    def __getstate__(self):  # pickled into tuner.pkl: the config is read again by the next driver
        return {"exp": self.exp}


class Heartbeat(Callback):
    """Writes EXPERIMENT/driver.heartbeat (JSON) every few seconds: driver pid, trial counts, resources."""

    def __init__(self, experiment_dir: str, every_s: float = 5.0):
        self.path = Path(experiment_dir) / HEARTBEAT
        self.every_s = every_s
        self.last = 0.0

    def on_step_end(self, iteration, trials, **info):
        if time.monotonic() - self.last >= self.every_s:
            self.write(trials, finished=False)

    def on_experiment_end(self, trials, **info):
        self.write(trials, finished=True)

    def write(self, trials, finished: bool) -> None:
        self.last = time.monotonic()
        try:
            resources = cluster_resources()
        except Exception:  # noqa: BLE001 - Ray shutting down; the heartbeat is best effort
            resources = {}
        data = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "updated": time.time(),
            "finished": finished,
            "trials": dict(Counter(t.status for t in trials)),
            "resources": resources,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent=1))

    def __getstate__(self):  # pickled into tuner.pkl; the heartbeat restarts with the new driver
        return {"path": self.path, "every_s": self.every_s, "last": 0.0}


class Progress(Callback):
    """The sweep's one progress line (orchestrator.sweep.console), counted from Tune's own trial list
    (no file polling), plus one line per trial that errored for good, naming its error file.

    Args:
        total: trials the sweep will run (pending ones not sampled yet included); with packs
            (search.pack) its points, each counted as a trial.
        stream: where to print (the driver's stdout); not pickled into tuner.pkl.
    """

    def __init__(self, total: int, stream=None):
        self.total = total
        self.stream = stream
        self._reset()

    def _reset(self) -> None:
        self.printer = LinePrinter(self.stream or sys.stdout)
        self.started = time.monotonic()
        self.done_before = None  # trials already finished when this driver started (a resume)

    def on_step_end(self, iteration, trials, **info):
        if self.printer.due():
            self.show(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        where = Path(trial.path or trial.local_path or "") / TUNE_ERROR
        self.printer.message(f"groktune: trial {trial.trial_id} errored (retries exhausted); see {where}")

    def on_experiment_end(self, trials, **info):
        self.show(trials, force=True)
        self.printer.close()

    def show(self, trials, force: bool = False) -> None:
        """Count the trials and hand the line to the printer."""
        done, running, best = Counter(), 0, None
        for t in trials:
            size = len((getattr(t, "config", None) or {}).get(PACK_KEY) or [None])  # a pack counts as its points
            if t.status in ("TERMINATED", "ERROR"):
                result = t.last_result or {}
                outcomes = json.loads(result.get(OUTCOMES_KEY) or "[]") if t.status == "TERMINATED" else []
                for outcome in outcomes or [{"status": final_status(result, t.status == "ERROR"),
                                             "steps_to_target": result.get("steps_to_target")}] * size:
                    done[outcome["status"]] += 1
                    steps = outcome.get("steps_to_target")
                    if outcome["status"] == "grokked" and steps is not None:
                        best = steps if best is None else min(best, steps)
            elif t.status in ("RUNNING", "PAUSED"):
                running += size
        finished = sum(done.values())
        if self.done_before is None:
            self.done_before = finished
        pending = max(self.total - finished - running, len(trials) - finished - running)
        elapsed = time.monotonic() - self.started
        eta = eta_seconds(finished - self.done_before, running + pending, elapsed)
        self.printer.update(progress_line(done, running, pending, best, elapsed, eta), force=force)

    def __getstate__(self):  # pickled into tuner.pkl: no stream; counting restarts with the new driver
        return {"total": self.total, "stream": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset()


def logger_callbacks(search, experiment_dir: str | Path) -> list:
    """Tune's JSON logger (each trial's result.json: the curves orchestrator.sweep.results reads),
    StepTensorBoard (tensorboardX comes with ray[tune]) and the tracking callbacks of
    search.tracking, for RunConfig(callbacks=...).

    Listed here rather than left to Tune, which adds its JSON, CSV and TBX loggers to any run
    that lacks them: orchestrator.sweep.driver turns that off (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS) for
    a fresh sweep, so no trial also writes a progress.csv copy of its curve that nothing reads.
    """
    path = Path(experiment_dir)
    callbacks = [JsonLoggerCallback(), StepTensorBoard(path, search.space)]
    if search.tracking:
        # Ray's W&B integration imports wandb, which makes temp folders at import (left behind if
        # the driver is killed) and costs seconds: only a sweep that asks for a tracker pays.
        from orchestrator.sweep.tracking import tracking_callbacks  # deferred: wandb/mlflow, see above

        callbacks += tracking_callbacks(search.tracking, path.name)
    return callbacks


__all__ = ["HEARTBEAT", "Heartbeat", "LedgerCallback", "Progress", "StepTensorBoard", "logger_callbacks", "run_name"]
