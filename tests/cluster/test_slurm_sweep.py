"""`groktune slurm submit` on a real single-node Slurm (tests/cluster/local_slurm.py): the job
starts a Ray cluster, runs the tiny sweep against it and leaves parquet results a report can
be made from; the pre-limit signal makes it save, requeue itself and resume the sweep.

Everything runs for real: the CLI as a subprocess, sbatch, srun, `ray start`, Ray Tune.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.sweep.results import ray_statuses
from tests.cluster.local_slurm import free_port
from tests.cluster.slurm_jobs import (
    CONFIG, JOB_TIMEOUT, TRIALS, assert_no_ray_left, check_results, free_port_opts, groktune, job_log, wait_done,
    wait_log,
)
from tests.cluster.slurm_jobs import submit as submit_job

pytestmark = [pytest.mark.slow, pytest.mark.full]


def submit(slurm, storage: Path, *extra: str, gcs_port: int = 0) -> str:
    """Submit the tiny sweep with Ray on free ports (other Ray clusters may share this host)."""
    return submit_job(slurm, storage, *free_port_opts(gcs_port), *extra)


def connect_without_token(address: str) -> subprocess.Popen:
    """A Ray client that does not have the job's token (started now, read later)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    # Ray retries a refused client 20 times, a second apart; 3 tries give the verdict while the
    # (short) sweep still runs. Once the cluster is gone a client retries the dead GCS for long.
    env["RAY_NUM_REDIS_GET_RETRIES"] = "3"
    code = (f"import ray\ntry:\n    ray.init(address={address!r}, logging_level='ERROR')\n    print('CONNECTED')\n"
            "except Exception as err:\n    print('REFUSED', type(err).__name__)")
    return subprocess.Popen([sys.executable, "-c", code], env={**env, "HOME": "/nonexistent"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_submit_runs_the_sweep_on_a_ray_cluster_and_a_report_follows(slurm, tmp_path):
    storage = tmp_path / "results"
    gcs_port = free_port()
    t0 = time.monotonic()
    job_id = submit(slurm, storage, "--cpus-per-node", "2", gcs_port=gcs_port)
    exp = storage / "tiny_sweep"
    assert (exp / "slurm" / "job.sbatch").is_file() and (exp / "slurm" / "config.yaml").is_file()

    listed = groktune(slurm, "slurm", "status").stdout  # queued or running right after submission
    assert job_id in listed and "groktune-tiny_sweep" in listed

    # Token authentication: once the cluster is up, a client without the token is turned away.
    wait_log(slurm, storage, job_id, "Ray nodes joined")
    intruder = connect_without_token(f"127.0.0.1:{gcs_port}")
    answer = intruder.communicate(timeout=60)[0]
    assert "REFUSED" in answer and "CONNECTED" not in answer and "Authentication token is missing" in answer, answer
    assert slurm.job_field(job_id, "JobState") == "RUNNING", "the job ended before the intruder's verdict"

    wait_done(slurm, storage, job_id)
    elapsed = time.monotonic() - t0
    log = job_log(storage, job_id)
    assert "1/1 Ray nodes joined" in log and "sweep driver exited with status 0" in log, log[-3000:]
    assert "resuming" not in log
    trials = check_results(exp, trials_expected=TRIALS)
    assert (trials.restarts == 0).all()
    assert_no_ray_left(job_id)

    status = groktune(slurm, "slurm", "status", job_id).stdout
    assert "COMPLETED" in status and f"results   {exp}" in status and "trials.parquet written" in status

    report = tmp_path / "report"
    groktune(slurm, "report", str(exp), "--out", str(report))
    for name in ("report.html", "report.md", "summary.csv"):
        assert (report / name).stat().st_size > 0
    print(f"\nslurm sweep job {job_id}: {elapsed:.1f}s from submission to COMPLETED")


def finished_trials(exp: Path) -> dict[str, bytes]:
    """trial_id -> its result.json bytes, for the trials Tune's saved state calls TERMINATED."""
    done = [t for t, s in ray_statuses(exp).items() if s == "TERMINATED"]
    return {t: (exp / f"trial_{t}" / "result.json").read_bytes() for t in done}


def test_prelimit_signal_saves_requeues_and_resumes(slurm, tmp_path):
    storage = tmp_path / "results"
    exp = storage / "tiny_sweep"
    t0 = time.monotonic()
    # One CPU for Ray: trials run one after another, each long enough to be caught mid-run.
    job_id = submit(slurm, storage, "--cpus-per-node", "1", "--set", "train.steps=1200")

    deadline = time.monotonic() + JOB_TIMEOUT
    kept: dict[str, bytes] = {}
    while not kept:
        assert time.monotonic() < deadline, f"no trial finished:\n{job_log(storage, job_id)[-3000:]}"
        assert slurm.job_field(job_id, "JobState") in ("PENDING", "RUNNING", "CONFIGURING"), job_log(storage, job_id)
        time.sleep(0.5)
        kept = finished_trials(exp)
    assert len(kept) < TRIALS, "the sweep finished before the signal could be sent"

    # What Slurm sends signal_lead_s before the time limit (--signal=B:USR1@...), sent now.
    signalled = time.monotonic()
    slurm.run("scancel", "--signal=USR1", "--batch", job_id)
    wait_done(slurm, storage, job_id)
    elapsed = time.monotonic() - t0

    log = job_log(storage, job_id)
    assert slurm.job_field(job_id, "Restarts") == "1"
    for line in ("USR1: the time limit is near", "stopping the sweep driver", f"requeueing job {job_id}",
                 "(restart 1)", "found saved sweep state", "groktune: resuming tiny_sweep:"):
        assert line in log, f"{line!r} not in the job log:\n{log[-4000:]}"
    first_run = log.split("(restart 1)")[0]
    assert "sweep driver exited with status" in first_run  # the driver stopped by itself, not killed

    trials = check_results(exp, trials_expected=TRIALS)  # the sweep completed, with no trial run twice
    assert len(list(exp.glob("trial_*"))) == TRIALS
    for trial_id, before in kept.items():  # trials finished before the signal were kept as they were
        assert (exp / f"trial_{trial_id}" / "result.json").read_bytes() == before, trial_id
    assert set(kept) <= set(trials.trial_id)
    assert_no_ray_left(job_id)
    print(f"\nslurm requeue job {job_id}: {elapsed:.1f}s total, signal at {signalled - t0:.1f}s, "
          f"{len(kept)} trial(s) kept")


def test_signal_while_the_driver_starts_still_resumes(slurm, tmp_path):
    """USR1 between `experiment.yaml` being written and Ray Tune's first saved state: the driver
    must not die there (the requeued job could then neither resume nor start afresh)."""
    storage = tmp_path / "results"
    exp = storage / "tiny_sweep"
    job_id = submit(slurm, storage, "--cpus-per-node", "2")
    deadline = time.monotonic() + JOB_TIMEOUT
    while not (exp / "experiment.yaml").exists():
        assert time.monotonic() < deadline, job_log(storage, job_id)[-3000:]
        time.sleep(0.1)
    slurm.run("scancel", "--signal=USR1", "--batch", job_id)
    wait_done(slurm, storage, job_id)
    log = job_log(storage, job_id)
    assert slurm.job_field(job_id, "Restarts") == "1", log[-3000:]
    assert "found saved sweep state" in log, log[-3000:]
    check_results(exp, trials_expected=TRIALS)


def test_real_slurm_refusal_is_one_line_exit_2(slurm, tmp_path):
    proc = groktune(slurm, "slurm", "submit", CONFIG, "--storage", str(tmp_path), "--cpus-per-node", "2",
                    "--partition", "nosuch", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("groktune: error: sbatch refused the job: ") and proc.stderr.count("\n") == 1
    assert "invalid partition" in proc.stderr.lower()
    assert not (tmp_path / "tiny_sweep").exists()
