"""Honest exits of `groktune sweep`.

Fast tier: GPUs per trial on a machine without one is one line and exit 2 before Ray is even
imported; with a cluster address the check is the cluster's (orchestrator.sweep.driver.check_resources).
Slow tier: a real sweep in which one grid point fails at every start (tests/orchestrator/fail_always.py)
retries it, records it `error`, lets the other trial finish, and exits 1 with one line naming
how many trials errored and where their error logs are.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from orchestrator.cli.sweep import check_gpus
from orchestrator.sweep.ledger import count_starts

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}

CONFIG = {
    "name": "honest",
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 13, "train_fraction": 0.5},
    "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32},
    "train": {"steps": 100, "batch_size": 32, "eval_every": 20, "checkpoint_every": 40, "per_class_metrics": False},
    "search": {"space": {"optim.lr": {"grid": [0.001, 0.003]}}, "algorithm": "grid", "scheduler": "fifo",
               "max_failures": 1, "verify": {"top": 0}},
}

PROBE = ("import sys; from orchestrator.cli.main import main; rc = main(sys.argv[1:]); "
         "print('RAY' if 'ray' in sys.modules else 'NORAY'); sys.exit(rc)")


def write_config(tmp_path: Path, **search) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "search": {**CONFIG["search"], **search}}))
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpus_on_a_machine_without_one_is_one_line_before_ray(tmp_path):
    env = {k: v for k, v in ENV.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-c", PROBE, "sweep", str(write_config(tmp_path, gpus_per_trial=0.25)),
                           "--storage", str(tmp_path / "res")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert errors[0].startswith("groktune: error: search.gpus_per_trial: got 0.25, but this machine has no GPU")
    assert proc.stdout.strip() == "NORAY" and not (tmp_path / "res").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_leaves_a_cluster_to_the_cluster(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    check_gpus(0.0, None)  # CPU sweeps: nothing to check
    check_gpus(1.0, "10.0.0.5:6379")  # the cluster may have GPUs on other nodes
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    check_gpus(1.0, None)
    monkeypatch.delenv("RAY_ADDRESS")
    with pytest.raises(Exception, match="search.gpus_per_trial: got 1"):
        check_gpus(1.0, None)


@pytest.mark.slow
def test_a_trial_that_always_fails_makes_the_sweep_exit_1_naming_its_log(tmp_path):
    res = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "tests.orchestrator.fail_always", "optim.lr=0.003@40", "sweep",
                           str(write_config(tmp_path)), "--storage", str(res)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    exp = res / "honest"
    trials = pd.read_parquet(exp / "trials.parquet").set_index("optim.lr")
    assert trials.loc[0.003, "status"] == "error" and trials.loc[0.001, "status"] != "error"
    failed = str(trials.loc[0.003, "trial_id"])
    assert count_starts(exp, failed) == 2  # the first start and its one retry (max_failures 1)
    lines = [line for line in proc.stderr.splitlines() if "errored after their retries" in line]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("groktune: 1 trial(s) errored after their retries")
    logs = re.findall(r"(/\S+/error\.txt)", lines[0])
    assert len(logs) == 1 and failed in logs[0] and "fail_always" in Path(logs[0]).read_text()
