"""Tune callbacks of a sweep: the ledger (statuses), the driver heartbeat that `groktune status`
reads, the console's progress line, TensorBoard, and tracking.

TensorBoard: StepTensorBoard replaces Ray's TBX logger (a subclass, so Tune does not add its
own): every trial's scalars at the optimizer step (result["step"], not Tune's
training_iteration), one run per trial named by its hyperparameters
(`trial_1a2b3_00004_lr=0.003,weight_decay=1`), all in SWEEP/tensorboard/ (groktune.layout
TENSORBOARD) instead of a temporary Ray folder, so `tensorboard --logdir SWEEP/tensorboard`
follows a sweep live. MLflow and W&B callbacks (orchestrator.sweep.tracking, also on the optimizer
step) are added when asked for in `search.tracking` and their packages are installed; asked for
but missing, they are skipped with a warning.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from collections import Counter
from pathlib import Path

from ray.tune import Callback
from ray.tune.logger import JsonLoggerCallback, TBXLoggerCallback
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.summary import scalar as tb_scalar

from groktune.layout import EXPERIMENT, HEARTBEAT, TENSORBOARD, TIME_ATTR, TUNE_ERROR, write_atomic
from orchestrator.config.experiment import load_config
from orchestrator.sweep.console import LinePrinter, eta_seconds, progress_line
from orchestrator.sweep.ledger import final_status, record_trial, restore_curve, scalar_metrics
from orchestrator.session.start import cluster_resources
from orchestrator.sweep.packing import DONE_KEY, OUTCOMES_KEY, PACK_KEY, POINTS_KEY, point_trial_id, record_points
from orchestrator.config.trial import searched_values

# TensorBoard event files are flushed this often (and when a trial ends), not after every
# report: a flush is an fsync, and per report it was the driver's largest cost in a sweep of
# many small trials (benchmarks/README.md, "Sweep throughput").
FLUSH_S = 5
RUN_NAME_MAX = 120  # characters of a TensorBoard run (folder) name
# Scalars a trial's hparams entry shows (TensorBoard's HPARAMS tab), when the trial reported them.
HPARAM_METRICS = ("grok_score", "val_acc", "steps_to_target")


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


def run_name(trial_id: str, config: dict, keys: list[str]) -> str:
    """A trial's TensorBoard run name: `trial_<id>_` and its searched values, file-name safe.

    Args:
        trial_id: Tune's trial id.
        config: the trial's sampled point (dotted keys; maybe "seed").
        keys: the searched keys (search.space), in order; shown by their last component
            (lr, weight_decay) unless two share it, then in full.
    Returns:
        e.g. `trial_1a2b3_00004_lr=0.003,weight_decay=1,seed=1`, at most RUN_NAME_MAX characters.
    """
    keys = [k for k in keys if k in config] + (["seed"] if "seed" in config and "seed" not in keys else [])
    short = {k: k.rsplit(".", 1)[-1] for k in keys}
    if len(set(short.values())) < len(short):
        short = {k: k for k in keys}
    parts = ",".join(f"{short[k]}={_short_value(config[k])}" for k in keys)
    name = f"trial_{trial_id}" + (f"_{parts}" if parts else "")
    return re.sub(r"[^\w.=,+-]", "_", name)[:RUN_NAME_MAX]


def _short_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class StepTensorBoard(TBXLoggerCallback):
    """Each trial's scalars at the optimizer step, one run per trial in SWEEP/tensorboard/.

    A step is written once per trial: the adapter's closing report repeats the last eval's step
    (only its new scalars, such as steps_to_target, are added) and a trial retried from a
    checkpoint repeats the steps after it (skipped). At the trial's end its hyperparameters and
    HPARAM_METRICS go to TensorBoard's HPARAMS tab. The run is named when the trial starts: a PBT
    trial that Tune restarts under a perturbed config continues in a run named by its new values.
    A pack (search.pack) has no run of its own: each of its points gets one, named and filled
    as an unpacked trial's (orchestrator.sweep.packing).

    Args:
        experiment_dir: the sweep folder.
        space: search.space, for run names and hparams (with each sampled value as the trial's
            config holds it: orchestrator.config.trial.searched_values).
    """

    def __init__(self, experiment_dir: str | Path, space: dict):
        super().__init__()  # tensorboardX's SummaryWriter
        self.root = Path(experiment_dir) / TENSORBOARD
        self.space = dict(space)
        self._written: dict[str, tuple[int, set]] = {}  # trial id -> (last step, its scalar names)
        self._starts: dict[str, int] = {}  # trial id -> writers opened for it
        self._points: dict[str, dict] = {}  # pack trial id -> {point id: [writer, point, last scalars]}

    def _open(self, run_id: str, values: dict):
        folder = self.root / run_name(run_id, values, list(self.space))
        # tensorboardX names event files by the second: a retry within it would overwrite the file.
        starts = self._starts[run_id] = self._starts.get(run_id, 0) + 1
        return self._summary_writer_cls(str(folder), flush_secs=FLUSH_S, filename_suffix=f".{os.getpid()}.{starts}")

    def log_trial_start(self, trial):
        if PACK_KEY in trial.config:
            self._close_points(trial.trial_id)
            return
        if trial in self._trial_writer:
            self._trial_writer[trial].close()
        self._trial_writer[trial] = self._open(trial.trial_id, self._values(trial))
        self._trial_result[trial] = {}

    def log_trial_result(self, iteration, trial, result):
        if TIME_ATTR not in result:
            return
        if PACK_KEY in trial.config:
            self._log_points(trial, result)
            return
        if trial not in self._trial_writer:
            self.log_trial_start(trial)
        scalars = self._add(trial.trial_id, self._trial_writer[trial], int(result[TIME_ATTR]), scalar_metrics(result))
        self._trial_result[trial].update(scalars)

    def _add(self, run_id: str, writer, step: int, scalars: dict) -> dict:
        """Write a run's scalars at `step` once (see the class doc); return what was written."""
        last, names = self._written.get(run_id, (-1, set()))
        if step < last:
            return {}  # a retry repeating steps it had already reported
        if step == last:
            scalars = {k: v for k, v in scalars.items() if k not in names}
        if scalars:  # one event holding every scalar of the step (not one event, and fsync, per scalar)
            values = [tb_scalar(key, value).value[0] for key, value in scalars.items()]
            writer.file_writer.add_summary(Summary(value=values), global_step=step)
        self._written[run_id] = (step, (names if step == last else set()) | set(scalars))
        return scalars

    def _log_points(self, trial, result: dict) -> None:
        """A pack's report: each live point's record into its own run, then the outcomes of points
        that stopped (DONE_KEY) or closed (OUTCOMES_KEY) at their last step."""
        pack = trial.config[PACK_KEY]
        runs = self._points.setdefault(trial.trial_id, {})

        def run(j: int) -> list:
            point_id = point_trial_id(trial.trial_id, j)
            if point_id not in runs:
                runs[point_id] = [self._open(point_id, self._point_values(pack[j])), pack[j], {}]
            return runs[point_id]

        for record in json.loads(result.get(POINTS_KEY) or "[]"):
            j = int(record["member"])
            writer, _, final = run(j)
            final.update(self._add(point_trial_id(trial.trial_id, j), writer, int(record[TIME_ATTR]),
                                   scalar_metrics({k: v for k, v in record.items() if k != "member"})))
        ended = [dict(d) for d in json.loads(result.get(DONE_KEY) or "[]")]
        ended += [{"member": j, **o} for j, o in enumerate(json.loads(result.get(OUTCOMES_KEY) or "[]"))]
        for outcome in ended:
            j = int(outcome["member"])
            point_id = point_trial_id(trial.trial_id, j)
            stt = outcome.get("steps_to_target")
            if point_id in self._written and isinstance(stt, (int, float)):
                writer, _, final = run(j)
                final.update(self._add(point_id, writer, self._written[point_id][0], {"steps_to_target": float(stt)}))

    def _point_values(self, point: dict) -> dict:
        return {**point, **searched_values(point, {k: spec for k, spec in self.space.items() if spec})}

    def _close_points(self, trial_id: str) -> None:
        for writer, point, final in self._points.pop(trial_id, {}).values():
            self._hparams(writer, self._point_values(point), final)
            writer.close()

    def log_trial_end(self, trial, failed: bool = False):
        if PACK_KEY in trial.config:
            self._close_points(trial.trial_id)
            return
        if trial not in self._trial_writer:
            return
        self._hparams(self._trial_writer[trial], self._values(trial), self._trial_result.get(trial, {}))
        self._trial_writer.pop(trial).close()
        self._trial_result.pop(trial, None)

    def _hparams(self, writer, values: dict, final: dict) -> None:
        """The run's hyperparameters and HPARAM_METRICS in TensorBoard's HPARAMS tab."""
        metrics = {k: final[k] for k in HPARAM_METRICS if k in final}
        params = {k: v for k, v in values.items()
                  if isinstance(v, (str, bool, int, float)) and not k.startswith("__")}  # not Tune's __trial_index__
        if not (metrics and params):
            return
        from tensorboardX.summary import hparams  # deferred: only at a trial's end

        try:
            for summary in hparams(hparam_dict=params, metric_dict=metrics):
                writer.file_writer.add_summary(summary)
        except Exception:  # noqa: BLE001 - hparams are a convenience; the scalars are written
            pass

    def _values(self, trial) -> dict:
        """The trial's config with its searched values as its training config holds them."""
        config = dict(trial.config)
        return {**config, **searched_values(config, {k: spec for k, spec in self.space.items() if spec})}

    def __getstate__(self):  # pickled into tuner.pkl: no open writers
        return {"root": self.root, "space": self.space}

    def __setstate__(self, state):
        # A folder from before "space" was kept has only the keys: its values are shown as sampled.
        self.__init__(state["root"].parent, state.get("space") or dict.fromkeys(state.get("keys", ())))


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
