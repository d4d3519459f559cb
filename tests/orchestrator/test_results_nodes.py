"""trials.parquet says where each trial ran: hostname, node_ip, node_id and `nodes`.

The real thing, a trial moved from a killed node, is tests/cluster/test_multinode_ray.py; here the
columns are checked on a folder laid out as Ray Tune writes it (tests/orchestrator/test_results.py).
"""

import pandas as pd

from orchestrator.sweep.results import collect
from tests.orchestrator.test_results import make_sweep, record

A, B = "a" * 56, "b" * 56  # Ray node ids are 56 hex digits


def test_a_trial_retried_on_another_node_lists_both_nodes(tmp_path):
    on = {"hostname": "vm", "node_ip": "127.0.0.1"}
    moved = [record(1, node_id=A, **on), record(10, node_id=A, **on),
             record(10, node_id=B, iterations_since_restore=1, training_iteration=3, resumed_from_step=10, **on),
             record(20, node_id=B, status="budget", training_iteration=4, **on)]
    stayed = [record(1, node_id=B, **on), record(10, node_id=B, status="budget", **on)]
    path = make_sweep(tmp_path, {"mv": ({"optim.lr": 1e-3}, moved), "st": ({"optim.lr": 2e-3}, stayed),
                                 "old": ({"optim.lr": 3e-3}, [record(1), record(10, status="budget")])},
                      ledger={"mv": "budget", "st": "budget", "old": "budget"})
    curves, trials = collect(path)
    t = trials.set_index("trial_id")
    assert t.loc["mv", "nodes"] == f"{A},{B}" and t.loc["mv", "node_id"] == B  # where it ended
    assert t.loc["st", "nodes"] == B and t.loc["st", "node_ip"] == "127.0.0.1" and t.loc["st", "hostname"] == "vm"
    assert pd.isna(t.loc["old", "nodes"])  # results from before node ids were reported
    assert "node_id" not in curves  # per-trial facts, not curves
