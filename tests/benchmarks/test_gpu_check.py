"""benchmarks/gpu_check.sh on a machine without a GPU: one line saying so, exit 1, nothing run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the check would run for minutes")
def test_without_a_gpu_it_says_so_in_one_line(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out")}
    env.pop("GPU_CHECK_DEVICE", None)
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA GPU visible"), proc.stdout
    assert (tmp_path / "out" / "table.md").read_text().strip() == lines[0]
