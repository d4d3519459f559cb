"""TensorBoard for a sweep: StepTensorBoard replaces Ray's TBX logger (a subclass, so Tune does
not add its own): every trial's scalars at the optimizer step (result["step"], not Tune's
training_iteration), one run per trial named by its hyperparameters
(`trial_1a2b3_00004_lr=0.003,weight_decay=1`), all in SWEEP/tensorboard/ (groktune.layout
TENSORBOARD) instead of a temporary Ray folder, so `tensorboard --logdir SWEEP/tensorboard`
follows a sweep live. A pack of points (search.pack) gets one run per point, none of its own.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ray.tune.logger import TBXLoggerCallback
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.summary import scalar as tb_scalar

from groktune.layout import TENSORBOARD, TIME_ATTR
from groktune.space import Dist, parse_space
from orchestrator.config.trial import searched_values
from orchestrator.sweep.ledger import scalar_metrics
from orchestrator.sweep.packing import DONE_KEY, OUTCOMES_KEY, PACK_KEY, POINT_KEY, POINTS_KEY, point_trial_id

# TensorBoard event files are flushed this often (and when a trial ends), not after every
# report: a flush is an fsync, and per report it was the driver's largest cost in a sweep of
# many small trials (benchmarks/README.md, "Sweep throughput").
FLUSH_S = 5
RUN_NAME_MAX = 120  # characters of a TensorBoard run (folder) name
# Scalars a trial's hparams entry shows (TensorBoard's HPARAMS tab), when the trial reported them.
HPARAM_METRICS = ("grok_score", "val_acc", "steps_to_target")


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
        params: the parsed space (SearchConfig.params), for run names and hparams (with each
            sampled value as the trial's config holds it: orchestrator.config.trial.searched_values).
        keys: the searched keys, in order (default: those of `params`).
    """

    def __init__(self, experiment_dir: str | Path, params: dict[str, Dist], keys: list | None = None):
        super().__init__()  # tensorboardX's SummaryWriter
        self.root = Path(experiment_dir) / TENSORBOARD
        self.params = dict(params)
        self.keys = list(params if keys is None else keys)
        self._written: dict[str, tuple[int, set]] = {}  # trial id -> (last step, its scalar names)
        self._starts: dict[str, int] = {}  # trial id -> writers opened for it
        self._points: dict[str, dict] = {}  # pack trial id -> {point id: [writer, point, last scalars]}

    def _open(self, run_id: str, values: dict):
        folder = self.root / run_name(run_id, values, self.keys)
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
            entry = run(j)
            if isinstance(record.get(POINT_KEY), dict):
                entry[1] = record[POINT_KEY]  # PBT moved it: its HPARAMS are its latest point's
            writer, _, final = entry
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
        return {**point, **searched_values(point, self.params)}

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
        return {**config, **searched_values(config, self.params)}

    def __getstate__(self):  # pickled into tuner.pkl: no open writers
        return {"root": self.root, "params": self.params, "keys": self.keys}

    def __setstate__(self, state):
        # An older tuner.pkl holds the space as written ("space", parsed here with the one
        # parser) or only the keys (its values are then shown as sampled).
        if "params" in state:
            self.__init__(state["root"].parent, state["params"], state["keys"])
            return
        space = state.get("space") or {}
        self.__init__(state["root"].parent, parse_space(space), list(space) or list(state.get("keys", ())))


__all__ = ["FLUSH_S", "HPARAM_METRICS", "RUN_NAME_MAX", "StepTensorBoard", "run_name"]
