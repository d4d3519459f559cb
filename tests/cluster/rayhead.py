"""Start and stop throwaway Ray nodes for the cluster tests, touching no other Ray on the machine.

Used by tests/orchestrator/test_join_cluster.py, tests/cluster/test_multinode_ray.py (a head and
two worker raylets, one killed mid-sweep) and tests/cluster/plain_install.py, which runs inside
the plain-install venv, so this module imports only the standard library and psutil (a groktune
dependency). Every node has its own --temp-dir: it is on its processes' command lines, so a
node is found, stopped or killed by it alone.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
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
    _signal_all(procs, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    _signal_all(alive, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    return [p.pid for p in procs]


def _signal_all(procs: list, sig: int) -> None:
    """Send `sig` to each process; one that has already gone is skipped."""
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def start_node(temp_dir: str | Path, env: dict, *, head_port: int | None = None, join: str | None = None,
               num_cpus: int = 1, resources: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """`ray start` of one node on loopback with its own temp dir and free ports.

    Args:
        temp_dir: the node's --temp-dir (short: Ray's socket paths must fit in ~104 bytes).
        env: the environment of `ray start` (HOME with its ~/.ray/auth_token, RAY_AUTH_MODE ...).
        head_port: start a head with its GCS on this port; else `join` must be given.
        join: HOST:PORT of the head's GCS, for a worker node.
        num_cpus: the node's CPUs.
        resources: custom resources, e.g. {"node_w1": 1}, so placement is visible in Ray's state.
        timeout: seconds `ray start` may take.
    Returns:
        The finished `ray start` (check its returncode).
    """
    cmd = ["ray", "start", f"--num-cpus={num_cpus}", f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1",
           "--disable-usage-stats", f"--resources={json.dumps(resources or {})}",
           # Free ports for everything that would collide with another Ray on this machine.
           *(f"--{flag}={free_port()}" for flag in ("node-manager-port", "object-manager-port",
                                                    "dashboard-agent-listen-port", "metrics-export-port",
                                                    "runtime-env-agent-port"))]
    if head_port is not None:
        cmd += ["--head", f"--port={head_port}", "--include-dashboard=false"]
        try:
            import grpc  # noqa: F401  (with Ray Client installed, Ray would take port 10001)
            cmd.append(f"--ray-client-server-port={free_port()}")
        except ImportError:
            pass
    else:
        cmd.append(f"--address={join}")
    # Its own session: `ray start` daemonises the node's processes, which must not share the
    # test's process group (a Ctrl-C of the test would reach them before the fixture's teardown).
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, start_new_session=True)


def node_id_of(temp_dir: str | Path) -> str | None:
    """The Ray node id of the node started with `temp_dir` (Ray names per-node port files after it)."""
    for f in Path(temp_dir, "session_latest").glob("dashboard_agent_listen_port_*"):
        return f.name.rsplit("_", 1)[1]
    return None


def kill_node(temp_dir: str | Path) -> list[int]:
    """SIGKILL every process of the node started with `temp_dir` at once: a node crash, not a stop."""
    procs = processes_of(temp_dir)
    _signal_all(procs, signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)
    return [p.pid for p in procs]
