"""Ray Tune's OptunaSearch on groktune's clock and statuses.

Ray's OptunaSearch (ray/tune/search/optuna/optuna_search.py, ray 2.60) reports intermediate
values at Tune's `training_iteration` (1, 2, 3, ... one per report), and it tells the study
COMPLETE for every trial that ends with a result, so a trial ASHA stopped at its first rung
looks, in the study and in optuna-dashboard, like a finished one. StepOptunaSearch changes two
methods and nothing else:

- on_trial_result: the intermediate value goes in at the optimizer step (result["step"], the
  time every scheduler uses, orchestrator.search.algos.TIME_ATTR). A step already reported is
  skipped: the adapter's closing report repeats the last eval's step, and a trial retried from
  a checkpoint repeats the steps after it; Optuna would warn on each.
- on_trial_complete: a trial whose last result is its own (it carries `step`) and that
  orchestrator.sweep.ledger.final_status calls "pruned" is told PRUNED. That is the signal the
  ledger already trusts: the adapter's closing report carries the trainer's `status`, so a
  result without one (or with early_stopped) is a trial that ended before training did —
  stopped by the scheduler, whose STOP decision hands on_trial_complete the result it stopped
  on (never on_trial_result). That last result is reported first, so the pruned trial's value
  in the study (Optuna takes the last intermediate one) is the score it was pruned with.
  Everything else keeps Ray's rule: COMPLETE with the metric, FAIL for an error, PRUNED for a
  trial removed before it reported. Under Ray's Repeater (search.seeds > 1) the searcher hears
  only a group mean (no `step`), which stays COMPLETE.

Multi-objective studies (a list metric) take no intermediate values in Optuna; Ray's behaviour
is kept for them, apart from PRUNED for a trial stopped before its end.
"""

from __future__ import annotations

import logging
import math

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from orchestrator.sweep.ledger import final_status
from orchestrator.search.algos import TIME_ATTR

logger = logging.getLogger(__name__)


def stopped_early(result: dict | None, error: bool) -> bool:
    """Whether a trial's last result says the scheduler stopped it before its closing report.

    Args:
        result: the result on_trial_complete received (None when the trial never reported).
        error: Tune gave up on the trial.
    Returns:
        True for a trial's own result (it has TIME_ATTR) whose final status is "pruned".
    """
    return bool(result) and TIME_ATTR in result and final_status(result, error) == "pruned"


class StepOptunaSearch(OptunaSearch):
    """OptunaSearch with intermediate values at the optimizer step and PRUNED for stopped trials."""

    def _reported(self) -> dict:
        # In __dict__, so Tune's searcher snapshot (OptunaSearch.save pickles __dict__) keeps it.
        return self.__dict__.setdefault("_last_step", {})

    def _report(self, trial_id: str, result: dict) -> None:
        """Report result[metric] at result[TIME_ATTR] unless that step (or a later one) was reported."""
        step, value = result.get(TIME_ATTR), result.get(self.metric)
        if step is None or value is None or not math.isfinite(float(value)):
            return
        step = int(step)
        last = self._reported()
        if step <= last.get(trial_id, -1):
            return
        self._ot_trials[trial_id].report(float(value), step)
        last[trial_id] = step

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if isinstance(self.metric, list) or trial_id in self._completed_trials:
            return super().on_trial_result(trial_id, result)
        self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or not stopped_early(result, error):
            return super().on_trial_complete(trial_id, result=result, error=error)
        if not isinstance(self.metric, list):
            self._report(trial_id, result)
        try:
            self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
        except Exception as exc:  # noqa: BLE001 - as Ray's own tell: a bad value must not end the sweep
            logger.warning(exc)
        self._completed_trials.add(trial_id)


__all__ = ["StepOptunaSearch", "stopped_early"]
