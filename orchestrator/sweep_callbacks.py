"""Tune callbacks of a sweep: the ledger (statuses), the driver heartbeat that `groktune status`
reads, the console's progress line, and tracking.

TensorBoard events per trial come from Ray's own TBX logger (on whenever tensorboardX is
installed). MLflow and W&B callbacks are added when asked for in `search.tracking` and their
packages are installed; asked for but missing, they are skipped with a warning.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path

from ray.tune import Callback

from groktune.layout import HEARTBEAT, write_atomic
from orchestrator.console import LinePrinter, eta_seconds, progress_line
from orchestrator.ledger import final_status, record_trial
from orchestrator.raysession import cluster_resources


class LedgerCallback(Callback):
    """Writes a trial's ledger record (orchestrator.ledger) the moment Tune reports it finished
    (returned, or stopped by the scheduler) or failed for good; listed first, so it runs before
    any other callback of the same event."""

    def __init__(self, experiment_dir: str):
        self.exp = str(experiment_dir)

    def on_trial_complete(self, iteration, trials, trial, **info):
        record_trial(self.exp, trial, errored=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        record_trial(self.exp, trial, errored=True)


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
    """The sweep's one progress line (orchestrator.console), counted from Tune's own trial list
    (no file polling), plus one line per trial that errored for good, naming its error file.

    Args:
        total: trials the sweep will run (pending ones not sampled yet included).
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
        where = Path(trial.path or trial.local_path or "") / "error.txt"
        self.printer.message(f"groktune: trial {trial.trial_id} errored (retries exhausted); see {where}")

    def on_experiment_end(self, trials, **info):
        self.show(trials, force=True)
        self.printer.close()

    def show(self, trials, force: bool = False) -> None:
        """Count the trials and hand the line to the printer."""
        done, running, best = Counter(), 0, None
        for t in trials:
            if t.status in ("TERMINATED", "ERROR"):
                result = t.last_result or {}
                status = final_status(result, t.status == "ERROR")
                done[status] += 1
                steps = result.get("steps_to_target")
                if status == "grokked" and steps is not None:
                    best = steps if best is None else min(best, steps)
            elif t.status in ("RUNNING", "PAUSED"):
                running += 1
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


def tracking_callbacks(names: list[str], experiment_name: str) -> list:
    """MLflow / W&B logger callbacks for the names asked for and installed."""
    callbacks = []
    for name in names:
        if importlib.util.find_spec(name) is None:
            print(f"groktune: warning: search.tracking {name}: package not installed; skipped", file=sys.stderr)
            continue
        if name == "mlflow":
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            callbacks.append(MLflowLoggerCallback(experiment_name=experiment_name))
        elif name == "wandb":
            from ray.air.integrations.wandb import WandbLoggerCallback

            callbacks.append(WandbLoggerCallback(project=experiment_name))
    return callbacks


__all__ = ["HEARTBEAT", "Heartbeat", "LedgerCallback", "Progress", "tracking_callbacks"]
