"""One real TPE + ASHA sweep, run once per test session (the `tpe_asha_sweep` fixture of
tests/conftest.py) for the slow tests that read a finished sweep instead of each starting its own.

configs/demo_sweep.yaml cut to 8 trials of 300 steps on the embedded local Ray, through the real
CLI, with a journal Optuna storage: fast learning rates leave chance by step 200, slow ones do not,
so ASHA (grace 100, reduction factor 2) prunes some trials and others end on their own. While it
runs, `status` is read once with a trial running (`running`). A test that changes the folder
works on a copy (`copy_to`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from groktune.layout import LEDGER, TUNE_RESULT

ROOT = Path(__file__).resolve().parents[1]
NAME = "tpe_asha"
CONFIG = {
    "name": NAME,
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 23, "train_fraction": 0.7},
    "model": {"n_layers": 1, "d_model": 32, "n_heads": 4, "d_ff": 128},
    "optim": {"lr": 3e-3, "weight_decay": 1.0, "warmup_steps": 10},
    "train": {"steps": 300, "batch_size": 128, "eval_every": 20, "checkpoint_every": 100,
              "target_val_acc": 0.99, "target_patience": 3, "per_class_metrics": False},
    "search": {"space": {"optim.lr": {"loguniform": [1e-4, 2e-2]}, "train.batch_size": {"choice": [64, 128]}},
               "algorithm": "tpe", "scheduler": "asha", "grace_period": 100, "reduction_factor": 2,
               "num_samples": 8, "max_failures": 0, "verify": {"top": 0}},
}
TRIALS = CONFIG["search"]["num_samples"]


@dataclass(frozen=True)
class SharedSweep:
    """A finished sweep and what its driver printed."""

    exp: Path  # the sweep folder
    config: Path  # the config it ran
    journal: Path  # its Optuna journal storage
    returncode: int
    stdout: str
    stderr: str
    running: dict | None  # status_data taken while a trial ran

    def copy_to(self, where: Path) -> tuple[Path, Path]:
        """A copy of the sweep folder under `where` (for a test that changes it): (storage, exp)."""
        storage = where / "res"
        shutil.copytree(self.exp, storage / NAME)
        return storage, storage / NAME


def run(tmp: Path) -> SharedSweep:
    """Run the sweep through the real CLI in `tmp` (the caller asserts it succeeded)."""
    journal = tmp / "study.log"
    cfg = tmp / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({**CONFIG, "search": {**CONFIG["search"], "optuna_storage": f"journal:{journal}"}}))
    exp = tmp / "res" / NAME
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "sweep", str(cfg), "--storage", str(exp.parent)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running = poll_status_while_running(proc, exp)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    return SharedSweep(exp, cfg, journal, proc.returncode, out, err, running)


def poll_status_while_running(proc: subprocess.Popen, exp: Path, timeout: float = 300.0) -> dict | None:
    """status_data of the sweep folder, taken while a trial is running.

    A trial of this sweep runs for about a second, and status_data reads every result file, so
    a plain poll can miss every running window on a loaded machine. Instead a cheap check (more
    trial result files with lines than ledger records) runs every 50 ms; when it fires, the
    driver, which writes both, is frozen with SIGSTOP while status_data reads the folder, then
    let go. A check that raced a trial's end (status shows none running) just polls on.
    """
    # deferred: tests/conftest.py imports this module; only the session that runs the sweep needs it
    from orchestrator.sweep.status import status_data

    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if (exp / "experiment.yaml").exists() and _reported(exp) > _ledgered(exp):
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                data = status_data(exp)
            except Exception:  # noqa: BLE001 - frozen mid-write of a result line: poll on
                data = None
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            if data and data["status"] == "running" and any(t["status"] == "running" for t in data["trials"]):
                return data
        time.sleep(0.05)
    return None


def _reported(exp: Path) -> int:
    """Trials whose Tune result file has at least one line."""
    return sum(1 for f in exp.glob(f"*/{TUNE_RESULT}") if f.stat().st_size > 0)


def _ledgered(exp: Path) -> int:
    """Trials with a final record in the sweep's ledger."""
    ledger = exp / LEDGER
    return sum(1 for _ in ledger.glob("*.json")) if ledger.is_dir() else 0
