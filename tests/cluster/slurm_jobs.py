"""Helpers of the Slurm integration tests: submit the tiny sweep with the real CLI, follow the
job through its log, check what it left (tests/cluster/test_slurm_sweep.py, test_slurm_two_nodes.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.config.experiment import load_config
from orchestrator.sweep.results import FINAL_STATUSES
from tests.cluster.local_slurm import LocalSlurm, free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "tiny_sweep.yaml")
JOB_TIMEOUT = 420  # seconds; the tiny sweep takes about a minute on 2 loaded CPU cores
TRIALS = load_config(CONFIG).search.num_samples


def groktune(slurm: LocalSlurm, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The groktune CLI as a subprocess talking to this Slurm; with check, exit 0 asserted."""
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], cwd=ROOT, env=slurm.env,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def free_port_opts(gcs_port: int = 0) -> list[str]:
    """--opt flags putting Ray on free ports: needed where the nodes share this machine's network
    stack with other Ray clusters (the single-node Slurm)."""
    ports = [f"ports.gcs={gcs_port or free_port()}", f"ports.client_server={free_port()}",
             f"ports.dashboard_agent_listen={free_port()}"]
    return [arg for port in ports for arg in ("--opt", port)]


def submit(slurm: LocalSlurm, storage: Path, *extra: str) -> str:
    """`groktune slurm submit` of the tiny sweep into `storage`; returns the job id."""
    proc = groktune(slurm, "slurm", "submit", CONFIG, "--storage", str(storage), "--time", "00:15:00",
                    "--set", "search.verify.top=0", *extra)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("submitted Slurm job "), proc.stdout
    return first.split()[3].rstrip(":")


def job_log(storage: Path, job_id: str) -> str:
    path = storage / "tiny_sweep" / "slurm" / f"{job_id}.out"
    return path.read_text() if path.exists() else "(no job log)"


def log_excerpt(storage: Path, job_id: str) -> str:
    """The job log's groktune lines and any traceback, then its tail (Ray's tables are long)."""
    lines = job_log(storage, job_id).splitlines()
    keep = [line for line in lines if line.startswith("[groktune") or "Error" in line or "Traceback" in line]
    return "\n".join(keep[-60:] + ["--- tail:"] + lines[-40:])


def wait_done(slurm: LocalSlurm, storage: Path, job_id: str) -> None:
    """Wait for the job to end; fail with its log unless it COMPLETED."""
    try:
        state = slurm.wait_job(job_id, timeout=JOB_TIMEOUT, poll=1.0)
    except TimeoutError:
        pytest.fail(f"job {job_id} did not finish:\n{log_excerpt(storage, job_id)}")
    assert state == "COMPLETED", f"job {job_id} {state}:\n{log_excerpt(storage, job_id)}"


def wait_log(slurm: LocalSlurm, storage: Path, job_id: str, text: str) -> None:
    """Wait until the job log holds `text` while the job is queued or running."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while text not in job_log(storage, job_id):
        assert time.monotonic() < deadline and slurm.job_field(job_id, "JobState") in ("PENDING", "RUNNING"), \
            log_excerpt(storage, job_id)
        time.sleep(0.5)


def check_results(exp: Path, trials_expected: int) -> pd.DataFrame:
    """trials.parquet and curves.parquet are complete: every trial final, with a curve."""
    trials = pd.read_parquet(exp / "trials.parquet")
    curves = pd.read_parquet(exp / "curves.parquet")
    assert len(trials) == trials_expected and trials.trial_id.is_unique
    assert set(trials.status) <= set(FINAL_STATUSES), trials.status.tolist()
    assert set(curves.trial_id) == set(trials.trial_id)
    assert (curves.groupby("trial_id").step.max() > 0).all()
    return trials


def assert_no_ray_left(job_id: str) -> None:
    """The job's Ray processes are gone (its temp dir names them)."""
    left = subprocess.run(["pgrep", "-af", f"/tmp/ray-groktune-{job_id}/"], capture_output=True, text=True).stdout
    assert not left.strip(), left
