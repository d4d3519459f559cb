"""analysis.speed_figures and the figure helpers the report's speed sections use."""

from __future__ import annotations

import pandas as pd

from analysis.figures import axis_values
from analysis.speed_figures import importance_bars, km_curves, steps_by_param
from analysis.survival import kaplan_meier

PNG = b"\x89PNG\r\n\x1a\n"


def test_choice_parameters_are_categories_on_an_axis():
    xs, labels, log = axis_values(pd.Series([0, 512, 64, 0]), log=True, categorical=True)
    assert labels == ["0", "64", "512"] and xs.tolist() == [0, 2, 1, 0] and log is False
    xs, labels, log = axis_values(pd.Series([1e-3, 1e-2]), log=True)
    assert labels is None and log is True


def test_speed_figures_render():
    curves = {"a": kaplan_meier([100, 200, 900], [True, True, False]),
              "b": kaplan_meier([900, 900], [False, False])}
    assert km_curves(curves, "by x").startswith(PNG)
    assert importance_bars({"x": 0.7, "y": 0.3}, "fANOVA", {"x": (0.5, 0.9), "y": (0.1, 0.4)}).startswith(PNG)
    summary = pd.DataFrame({"train.batch_size": [0, 64, 0], "generalized_step": pd.array([100, None, None], dtype="Int64"),
                            "last_step": [500, 200, 500], "outcome": ["grokked", "pruned", "budget"]})
    assert steps_by_param(summary, ["train.batch_size"], {"train.batch_size": "category"}).startswith(PNG)
