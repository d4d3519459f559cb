"""MLflow and Weights & Biases for a sweep (`search.tracking: [mlflow, wandb]`), on the optimizer step.

Ray's own MLflowLoggerCallback and WandbLoggerCallback log every result at Tune's
`training_iteration` (one per report), which is not a step of training: with a log-spaced eval
schedule iteration 10 can be step 100 in one trial and step 3,000 in another. groktune's sweep
clock is the optimizer step (`result["step"]`), as TensorBoard's, ASHA's and Optuna's are, so
these subclasses log at that step instead, one run per trial, only finite numeric metrics (no
Tune bookkeeping), each step once: the adapter's closing report repeats the last eval's step
(only its new keys, such as steps_to_target, are logged) and a trial retried from a checkpoint
repeats the steps after it (skipped).

Where the records go is the libraries' own business, set by their environment variables:
MLFLOW_TRACKING_URI (e.g. `file:///abs/mlruns`, or a tracking server), WANDB_MODE (`offline`
writes runs to disk; sync them later with `wandb sync`), WANDB_DIR, WANDB_PROJECT, WANDB_API_KEY.
The MLflow experiment and the W&B project are named after the sweep. The W&B logger runs in a
small Ray actor per trial (Ray's design); the driver's WANDB_* variables are handed to it.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import ray
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback, _WandbLoggingActor

from groktune.errors import UserError
from groktune.layout import TIME_ATTR
from orchestrator.sweep.ledger import scalar_metrics

TRACKERS = ("mlflow", "wandb")


def step_metrics(result: dict) -> tuple[int | None, dict[str, float]]:
    """The optimizer step of a Tune result and its finite numeric metrics (no bookkeeping, no step).

    Args:
        result: one Tune result (a trial's eval record plus Tune's keys).
    Returns:
        (step or None when the result has none, {metric: value}).
    """
    step = result.get(TIME_ATTR)
    out = scalar_metrics(result)
    return (int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None), out


class StepOnce:
    """Per trial, which metrics were logged at the last step: a step is logged once, a repeat of
    the last step adds only its new keys, an earlier step (a retry replaying) is skipped."""

    def __init__(self):
        self.last: dict[str, tuple[int, set[str]]] = {}

    def new(self, trial_id: str, step: int, metrics: dict[str, float]) -> dict[str, float]:
        last_step, keys = self.last.get(trial_id, (-1, set()))
        if step < last_step:
            return {}
        if step > last_step:
            keys = set()
        fresh = {k: v for k, v in metrics.items() if k not in keys}
        self.last[trial_id] = (step, keys | set(fresh))
        return fresh


class StepMLflow(MLflowLoggerCallback):
    """Ray's MLflow logger, one run per trial, metrics at the optimizer step."""

    def setup(self, *args, **kwargs):
        super().setup(*args, **kwargs)
        self._once = StepOnce()

    def log_trial_result(self, iteration: int, trial, result: dict):
        step, metrics = step_metrics(result)
        if step is None:
            return
        fresh = self._once.new(trial.trial_id, step, metrics)
        if fresh:
            self.mlflow_util.log_metrics(run_id=self._trial_runs[trial], metrics_to_log=fresh, step=step)


class _LogAtStep:
    """The wandb module as Ray's logging actor sees it, except that `log` logs at the optimizer
    step of the record (and each step once) instead of the step Ray passes (training_iteration)."""

    def __init__(self, wandb):
        self._wandb = wandb
        self._once = StepOnce()

    def __getattr__(self, name):
        return getattr(self._wandb, name)

    def log(self, data: dict, step=None, **kw):
        at, metrics = step_metrics(data)
        fresh = self._once.new("run", at, metrics) if at is not None else {}
        return self._wandb.log(fresh, step=at, **kw) if fresh else None


class StepWandbActor(_WandbLoggingActor):
    """Ray's per-trial W&B logging actor, logging at the optimizer step Tune's result carries."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wandb = _LogAtStep(self._wandb)


class StepWandb(WandbLoggerCallback):
    """Ray's W&B logger, one run per trial, metrics at the optimizer step; the actor gets the
    driver's WANDB_* environment (mode, dir, project, key) so offline runs land where asked."""

    _logger_actor_cls = StepWandbActor

    def _start_logging_actor(self, trial, exclude_results, **wandb_init_kwargs):
        if not self._remote_logger_class:
            from ray.air.util.node import _force_on_current_node  # deferred: Ray's private helper, needed only here

            env = {k: v for k, v in os.environ.items() if k.startswith("WANDB_")}
            self._remote_logger_class = ray.remote(
                num_cpus=0, **_force_on_current_node(), runtime_env={"env_vars": env},
                max_restarts=-1, max_task_retries=-1)(self._logger_actor_cls)
        super()._start_logging_actor(trial, exclude_results, **wandb_init_kwargs)


def check_mlflow_store() -> None:
    """Open MLflow's tracking store as the callback will (MLFLOW_TRACKING_URI), so a store MLflow
    refuses (an unknown scheme, a file store MLflow 3 keeps only on request) is one line naming
    the variable before any trial trains, not a traceback from inside Tune. A server is not
    contacted here.

    Raises:
        UserError: the store cannot be opened.
    """
    from mlflow.tracking import MlflowClient  # deferred: optional package, imported only when asked for

    try:
        MlflowClient()
    except Exception as err:  # noqa: BLE001 - mlflow raises several kinds; each becomes one line
        uri = os.environ.get("MLFLOW_TRACKING_URI", "(unset: MLflow's default)")
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"search.tracking mlflow: MLFLOW_TRACKING_URI={uri}: {first}") from None


def tracking_callbacks(names: list[str], experiment_name: str) -> list:
    """StepMLflow / StepWandb callbacks for the names asked for and installed; a tracker asked
    for but not installed is skipped with one warning line.

    Raises:
        UserError: MLflow's tracking store cannot be opened (check_mlflow_store).
    """
    callbacks = []
    for name in names:
        if importlib.util.find_spec(name) is None:
            print(f"groktune: warning: search.tracking {name}: package not installed; skipped", file=sys.stderr)
            continue
        if name == "mlflow":
            check_mlflow_store()
            callbacks.append(StepMLflow(experiment_name=experiment_name))
        elif name == "wandb":
            callbacks.append(StepWandb(project=os.environ.get("WANDB_PROJECT") or experiment_name))
    return callbacks


__all__ = ["TRACKERS", "StepMLflow", "StepOnce", "StepWandb", "StepWandbActor", "step_metrics", "tracking_callbacks"]
