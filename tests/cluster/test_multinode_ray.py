"""A real three-node Ray cluster on this machine, one worker node killed mid-sweep.

A head and two worker raylets started with plain `ray start` (token auth on, as Ray's defaults
have it once ~/.ray/auth_token exists), each with 1 CPU, its own --temp-dir and a custom resource
(node_head, node_w1, node_w2), then `groktune sweep --address`. Once a trial has finished and a
trial running on a worker node has a checkpoint, that node's processes (raylet, agents, the
trial's worker) are SIGKILLed together: a node crash. Then:

- the sweep completes with exit 0 and every trial finished (none errored);
- trials.parquet shows trials on at least two nodes (node ids, since all share 127.0.0.1);
- each trial that ran on the killed node continued on a surviving node from its last checkpoint
  (resumed_from_step at least that checkpoint's step; two starts in the ledger);
- a trial finished before the kill was neither lost nor trained again (one start; its ledger
  record byte for byte the same).

The GCS's health checks are shortened (RAY_health_check_*) so the node's death is noticed in
about 2 s instead of Ray's default 30 s or so. Every node is found and stopped by its temp dir,
so no other Ray on the machine is touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from groktune.layout import FINAL_STATUSES, LEDGER, TRIALS
from groktune.layout import TUNE_STATE
from orchestrator.sweep.ledger import count_starts
from tests.cluster.rayhead import free_port, kill_node, node_id_of, processes_of, start_node, stop_head
from tests.orchestrator.test_join_cluster import clean_env

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "tiny_sweep.yaml"
NAME = "tiny_sweep"
# 4 trials on 3 one-CPU nodes; 1200 steps (a few seconds of training each) leave a trial running
# with a checkpoint (every 50 steps, whatever the adapter's default) when the first one
# finishes. tiny_sweep has max_failures 1.
SWEEP = ["--set", "search.num_samples=4", "--set", "train.steps=1200", "--set", "search.checkpoint_every=50",
         "--set", "search.verify.top=0", "--quiet"]
# Node death noticed after 4 missed checks 500 ms apart (read by the GCS at `ray start --head`).
FAST_HEALTH_CHECKS = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                      "RAY_health_check_failure_threshold": "4", "RAY_health_check_initial_delay_ms": "1000"}


@dataclass
class Cluster:
    address: str
    env: dict  # a user's shell on this machine: HOME holds the cluster's ~/.ray/auth_token
    nodes: dict  # name -> temp dir
    ids: dict  # name -> Ray node id


@pytest.fixture
def three_nodes(tmp_path):
    """A head and two workers, 1 CPU each, started with `ray start`; all stopped at teardown."""
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home)
    subprocess.run(["ray", "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=120)
    # Workers do not turn token mode on by themselves (the head does when a token exists).
    node_env = {**env, "RAY_AUTH_MODE": "token", **FAST_HEALTH_CHECKS}
    port = free_port()
    nodes: dict = {}
    for name in ("head", "w1", "w2"):
        nodes[name] = tempfile.mkdtemp(prefix=f"gtmn{name}-", dir="/tmp")  # short: Ray's socket paths

    def start(name: str) -> None:
        started = start_node(nodes[name], node_env, head_port=port if name == "head" else None,
                             join=f"127.0.0.1:{port}", resources={f"node_{name}": 1})
        assert started.returncode == 0, (name, started.stderr[-3000:])

    try:
        start("head")
        with ThreadPoolExecutor(2) as pool:  # the workers join at once: half the start-up time
            list(pool.map(start, ("w1", "w2")))
        ids = {name: node_id_of(d) for name, d in nodes.items()}
        assert all(ids.values()) and len(set(ids.values())) == 3, ids
        yield Cluster(f"127.0.0.1:{port}", env, nodes, ids)
    finally:
        with ThreadPoolExecutor(3) as pool:  # each waits up to 5 s for its processes to go
            list(pool.map(stop_head, nodes.values()))
        for temp_dir in nodes.values():
            shutil.rmtree(temp_dir, ignore_errors=True)


def finished(exp: Path) -> dict[str, str]:
    """{trial_id: its ledger record's text} of the trials finished so far."""
    return {f.stem: f.read_text() for f in (exp / LEDGER).glob("*.json")}


def running_on(temp_dir: str, exp: Path) -> set[str]:
    """Trials whose latest training start (ledger/<id>.starts: pid, time) is a process of that node."""
    pids = {p.pid for p in processes_of(temp_dir)}
    out = set()
    for f in (exp / LEDGER).glob("*.starts"):
        lines = f.read_text().split("\n")
        last = [ln for ln in lines if ln.strip()]
        if last and int(last[-1].split()[0]) in pids:
            out.add(f.stem)
    return out


def checkpoint_step(trial_dir: Path) -> int:
    """The step of the trial's newest checkpoint in storage (the adapter's state file), 0 if none."""
    steps = [0]
    for state in trial_dir.glob(f"checkpoint_*/{TUNE_STATE}"):
        try:
            steps.append(int(json.loads(state.read_text())["resumed_from_step"]))
        except (OSError, ValueError, KeyError):
            continue  # being written or rotated out (num_to_keep=2)
    return max(steps)


def kill_a_busy_worker(cluster: Cluster, exp: Path, sweep: subprocess.Popen, timeout: float = 300):
    """Wait until a trial finished and a trial on a worker node has a checkpoint; kill that node.

    Returns:
        (node name, {trial_id: checkpoint step} of its trials, {trial_id: record} finished before).
    """
    deadline = time.monotonic() + timeout
    while sweep.poll() is None and time.monotonic() < deadline:
        done = finished(exp)
        for name in ("w1", "w2") if done else ():
            busy = {t: checkpoint_step(exp / f"trial_{t}") for t in running_on(cluster.nodes[name], exp) - set(done)}
            if any(busy.values()):
                kill_node(cluster.nodes[name])
                return name, busy, finished(exp)
        time.sleep(0.2)
    pytest.fail(f"the sweep ended (rc {sweep.poll()}) before a worker held a running trial with a checkpoint")


@pytest.mark.slow
@pytest.mark.full
def test_a_sweep_on_three_nodes_survives_a_killed_worker(three_nodes, tmp_path):
    cluster = three_nodes
    exp = tmp_path / "res" / NAME
    t0 = time.monotonic()
    log = open(tmp_path / "sweep.log", "w")
    sweep = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "sweep", str(CONFIG), *SWEEP,
                              "--storage", str(tmp_path / "res"), "--address", cluster.address],
                             cwd=ROOT, env=cluster.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        victim, killed, before = kill_a_busy_worker(cluster, exp, sweep)
        killed_at = time.monotonic() - t0
        rc = sweep.wait(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
        log.close()
    out = (tmp_path / "sweep.log").read_text()
    print(f"\nkilled {victim} at {killed_at:.0f}s (trials {killed}); sweep done at {time.monotonic() - t0:.0f}s")
    assert rc == 0, out[-3000:]
    assert not processes_of(cluster.nodes[victim])  # the node stayed dead; nothing of it came back

    trials = pd.read_parquet(exp / TRIALS).set_index("trial_id")
    curves = pd.read_parquet(exp / "curves.parquet")
    assert len(trials) == 4 and set(trials.status) <= set(FINAL_STATUSES) - {"error"}, trials.status
    dead, alive = cluster.ids[victim], set(cluster.ids.values()) - {cluster.ids[victim]}
    ran_on = {n for nodes in trials.nodes for n in nodes.split(",")}
    assert len(ran_on) >= 2 and ran_on <= set(cluster.ids.values()), ran_on
    for tid, step in killed.items():  # retried on a surviving node from the last checkpoint
        row = trials.loc[tid]
        assert row.nodes.split(",")[0] == dead and row.node_id in alive, row.nodes
        assert row.restarts >= 1 and count_starts(exp, tid) == 2
        assert curves[curves.trial_id == tid].resumed_from_step.max() >= step > 0
    for tid, record in before.items():  # finished before the kill: kept, not trained again
        assert finished(exp)[tid] == record and count_starts(exp, tid) == 1
    assert (trials.drop(index=list(before)).node_id != dead).all()
