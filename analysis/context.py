"""What every report section builder reads: the results, the per-trial summary and the options.

The builders live in analysis.sections, analysis.sections_speed, analysis.pareto and
analysis.probes; each takes a Context and returns a Section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from analysis.grokking import detect_grokking
from analysis.importance import Importances
from analysis.summary import log_scaled, member_curves

if TYPE_CHECKING:
    from analysis.load import Results


@dataclass
class Context:
    """What every section builder reads: the results, the per-trial summary and the options."""

    results: Results
    summary: pd.DataFrame
    threshold: float
    patience: int
    delay_boundary: float
    pair: tuple[str, str] | None
    importances: Importances
    size_key: str = "model.d_model"
    max_tasks: int = 6
    tasks: list[str] = field(default_factory=list)

    def logs(self) -> dict[str, bool | str]:
        """Searched key -> its axis: True for a log axis (from the search space, else the
        values), "category" for a choice parameter (e.g. batch_size with 0 = full batch)."""
        params = self.results.params
        return {k: "category" if k in params and params[k].kind == "choice"
                else log_scaled(self.summary[k], params.get(k))
                for k in self.results.searched if k in self.summary}

    def events(self, trial_id: str):
        """The trial's GrokEvents under the report's rule (for its collapses)."""
        c = self.curve(trial_id)
        return detect_grokking(c["step"], c["train_acc"], c["val_acc"], threshold=self.threshold,
                               patience=self.patience, delay_boundary=self.delay_boundary)

    def seed_siblings(self, trial_id: str) -> list[pd.DataFrame]:
        """Curves of the other seeds of the same config: a population trial's member curves,
        or the other trials of the same searched values (search.seeds)."""
        members = member_curves(self.curve(trial_id))
        if members:
            return list(members.values())
        keys = [k for k in self.results.searched if k in self.summary and k != "seed"]
        if not keys or "seed" not in self.summary:
            return []
        row = self.row(trial_id)
        same = (self.summary[keys].astype(str) == row[keys].astype(str)).all(axis=1)
        others = self.summary.loc[same & (self.summary["trial_id"] != trial_id), "trial_id"]
        return [self.curve(t) for t in others if len(self.curve(t))]

    def curve(self, trial_id: str) -> pd.DataFrame:
        curves = self.results.curves
        return curves[curves["trial_id"] == trial_id]

    def row(self, trial_id: str) -> pd.Series:
        return self.summary[self.summary["trial_id"] == trial_id].iloc[0]


__all__ = ["Context"]
