"""A real small sweep (x+y mod 13, 3 seeds per config as one population trial, grid + ASHA on an
embedded local Ray) and its report, built once per test session for the slow report tests.

train.target_patience 0 keeps every run going after it generalises (only ASHA stops trials),
so the curves can show collapses. A 2 x 2 grid (train.batch_size 0 = full batch) makes sure
both values of each dimension are there, so the report has a Kaplan-Meier curve per condition.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "name": "report_real",
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 13, "train_fraction": 0.8},
    "model": {"n_layers": 1, "d_model": 32, "n_heads": 4, "d_ff": 64},
    "optim": {"name": "adamw", "lr": 3e-3, "weight_decay": 1.0},
    "train": {"steps": 500, "batch_size": 64, "target_val_acc": 0.9, "target_patience": 0,
              "eval_every": 25, "checkpoint_every": 250, "per_class_metrics": False},
    "search": {"space": {"optim.lr": {"grid": [3e-3, 6e-3]}, "train.batch_size": {"grid": [0, 64]}},
               "algorithm": "random", "scheduler": "asha", "grace_period": 200, "num_samples": 1,
               "cpus_per_trial": 1, "seeds": [0], "seeds_per_trial": 3, "verify": {"top": 0}},
}


def run_sweep(tmp: Path) -> Path:
    """Run the sweep through the real CLI; returns the sweep folder (asserts it succeeded)."""
    cfg = tmp / "sweep.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "sweep", str(cfg), "--storage",
                           str(tmp / "res")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "res" / CONFIG["name"]
