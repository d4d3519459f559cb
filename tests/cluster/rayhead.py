"""Start and stop a throwaway Ray head for the join tests, touching no other Ray on the machine.

Used by tests/orchestrator/test_join_cluster.py and by tests/cluster/plain_install.py, which runs
inside the plain-install venv, so this module imports only the standard library and psutil (a
groktune dependency).
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import psutil


def free_port() -> int:
    """A TCP port free on loopback right now (the kernel's pick, outside Ray's worker range)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    """True once something accepts TCP connections at host:port, False after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def processes_of(temp_dir: str | Path) -> list[psutil.Process]:
    """The Ray processes started with `temp_dir` (it is on their command lines) and their children."""
    marker = str(temp_dir)
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in arg for arg in proc.info["cmdline"] or ()):
                found[proc.pid] = proc
                found.update((c.pid, c) for c in proc.children(recursive=True))
        except psutil.Error:
            continue
    return list(found.values())


def stop_head(temp_dir: str | Path, grace: float = 5.0) -> list[int]:
    """TERM, then KILL, every process of the Ray started with `temp_dir`; returns their pids."""
    procs = processes_of(temp_dir)
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    return [p.pid for p in procs]
