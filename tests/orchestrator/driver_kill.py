"""Killing a running `groktune sweep` driver at a chosen moment, for the kill-and-resume tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.orchestrator.rayprocs import wait_for

ROOT = Path(__file__).resolve().parents[2]


def poll_tables(exp: Path, want, timeout: float):
    """The trials table of the sweep folder once want(trials) holds (polled every second)."""
    from orchestrator.sweep.results import build_tables

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(exp.glob("experiment_state-*.json")) and (exp / "experiment.yaml").exists():
            try:
                _, trials = build_tables(exp)
            except Exception:  # noqa: BLE001 - files mid-write; try again
                trials = None
            if trials is not None and len(trials) and want(trials):
                return trials
        time.sleep(1.0)
    raise AssertionError("sweep did not reach the wanted state in time")


def tune_snapshot(exp: Path) -> dict[str, str]:
    """{trial_id: status} in Tune's latest snapshot of the experiment ({} before the first, or mid-write)."""
    files = sorted(exp.glob("experiment_state-*.json"))
    try:
        data = json.loads(files[-1].read_text()) if files else {}
    except (OSError, json.JSONDecodeError):
        return {}
    trials = [json.loads(t) if isinstance(t, str) else t for t, _ in data.get("trial_data", [])]
    return {t["trial_id"]: t["status"] for t in trials}


def kill_driver_when(cfg, tmp_path, ready, snapshotted=None) -> None:
    """Start `groktune sweep cfg` in its own session, call ready() (it waits for a state of the
    sweep folder and returns it), then, if given, wait until snapshotted(state) holds (e.g. Tune's
    snapshot has caught up with it; asserted, never a sleep), and SIGKILL the driver and every
    process it started."""
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "sweep", str(cfg), "--storage",
                               str(tmp_path / "res")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        state = ready()
        if snapshotted is not None:
            assert wait_for(lambda: snapshotted(state), 60), "Tune never snapshotted the state the kill waits for"
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # Ray helpers the driver started, in its session
        except ProcessLookupError:
            pass
        log.close()
