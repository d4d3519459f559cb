"""A plain install (no extras: no grpcio, no tensorboard) starts the Ray head exactly as the Slurm
job script does and a sweep joins it with --address.

Runs tests/cluster/plain_install.py with the python of a venv built by
`pip install torch==2.13.0 && pip install .` (.ci/run builds it; GROKTUNE_PLAIN_VENV names it,
default /tmp/groktune-plain-venv). Skipped when that venv is absent.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PLAIN_VENV = Path(os.environ.get("GROKTUNE_PLAIN_VENV", "/tmp/groktune-plain-venv"))


@pytest.mark.slow
def test_plain_install_starts_the_head_as_the_job_does_and_joins_it(tmp_path):
    python = PLAIN_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no plain-install venv at {PLAIN_VENV} (.ci/run builds it)")
    # The check is only meaningful without the extras that once hid a missing dependency.
    extras = subprocess.run([str(python), "-c", "import grpc"], capture_output=True)
    assert extras.returncode != 0, f"{PLAIN_VENV} has grpcio: not a plain install"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "VIRTUAL_ENV", "PYTHON"))}
    done = subprocess.run([str(python), str(HERE / "plain_install.py"), "--keep", str(tmp_path / "work")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "plain install check: OK" in done.stdout
