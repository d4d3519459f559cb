"""`groktune slurm submit` without a Slurm cluster: --dry-run, missing sbatch, a refusal.

Where sbatch's answer matters, a tiny stand-in `sbatch` on PATH plays Slurm's part (the real
Slurm answers are covered by tests/cluster/test_slurm_sweep.py); the code under test runs as is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.cli.main import main

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "tiny_sweep.yaml")


def fake_sbatch(bin_dir: Path, stdout: str, stderr: str, code: int) -> Path:
    """A stand-in sbatch that records its arguments and answers like Slurm."""
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "sbatch"
    exe.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{bin_dir}/args"\n'
        f"printf '%s' '{stdout}'\n"
        f"printf '%s\\n' '{stderr}' >&2\n"
        f"exit {code}\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.fixture
def only_path(monkeypatch, tmp_path):
    """PATH holding only tmp_path/bin (where a test may put a stand-in sbatch)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def submit(tmp_path, *extra):
    return main(["slurm", "submit", CONFIG, "--storage", str(tmp_path / "results"), "--cpus-per-node", "2",
                 "--time", "00:10:00", *extra])


def test_dry_run_prints_the_script_and_writes_nothing(tmp_path, only_path, capsys):
    assert submit(tmp_path, "--dry-run", "--nodes", "2") == 0  # no sbatch on PATH: never called
    out, err = capsys.readouterr()
    assert out.startswith("#!/bin/bash\n")
    assert "#SBATCH --nodes=2" in out and "ray start --head --block" in out and "groktune sweep" in out
    assert "nothing written or submitted" in err
    assert not (tmp_path / "results").exists()


def test_missing_sbatch_is_one_line_exit_2(tmp_path, only_path, capsys):
    assert submit(tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("groktune: error: sbatch: not found on PATH") and err.count("\n") == 1
    assert not (tmp_path / "results").exists()


def test_refused_submission_is_one_line_exit_2(tmp_path, only_path, capsys):
    fake_sbatch(only_path, "", "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified", 1)
    assert submit(tmp_path, "--account", "nope") == 2
    err = capsys.readouterr().err
    assert err == ("groktune: error: sbatch refused the job: Batch job submission failed: "
                   "Invalid account or account/partition combination specified\n")
    assert not (tmp_path / "results" / "tiny_sweep").exists()  # a refused job leaves nothing behind


def test_submit_writes_script_and_config_then_prints_the_job_id(tmp_path, only_path, capsys):
    fake_sbatch(only_path, "4242", "", 0)
    assert submit(tmp_path, "--set", "search.num_samples=2") == 0
    out = capsys.readouterr().out
    assert out.startswith("submitted Slurm job 4242: sweep 'tiny_sweep' on 1 node(s) x 2 CPUs")
    slurm_dir = tmp_path / "results" / "tiny_sweep" / "slurm"
    script = slurm_dir / "job.sbatch"
    assert (only_path / "args").read_text().split() == ["--parsable", str(script)]
    assert os.access(script, os.X_OK) and "#SBATCH --cpus-per-task=2" in script.read_text()
    assert "num_samples: 2" in (slurm_dir / "config.yaml").read_text()  # the resolved config
    assert (slurm_dir / "job_id").read_text() == "4242\n"
    # A second submission with the same name is refused, and says how to continue instead.
    assert submit(tmp_path) == 2
    assert f"to continue it run: sbatch {script}" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--time", "10:00"], "time: got '10:00'"),
    (["--nodes", "0"], "nodes: got 0"),
    (["--cpus-per-node", "1", "--set", "search.cpus_per_trial=2"], "search.cpus_per_trial: got 2"),
    (["--set", "search.gpus_per_trial=1"], "search.gpus_per_trial: got 1"),
    (["--opt", "ports.gcs=99999"], "ports.gcs: got 99999"),
    (["--opt", "nosuch=1"], "nosuch: unknown key"),
    (["--name", "../x"], "--name: got '../x'"),
])
def test_bad_options_are_one_line_exit_2(tmp_path, only_path, capsys, args, message):
    assert main(["slurm", "submit", CONFIG, "--storage", str(tmp_path), "--cpus-per-node", "2", "--dry-run",
                 *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("groktune: error: ") and message in err and err.count("\n") == 1


def test_status_without_slurm_is_one_line_exit_2(only_path, capsys):
    assert main(["slurm", "status", "12"]) == 2
    assert capsys.readouterr().err == "groktune: error: scontrol: not found on PATH; run this on a Slurm login node\n"
    assert main(["slurm", "status", "abc"]) == 2
    assert "job id: got 'abc'" in capsys.readouterr().err
