"""Helpers for the slow tests that watch a real `groktune sweep`'s Ray session from outside.

A sweep runs as a subprocess (the driver). Its Ray session is found the way a user would find
it: the driver's descendants (gcs_server, raylet, workers, agents; recorded with their start
times, so a recycled pid is never mistaken for one of them) and the session's private dir, read
from the GROKTUNE_RAY_SESSION variable that the session's processes carry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

from orchestrator.session.watchdog import MARKER

ROOT = Path(__file__).resolve().parents[2]

SWEEP = {
    "name": "rayprocs",
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 23, "train_fraction": 0.6},
    "model": {"n_layers": 1, "d_model": 32, "n_heads": 4, "d_ff": 128},
    "optim": {"lr": 3e-3, "weight_decay": 1.0},
    # Long enough that trials are still running while the test looks at them.
    "train": {"steps": 20000, "batch_size": 64, "eval_every": 100, "checkpoint_every": 500,
              "per_class_metrics": False, "num_threads": 1},
    "search": {"space": {"optim.lr": {"loguniform": [1e-3, 1e-2]}}, "num_samples": 2,
               "scheduler": "fifo", "max_concurrent": 2,
               "verify": {"top": 0}},
}


def start_sweep(tmp_path: Path, env: dict | None = None, **train) -> tuple[subprocess.Popen, Path]:
    """`groktune sweep` on a tiny config, as a subprocess; returns (driver, experiment dir).

    Args:
        tmp_path: holds the config, the driver's log and the results.
        env: extra environment for the driver.
        train: overrides of the config's train section.
    """
    cfg = {**SWEEP, "train": {**SWEEP["train"], **train}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "sweep", str(path), "--storage", str(tmp_path / "res")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})
    return driver, tmp_path / "res" / cfg["name"]


def members(driver_pid: int) -> dict[int, tuple[float, str]]:
    """{pid: (create_time, name)} of the driver's live descendants."""
    try:
        children = psutil.Process(driver_pid).children(recursive=True)
    except psutil.Error:
        return {}
    found = {}
    for proc in children:
        try:
            found[proc.pid] = (proc.create_time(), proc.name())
        except psutil.Error:
            continue
    return found


def session_root(pids) -> str | None:
    """The session's private dir, from the marker variable of any of `pids`."""
    for pid in pids:
        try:
            root = psutil.Process(pid).environ().get(MARKER)
        except psutil.Error:
            continue
        if root:
            return root
    return None


def still_alive(recorded: dict[int, tuple[float, str]], root: str | None) -> list[str]:
    """Recorded processes that still run (same pid and start time) or any process tagged `root`."""
    left = []
    for pid, (started, name) in recorded.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == started and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{pid} {name}")
        except psutil.Error:
            continue
    if root:
        for proc in psutil.process_iter():
            try:
                if proc.pid not in recorded and proc.environ().get(MARKER) == root:
                    left.append(f"{proc.pid} {proc.name()} (tagged)")
            except psutil.Error:
                continue
    return left


def wait_for(check, timeout: float, every: float = 0.5):
    """Poll `check()` until it returns something truthy; returns it (or the last falsy value)."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = check()
    return value


def trials_running(exp: Path, driver_pid: int, n: int = 1):
    """Truthy once `n` trials have reported a result and their workers still run."""
    reported = [p for p in exp.glob("trial_*/result.json") if p.stat().st_size > 0]
    if len(reported) < n:
        return None
    return members(driver_pid)


def listeners(pids) -> list[tuple[int, str, str, int]]:
    """(pid, name, ip, port) of every listening TCP socket of `pids`."""
    found = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            name = proc.name()
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        found += [(pid, name, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return found


def stop(driver: subprocess.Popen, recorded: dict) -> None:
    """Test teardown: whatever the test left, end it (the driver's group, recorded processes)."""
    for pid in [driver.pid]:
        try:
            os.killpg(pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
    for pid, (started, _) in recorded.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == started:
                proc.kill()
        except psutil.Error:
            continue
    try:
        driver.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
