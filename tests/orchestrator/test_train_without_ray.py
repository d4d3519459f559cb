"""`groktune train` and everything it imports start without Ray or Optuna (a bare GPU machine has
neither: benchmarks/gpu_check.sh runs there with PyTorch alone)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]

BLOCK = '''
import sys

class _Block:
    """Make `import ray` and `import optuna` fail, as where they are not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "optuna"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, _Block())
'''


def test_train_runs_with_ray_and_optuna_unimportable(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "steps": 20}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    check = subprocess.run([sys.executable, "-c", "import ray"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "blocked by the test" in check.stderr  # the block works
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "train", str(config), "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "result.json").read_text())["final_step"] == 20
