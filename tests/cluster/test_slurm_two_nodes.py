"""`groktune slurm submit --nodes 2` on a real two-node Slurm, preempted for real.

Two slurmd (node1, node2), each in its own network namespace (tests/cluster/local_slurm.py,
tests/cluster/netns.py): the job's Ray head runs on node1, its Ray worker on node2 through srun,
each with the node's own address and this job's ports. One sweep checks both things a two-node job
must do, to keep the suite short: its trials run on both nodes, and `scontrol requeue` of the
running job (what a preempting scheduler does) brings it back, it resumes the sweep and finishes
with no finished trial lost or trained again (the ledger's records and start counts, as in
tests/orchestrator/test_sweep_crash.py).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from cluster.slurm.render import PORT_BASE, PORT_BLOCK, PORT_BLOCKS
from orchestrator.sweep.ledger import count_starts, read_ledger
from tests.cluster.slurm_jobs import (
    JOB_TIMEOUT, assert_no_ray_left, check_results, job_log, log_excerpt, submit, wait_done, wait_log,
)

pytestmark = [pytest.mark.slow, pytest.mark.full]
TRIALS = 3  # few, to keep it short; two run at once (one per node), so both nodes are used


def finished_in_ledger(exp: Path) -> dict[str, tuple[dict, int]]:
    """trial_id -> (its ledger record, its training starts) for every trial finished so far."""
    if not exp.is_dir():
        return {}
    return {tid: (rec, count_starts(exp, tid)) for tid, rec in read_ledger(exp).items()}


def wait_first_finished(slurm, storage: Path, job_id: str) -> dict[str, tuple[dict, int]]:
    """Wait until at least one trial is in the ledger; fail if the job ends first."""
    exp = storage / "tiny_sweep"
    deadline = time.monotonic() + JOB_TIMEOUT
    while not (kept := finished_in_ledger(exp)):
        assert time.monotonic() < deadline, f"no trial finished:\n{log_excerpt(storage, job_id)}"
        assert slurm.job_field(job_id, "JobState") == "RUNNING", log_excerpt(storage, job_id)
        time.sleep(0.3)
    return kept


def processes_in_node(slurm, i: int) -> list[str]:
    """Command names of the processes living in node i's network namespace."""
    pids = [str(pid) for pid in slurm.net.pids(i)]
    if not pids:
        return []
    out = subprocess.run(["ps", "-o", "comm=", "-p", ",".join(pids)], capture_output=True, text=True).stdout
    return sorted(out.split())


def test_two_node_sweep_uses_both_nodes_and_survives_scontrol_requeue(slurm_two_nodes, tmp_path):
    slurm = slurm_two_nodes
    storage = tmp_path / "results"
    exp = storage / "tiny_sweep"
    t0 = time.monotonic()
    # One CPU per node: two trials at a time, one on each Ray node. Ray keeps the per-job ports
    # of the script (no --opt ports.*): each node has a network stack of its own.
    job_id = submit(slurm, storage, "--nodes", "2", "--cpus-per-node", "1", "--set", f"search.num_samples={TRIALS}")

    script = (exp / "slurm" / "job.sbatch").read_text()
    assert "#SBATCH --nodes=2" in script
    commands = script.replace("\\\n", " ").splitlines()  # continuation lines joined
    sruns = [line for line in commands if line.lstrip().startswith("srun ")]
    assert len(sruns) == 2 and all(" --cpus-per-task=1 " in line and "ray start" in line for line in sruns), sruns

    wait_log(slurm, storage, job_id, "2/2 Ray nodes joined")
    port = PORT_BASE + (int(job_id) % PORT_BLOCKS) * PORT_BLOCK  # this job's port block
    head = f"Ray head on node1 ({slurm.net.address(0)}:{port}), 2 node(s)"
    assert head in job_log(storage, job_id), log_excerpt(storage, job_id)

    kept = wait_first_finished(slurm, storage, job_id)
    assert len(kept) < TRIALS, "the sweep finished before the requeue could be sent"
    requeued = time.monotonic()
    slurm.run("scontrol", "requeue", job_id)
    wait_done(slurm, storage, job_id)
    elapsed = time.monotonic() - t0

    log = job_log(storage, job_id)
    assert slurm.job_field(job_id, "Restarts") == "1", log_excerpt(storage, job_id)
    for line in (f"JOB {job_id} ON node1 CANCELLED", "DUE TO JOB REQUEUE", "(restart 1)", "found saved sweep state",
                 "groktune: resuming tiny_sweep:", "sweep driver exited with status 0"):
        assert line in log, f"{line!r} not in the job log:\n{log_excerpt(storage, job_id)}"
    assert log.count("2/2 Ray nodes joined") == 2 and log.count(head) == 2

    # The sweep completed; the trials finished before the requeue were neither lost nor trained again.
    trials = check_results(exp, trials_expected=TRIALS)
    assert len(list(exp.glob("trial_*"))) == TRIALS
    ledger = read_ledger(exp)
    for trial_id, (record, starts) in kept.items():
        assert ledger[trial_id] == record, trial_id
        assert count_starts(exp, trial_id) == starts == 1, trial_id
    assert set(kept) <= set(trials.trial_id)

    # Trials ran on both Slurm nodes, each a separate Ray node at its node's address.
    assert set(trials.node_ip) == {slurm.net.address(0), slurm.net.address(1)}, trials.node_ip.tolist()
    assert trials.node_id.nunique() >= 2

    # Nothing of the job is left: no Ray process anywhere, only slurmd inside each node.
    assert_no_ray_left(job_id)
    for i in range(2):
        assert processes_in_node(slurm, i) == ["slurmd"], (i, processes_in_node(slurm, i))
    print(f"\ntwo-node slurm job {job_id}: {elapsed:.1f}s total, requeue at {requeued - t0:.1f}s, "
          f"{len(kept)} trial(s) kept; nodes {sorted(set(trials.node_ip))}")
