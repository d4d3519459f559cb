"""Real sweeps into a file:// URI and into an S3 bucket, through the CLI.

- file:///PATH is the folder PATH: sweep, collect (by its URI), report and --resume all work.
- s3://: a real S3 protocol server (moto's, on loopback, in this test process) stands in for
  the bucket. Ray Tune writes its state, results and the trials' checkpoints there; groktune
  works in its local working folder ($GROKTUNE_STAGING/s3/BUCKET/PATH/NAME) and uploads its own
  files at the end, so the bucket holds the whole sweep. The keys travel in the URI
  (user:password@, as pyarrow reads them) and are never printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import moto.server
import pandas as pd
import pyarrow.fs
import pytest

from groktune.layout import CURVES, EXPERIMENT, LEDGER, REPORT_HTML, TRIALS
from tests.cluster.rayhead import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "tiny_sweep.yaml"
NAME = "tiny_sweep"
# Two short trials that checkpoint (every 50 steps, whatever the adapter's default period is).
SMALL = ["--set", "search.num_samples=2", "--set", "train.steps=100", "--set", "search.checkpoint_every=50",
         "--set", "search.verify.top=0", "--quiet"]
SECRET = "s3cr3tKEY"


def groktune(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], cwd=ROOT, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_a_sweep_into_a_file_uri_collects_reports_and_resumes(tmp_path):
    uri = f"file://{tmp_path}/res"
    done = groktune("sweep", str(CONFIG), *SMALL, "--storage", uri)
    assert done.returncode == 0, done.stderr[-3000:]
    exp = tmp_path / "res" / NAME  # the URI's folder, nothing else
    trials = pd.read_parquet(exp / TRIALS)
    assert len(trials) == 2 and set(trials.status) <= {"grokked", "budget"}
    assert len(list(exp.glob("trial_*/checkpoint_*"))) >= 2  # checkpoints in the folder the URI names
    (exp / CURVES).unlink()
    collected = groktune("collect", f"{uri}/{NAME}")
    assert collected.returncode == 0 and (exp / CURVES).is_file(), collected.stderr
    report = groktune("report", str(exp), "--out", str(tmp_path / "report"))
    assert report.returncode == 0 and (tmp_path / "report" / REPORT_HTML).is_file(), report.stderr[-2000:]
    resumed = groktune("sweep", str(CONFIG), *SMALL, "--storage", uri, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = pd.read_parquet(exp / TRIALS)
    assert sorted(again.trial_id) == sorted(trials.trial_id)  # nothing trained twice, nothing lost


@pytest.fixture
def s3_bucket():
    """A moto S3 server on loopback with an empty bucket; yields the URI of a prefix in it."""

    port = free_port()
    server = moto.server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        query = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        fs = pyarrow.fs.S3FileSystem(access_key="test", secret_key=SECRET, endpoint_override=f"127.0.0.1:{port}",
                                     scheme="http", region="us-east-1", allow_bucket_creation=True)
        fs.create_dir("sweeps")
        yield f"s3://test:{SECRET}@sweeps/team?{query}", fs
    finally:
        server.stop()


@pytest.mark.slow
def test_a_sweep_into_an_s3_bucket(s3_bucket, tmp_path):
    uri, fs = s3_bucket
    env = {**os.environ, "GROKTUNE_STAGING": str(tmp_path / "staging")}
    done = groktune("sweep", str(CONFIG), *SMALL, "--storage", uri, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr
    assert "uploaded to s3://sweeps/team/tiny_sweep" in done.stdout

    in_bucket = {i.path.removeprefix(f"sweeps/team/{NAME}/")
                 for i in fs.get_file_info(pyarrow.fs.FileSelector(f"sweeps/team/{NAME}", recursive=True))
                 if i.type == pyarrow.fs.FileType.File}
    assert {EXPERIMENT, TRIALS, CURVES} <= in_bucket
    assert sum(p.startswith(f"{LEDGER}/") and p.endswith(".json") for p in in_bucket) == 2
    assert sum(p.startswith("trial_") and "/checkpoint_" in p for p in in_bucket) >= 2  # written by the trials
    assert any(p.startswith("experiment_state-") for p in in_bucket)  # Tune's state, for Tune

    local = tmp_path / "staging" / "s3" / "sweeps" / "team" / NAME
    trials = pd.read_parquet(local / TRIALS)
    assert len(trials) == 2 and set(trials.status) <= {"grokked", "budget"}
    assert len(pd.read_parquet(local / CURVES)) > 0 and not list(local.glob("trial_*/checkpoint_*"))
    report = groktune("report", str(local), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]

    again = groktune("sweep", str(CONFIG), *SMALL, "--storage", uri, env=env, timeout=120)
    assert again.returncode == 2 and "already holds tiny_sweep" in again.stderr, again.stderr[-2000:]
    missing = groktune("sweep", str(CONFIG), *SMALL, "--storage", uri.replace("@sweeps/", "@nobucket/"),
                       env=env, timeout=120)
    assert missing.returncode == 2 and "bucket 'nobucket' not found" in missing.stderr, missing.stderr[-2000:]
    assert SECRET not in again.stderr + missing.stderr
