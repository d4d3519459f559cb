"""analysis.speed_figures and the figure helpers the report's speed sections use."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from analysis import figures
from analysis.figures import axis_values, step_ticks
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


def test_step_ticks_are_round_step_counts_inside_the_range():
    assert step_ticks(100, 5000) == [100, 200, 500, 1000, 2000, 5000]
    assert step_ticks(30, 30_000) == [30, 100, 300, 1000, 3000, 10_000, 30_000]  # 1-2-5 would be 10 ticks
    assert step_ticks(215, 380) == [220, 290, 380]  # no round value inside: three, log-spaced
    for lo, hi in [(1, 10), (90, 120), (7, 2e6), (50, 51)]:
        ticks = step_ticks(lo, hi)
        assert 2 <= len(ticks) <= 7 and ticks == sorted(ticks) and lo <= ticks[0] and ticks[-1] <= hi


def test_steps_map_colour_bar_is_log_normed_and_labelled_in_steps(monkeypatch):
    drawn = []
    monkeypatch.setattr(figures, "to_png", lambda fig: drawn.append(fig) or PNG)
    summary = pd.DataFrame({"optim.lr": [1e-3, 3e-3, 1e-2, 3e-2, 1e-2],
                            "optim.weight_decay": [0.1, 1.0, 0.3, 3.0, 1.0],
                            "generalized_step": [120.0, 450.0, 2600.0, 9000.0, np.nan],
                            "outcome": ["grokked"] * 4 + ["budget"]})
    figures.steps_map(summary, "optim.lr", "optim.weight_decay", {"optim.lr": True})
    (fig,) = drawn
    scatter = next(c for c in fig.axes[0].collections if c.get_array() is not None and len(c.get_array()))
    assert isinstance(scatter.norm, LogNorm) and sorted(scatter.get_array()) == [120, 450, 2600, 9000]
    bar = fig.axes[1]  # the colour bar's axes
    assert bar.get_yscale() == "log" and "log10" not in bar.get_ylabel()
    labels = [t.get_text() for t in bar.get_yticklabels() if t.get_text()]
    assert labels == ["200", "500", "1,000", "2,000", "5,000"], labels
