"""analysis.seeds: every seed of a config is counted, per population trial and per seed trial."""

from __future__ import annotations

import json

import pandas as pd

from analysis.seeds import add_seed_columns, config_table, seed_units


def population_summary() -> pd.DataFrame:
    """Two population trials; trial a is configs/seeds_sweep.yaml's {0: 175, 1000: never, 2000: 236}."""
    return pd.DataFrame({
        "trial_id": ["a", "b"], "optim.lr": [3e-3, 1e-3], "seed": [0, 0],
        "generalized_step": pd.array([236, None], dtype="Int64"), "last_step": [600, 400],
        "member_steps_to_target": [json.dumps({"0": 175, "1000": None, "2000": 236}),
                                   json.dumps({"0": None, "1000": 350, "2000": None})]})


def test_population_members_are_units_and_never_is_censored():
    units = seed_units(population_summary(), ["optim.lr"]).set_index(["trial_id", "seed"])
    assert len(units) == 6
    assert units.loc[("a", "1000"), "time"] == 600 and not units.loc[("a", "1000"), "generalised"]
    assert units.loc[("a", "0"), "step"] == 175


def test_best_config_reads_with_every_seed_not_just_236():
    s = add_seed_columns(population_summary(), ["optim.lr"]).set_index("trial_id")
    assert s.loc["a", "seed_steps"] == "0: 175, 1000: never, 2000: 236"
    assert s.loc["a", "seeds_grokked"] == "2/3"
    table = config_table(population_summary(), ["optim.lr"])
    best = table.iloc[0]
    assert best["config"] == "optim.lr=0.003" and best["seeds grokked"] == "2/3"
    assert best["median over seeds (KM)"] == "236" and best["spread"] == "175–236, 1 never"
    assert table.iloc[1]["median over seeds (KM)"] == "not reached"


def test_separate_seed_trials_group_by_config():
    frame = pd.DataFrame({"trial_id": list("abcd"), "optim.lr": [1e-3, 1e-3, 1e-3, 1e-2],
                          "seed": [0, 1, 2, 0], "generalized_step": pd.array([300, None, 500, 100], dtype="Int64"),
                          "last_step": [1000] * 4})
    s = add_seed_columns(frame, ["optim.lr"]).set_index("trial_id")
    assert s.loc["b", "seed_steps"] == "0: 300, 1: never, 2: 500" and s.loc["b", "seeds_grokked"] == "2/3"
    assert pd.isna(s.loc["d", "seed_steps"])  # one seed only: nothing to spread
    assert config_table(frame, ["optim.lr"])["config"].tolist() == ["optim.lr=0.01", "optim.lr=0.001"]


def test_seeds_of_separate_runs_in_a_summary(tmp_path):
    from analysis.load import load
    from analysis.summary import trial_summary
    from tests.analysis.synth import write_run

    write_run(tmp_path / "a", "comprehension", seed=0, optim__lr=1e-3)
    write_run(tmp_path / "b", "memorization", seed=1, optim__lr=1e-3)
    write_run(tmp_path / "c", "comprehension", seed=0, optim__lr=3e-3)
    res = load(tmp_path)
    s = trial_summary(res).set_index("trial_id")
    assert res.searched == ["optim.lr"]
    assert s.loc["a", "seed_steps"] == f"0: {s.loc['a', 'generalized_step']}, 1: never"
    assert s.loc["b", "seeds_grokked"] == "1/2" and pd.isna(s.loc["c", "seed_steps"])


def population_curve(with_members: bool = True) -> pd.DataFrame:
    """A population trial pruned before its closing report: seed 0 generalises at step 40,
    seed 1000 never, seed 2000 at step 60 (three evals in a row at the threshold each)."""
    steps = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    s0 = [0.1, 0.2, 0.3, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    s1 = [0.1] * 9
    s2 = [0.1, 0.1, 0.2, 0.3, 1.0, 0.5, 1.0, 1.0, 1.0]
    frame = pd.DataFrame({"trial_id": "p", "step": steps, "train_acc": 1.0,
                          "val_acc": [sorted(v)[1] for v in zip(s0, s1, s2)]})
    if with_members:
        frame["member_seeds"] = json.dumps([0, 1000, 2000])
        frame["member_val_acc"] = [list(v) for v in zip(s0, s1, s2)]
    return frame


def test_population_members_come_from_their_own_curves_by_the_event_rule():
    from analysis.summary import member_curves, member_events

    g = population_curve()
    events = json.loads(member_events(g, threshold=0.99, patience=3)["member_generalized"])
    assert events == {"0": 40, "1000": None, "2000": 70}  # 2000's spike at 50 is no event
    curves = member_curves(g)
    assert list(curves) == ["0", "1000", "2000"] and curves["2000"]["val_acc"].iloc[4] == 1.0
    assert member_events(population_curve(with_members=False), threshold=0.99, patience=3) == {}
    summary = pd.DataFrame({"trial_id": ["p"], "optim.lr": [1e-3], "seed": [0], "last_step": [90],
                            "generalized_step": pd.array([None], dtype="Int64"),
                            "member_generalized": [json.dumps(events)]})
    assert add_seed_columns(summary, ["optim.lr"]).loc[0, "seed_steps"] == "0: 40, 1000: never, 2000: 70"


def test_a_pruned_seed_reads_pruned_at_its_step_not_never():
    frame = pd.DataFrame({"trial_id": list("abc"), "optim.lr": [1e-3] * 3, "seed": [0, 1, 2],
                          "generalized_step": pd.array([300, None, None], dtype="Int64"),
                          "last_step": [1000, 1000, 250], "outcome": ["grokked", "budget", "pruned"]})
    s = add_seed_columns(frame, ["optim.lr"]).set_index("trial_id")
    assert s.loc["a", "seed_steps"] == "0: 300, 1: never, 2: pruned at 250"
    units = seed_units(frame, ["optim.lr"]).set_index("seed")
    assert units.loc["2", "time"] == 250 and not units.loc["2", "generalised"]  # censored where it stopped
