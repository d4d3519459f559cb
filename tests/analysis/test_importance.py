"""analysis.importance: Optuna's evaluators on an in-memory study replayed from the trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.importance import grok_objective, param_importances
from groktune.space import parse_dist, parse_space


def trials(n=30, seed=0):
    """Steps to generalise depend on lr only; weight decay and the op are noise."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -2, n)
    steps = np.round(10 ** (6 + np.log10(lr)) * rng.uniform(0.9, 1.1, n))
    gen = pd.array(np.where(lr < 3e-4, np.nan, steps), dtype="Int64")
    return pd.DataFrame({"trial_id": [f"t{i}" for i in range(n)], "phase": "grokking",
                         "optim.lr": lr, "optim.weight_decay": rng.uniform(0, 2, n),
                         "task.op": rng.choice(["x+y", "x*y"], n),
                         "generalized_step": gen, "last_step": 10_000})


def test_the_parameter_that_matters_comes_first():
    imp = param_importances(trials(), ["optim.lr", "optim.weight_decay", "task.op"],
                            parse_space({"optim.lr": {"loguniform": [1e-4, 1e-2]}}))
    assert list(imp.values)[0] == "optim.lr"
    assert imp.values["optim.lr"] > 0.5
    assert sum(imp.values.values()) == pytest.approx(1.0)
    assert imp.evaluator in ("fANOVA", "PED-ANOVA") and imp.evaluator in imp.note


def test_too_few_trials_give_a_note_not_an_error():
    imp = param_importances(trials(5), ["optim.lr"], {})
    assert imp.values == {} and "Too few trials" in imp.note and "only 5" in imp.note
    imp = param_importances(trials(), [], {})
    assert imp.values == {} and "no hyperparameter was searched" in imp.note


def test_constant_outcome_or_parameters_give_a_note():
    frame = trials()
    frame["generalized_step"] = pd.array([None] * len(frame), dtype="Int64")
    assert "did not vary" in param_importances(frame, ["optim.lr"], {}).note
    frame = trials().assign(**{"optim.lr": 1e-3})
    assert "did not vary" in param_importances(frame, ["optim.lr"], {}).note


def test_objective_ranks_never_generalised_last():
    frame = pd.DataFrame({"generalized_step": pd.array([100, None, 1000], dtype="Int64"),
                          "last_step": [100, 5000, 1000]})
    obj = grok_objective(frame)
    assert obj.tolist() == pytest.approx([2.0, np.log10(10_000), 3.0])


def test_optuna_logging_level_is_restored():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO)
    param_importances(trials(), ["optim.lr"], {})
    assert optuna.logging.get_verbosity() == optuna.logging.INFO


def test_degenerate_case_is_undetermined_never_equal_numbers():
    """12 of 16 trials never generalised (PED-ANOVA once printed 0.25 for all four)."""
    frame = trials(16, seed=3)
    gen = [None] * 12 + [400, 900, 2000, 5000]
    frame["generalized_step"] = pd.array(gen, dtype="Int64")
    frame["model.d_model"] = np.random.default_rng(1).choice([32, 64], 16)
    keys = ["optim.lr", "optim.weight_decay", "task.op", "model.d_model"]
    imp = param_importances(frame, keys, {})
    assert imp.values == {} and imp.spread == {}
    assert "12 of 16 trials never generalised" in imp.undetermined
    assert set(imp.parameters) == set(keys)


def test_bootstrap_interval_brackets_each_importance():
    imp = param_importances(trials(24), ["optim.lr", "optim.weight_decay"],
                            parse_space({"optim.lr": {"loguniform": [1e-4, 1e-2]}}))
    assert imp.undetermined == "" and set(imp.spread) == set(imp.values)
    lo, hi = imp.spread["optim.lr"]
    assert 0.0 <= lo <= hi <= 1.0 and hi > 0.5
    assert imp.spread["optim.weight_decay"][0] < imp.spread["optim.lr"][0]


def test_choice_parameters_are_categories():
    from optuna.distributions import CategoricalDistribution

    from analysis.importance import _distribution

    dist, column = _distribution(pd.Series([0, 64, 128, 0]), parse_dist("train.batch_size", {"choice": [0, 64, 128]}))
    assert isinstance(dist, CategoricalDistribution) and set(dist.choices) == {"0", "64", "128"}


def test_evaluator_warnings_are_kept_not_silenced(monkeypatch):
    import warnings

    import optuna

    real = optuna.importance.get_param_importances

    def warns(*args, **kwargs):
        warnings.warn("quantiles selected the same trials", UserWarning)
        return real(*args, **kwargs)

    # The evaluator itself runs for real; only a warning is added in front of it.
    monkeypatch.setattr(optuna.importance, "get_param_importances", warns)
    imp = param_importances(trials(), ["optim.lr"], {}, bootstrap=False)
    assert "quantiles selected the same trials" in imp.warnings
