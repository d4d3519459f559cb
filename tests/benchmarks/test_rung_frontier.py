"""benchmarks/rung_frontier.py on the committed pools of real curves: the sweep's rung score
through Ray's own ASHA, the oracles that bound any rung score, and the compute bound."""

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "rung_frontier.py"
spec = importlib.util.spec_from_file_location("rung_frontier", PATH)
rf = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = rf
spec.loader.exec_module(rf)

POOL = rf.POOLS / "plateau-1.parquet"  # held out when the score's terms were chosen


def _curve(config, accs, loss=5.0):
    return [{"config": config, "step": 100 * (i + 1), "val_acc": a, "val_loss": loss, "train_acc": 1.0}
            for i, a in enumerate(accs)]


def test_the_sweeps_score_is_the_sweeps_own():
    records = pd.read_parquet(POOL).query("config == 0").sort_values("step").to_dict("records")
    event, _ = rf.outcome(records)
    ours = rf.candidates(records, event)["grok_score (the sweep's)"]
    assert ours == rf.scores_for_curve(records, rf.TARGET, rf.BUDGET, chance=rf.CHANCE)


def test_keep_fastest_bound_counts_kept_grokkers_to_their_end_and_the_rest_to_the_first_rung():
    # two grokkers (events at 100 and 300: ends 300 and 500 after the 3-eval streak), one never
    rows = _curve(0, [1.0] * 3) + _curve(1, [0.0, 0.0, 1.0, 1.0, 1.0]) + _curve(2, [0.0] * 40)
    pool = pd.DataFrame(rows)
    assert rf.keep_fastest_bound(pool, grace=200, share=0.5) == pytest.approx((300 + 200 + 200) / (300 + 500 + 4000))
    assert rf.keep_fastest_bound(pool, grace=200, share=1.0) == pytest.approx((300 + 500 + 200) / (300 + 500 + 4000))


def test_on_a_held_out_real_pool_the_score_keeps_the_fastest_grokker_and_sits_on_the_frontier():
    """The sweep's score keeps the fastest grokker in every start order; a perfect binary rule that
    knows who groks by step 2500 stops fewer would-be grokkers only by spending more compute, and a
    perfect ranking spends less at about the same stop rate (benchmarks/README.md, "Rung scores")."""
    table = rf.evaluate(pd.read_parquet(POOL), repeats=6, k=2, grace=300)
    ours, tier, rank = (table.loc[n] for n in ("grok_score (the sweep's)", "oracle tier <= 2500", "oracle rank"))
    assert ours["kept"] == 1.0
    assert tier["stopped"] < ours["stopped"] and tier["compute"] > ours["compute"]
    assert rank["compute"] < ours["compute"]
