"""orchestrator/session/watchdog.py without Ray: a stand-in driver with tagged and untagged children.

The driver starts the watchdog exactly as raysession does, then two children: one tagged with
the session marker (which starts an untagged grandchild, as Ray's raylet starts its agents) and
one untagged (not part of the session). SIGKILL the driver: the tagged child and its grandchild
must go, the untagged child must stay, and the session's folder must be removed.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from groktune.layout import WATCHDOG_PIDS
from orchestrator.session.watchdog import MARKER
from tests.orchestrator.rayprocs import wait_for

ROOT = Path(__file__).resolve().parents[2]

DRIVER = r"""
import json, os, subprocess, sys, time
root, mode, marker = sys.argv[1:4]
watchdog = subprocess.Popen([sys.executable, "-m", "orchestrator.session.watchdog", root, str(os.getpid())],
                            stdin=subprocess.PIPE, start_new_session=True)
sleep = "import time; time.sleep(120)"
# The tagged child starts a grandchild without the marker, as Ray's raylet starts its agents.
parent_of_agent = (
    "import os, subprocess, sys, time;"
    f"env = {{k: v for k, v in os.environ.items() if k != {marker!r}}};"
    f"subprocess.Popen([sys.executable, '-c', {sleep!r}], env=env);"
    "time.sleep(120)")
tagged = subprocess.Popen([sys.executable, "-c", parent_of_agent], env={**os.environ, marker: root})
untagged = subprocess.Popen([sys.executable, "-c", sleep])
print(json.dumps({"watchdog": watchdog.pid, "tagged": tagged.pid, "untagged": untagged.pid}), flush=True)
if mode == "close":  # a normal stop: told to, the driver closes the watchdog's stdin and waits for it
    sys.stdin.readline()
    watchdog.stdin.close()
    watchdog.wait()
    print("closed", flush=True)
time.sleep(120)
"""


def run_driver(root: Path, mode: str):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(root), mode, MARKER], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    pids = json.loads(driver.stdout.readline())
    grandchild = wait_for(lambda: psutil.Process(pids["tagged"]).children(), timeout=10)
    assert grandchild, "the tagged child did not start its own child"
    pids["agent"] = grandchild[0].pid
    assert MARKER not in grandchild[0].environ()
    return driver, pids


def watched(root: Path) -> list[int]:
    """The pids the watchdog has recorded so far (orchestrator.session.watchdog.write_known)."""
    try:
        return json.loads((root / WATCHDOG_PIDS).read_text())
    except (OSError, json.JSONDecodeError):
        return []


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def cleanup(driver, pids):
    for pid in [driver.pid, *pids.values()]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    driver.wait(timeout=10)


@pytest.mark.parametrize("mode", ["kill", "close"])
def test_watchdog_stops_exactly_the_session_and_removes_its_folder(mode):
    root = Path(tempfile.mkdtemp(prefix="gtwatch"))
    (root / "auth_token").write_text("secret")
    driver, pids = run_driver(root, mode)
    try:
        # The agent carries no marker: only the watchdog's snapshot of the tree can find it.
        assert wait_for(lambda: pids["agent"] in watched(root), timeout=15), \
            f"the watchdog never recorded the agent {pids['agent']}: {watched(root)}"
        if mode == "kill":
            driver.send_signal(signal.SIGKILL)
        else:
            driver.stdin.write("close\n")
            driver.stdin.flush()
            assert driver.stdout.readline().strip() == "closed"
        gone = wait_for(lambda: not alive(pids["tagged"]) and not alive(pids["agent"])
                        and not alive(pids["watchdog"]), timeout=15)
        assert gone, {k: alive(v) for k, v in pids.items()}
        assert not root.exists()
        assert alive(pids["untagged"])  # a descendant of the driver, but not of the session
        if mode == "close":
            assert alive(driver.pid)  # a normal stop never touches the driver
    finally:
        cleanup(driver, pids)
