"""The verification stage (orchestrator.sweep.verify): a sweep's top configs on fresh seeds.

Fast tier: which configs are picked, which seeds are fresh, when a result holds, the headline.
Slow tier: a real small sweep through the CLI (local Ray, tiny models) writes verification.csv
and verified.csv with fresh seeds and prints the verified result.
"""

import json

import numpy as np
import pandas as pd
import pytest

from analysis.headline import verified_sentence
from orchestrator.config.experiment import load_config
from orchestrator.sweep.verify import fresh_seeds, summarise, top_configs, verify_counts
from tests.orchestrator.test_cmd_sweep import groktune, write_config

TRIALS = pd.DataFrame({
    "trial_id": list("abcdefgh"),
    "optim.lr": [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.01, 0.01],
    "seed": [0, 1, 2, 0, 1, 2, 0, 1],
    "steps_to_target": [90, 100, np.nan, 80, 110, 90, np.nan, np.nan],
    "final_grok_score": [90, 100, 450, 80, 110, 90, 500, 480],
})


def test_top_configs_rank_by_the_median_over_the_search_seeds():
    top = top_configs(TRIALS, ["optim.lr"], 3)
    assert top["optim.lr"].tolist() == [0.05, 0.1, 0.01]  # 90 < 100 < never (then best score)
    assert top["search_median"].tolist()[:2] == [90.0, 100.0] and np.isnan(top["search_median"].iloc[2])
    assert top["rank"].tolist() == [1, 2, 3] and top["search_grokked"].tolist() == [3, 2, 0]


def test_fresh_seeds_are_never_seeds_the_search_used():
    cfg = load_config("configs/fastest_modmul97_methods.yaml")
    assert fresh_seeds(cfg.search, 3) == [3, 4, 5]
    pop = load_config("configs/fastest_modmul97_methods.yaml", ["search.seeds=[7]", "search.seeds_per_trial=3",
                                                       "optim.name=adamw", "search.space={optim.lr: {loguniform: [0.01, 0.1]}}"])
    assert fresh_seeds(pop.search, 2) == [2008, 2009]  # members 7, 1007, 2007
    assert verify_counts(cfg.search) == (3, 3)  # on by default: the objective is speed
    multi = load_config("configs/fastest_modmul97_methods.yaml", ["search.metric=[grok_score, cpu_time_s]", "search.mode=[min, min]",
                                                         "search.scheduler=fifo", "search.seeds=[0]"])
    assert verify_counts(multi.search) == (0, 0)


def test_a_result_holds_only_when_every_fresh_seed_repeats_it():
    best = top_configs(TRIALS, ["optim.lr"], 2)
    runs = pd.DataFrame({"rank": [1, 1, 1, 2, 2, 2], "seed": [3, 4, 5] * 2,
                         "steps_to_target": [100, 110, 120, 90, np.nan, 100]})
    table = summarise(best, runs, ["optim.lr"], grid=10)
    first, second = table.iloc[0], table.iloc[1]
    assert first["verified_median"] == 110 and first["holds"]  # 110 <= ceil(90 * 1.25 / 10) * 10 = 120
    assert (first["verified_min"], first["verified_max"]) == (100, 120)
    assert not second["holds"] and second["verified_grokked"] == "2/3"  # one fresh seed never got there
    slow = summarise(best, runs.assign(steps_to_target=[150, 160, 170, 90, 100, 100]), ["optim.lr"], grid=10)
    assert not slow.iloc[0]["holds"] and slow.iloc[1]["holds"]
    text = verified_sentence(slow)
    assert text.startswith("Search #1") and "does not repeat" in text and "median of 100" in text


@pytest.mark.slow
def test_a_small_real_sweep_verifies_its_winners_on_fresh_seeds(tmp_path):
    cfg = write_config(tmp_path, search={"space": {"optim.lr": {"loguniform": [2e-3, 2e-2]}}, "num_samples": 3,
                                         "scheduler": "fifo", "seeds": [0, 1], "verify": {"top": 2, "seeds": 2}})
    out = groktune("sweep", cfg, "--storage", tmp_path / "res", "--quiet")
    assert out.returncode == 0, out.stderr[-2000:]
    folder = tmp_path / "res" / "clitest"
    runs = pd.read_csv(folder / "verification.csv")
    table = pd.read_csv(folder / "verified.csv")
    assert len(runs) == 4 and set(runs["seed"]) == {2, 3}  # fresh: the search used 0 and 1
    assert table["rank"].tolist() == [1, 2] and set(runs["rank"]) == {1, 2}
    trials = pd.read_parquet(folder / "trials.parquet")
    assert set(trials["seed"]) == {0, 1}
    assert "on fresh seeds" in out.stdout
    for _, row in table.iterrows():  # the verified numbers are the runs' own
        mine = runs[runs["rank"] == row["rank"]]["steps_to_target"].astype(float).fillna(np.inf)
        med = float(np.median(mine))
        assert (np.isnan(row["verified_median"]) and not np.isfinite(med)) or row["verified_median"] == med
    json.dumps(table.to_dict("records"), default=str)
