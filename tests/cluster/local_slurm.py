"""A throwaway Slurm cluster under a temp dir, for the integration tests.

    cluster = start()              # munged + slurmctld + slurmd, ~1 s
    cluster = start(nodes=2)       # two nodes, each slurmd in its own network namespace
    cluster.run("sbatch", ...)     # any Slurm client command against this cluster
    cluster.stop()                 # daemons stopped by their pid files, temp dir removed

By hand (as root, with Debian's slurmctld slurmd slurm-client munge installed):

    python -m tests.cluster.local_slurm up [--nodes 2]   # prints `export SLURM_CONF=...`
    python -m tests.cluster.local_slurm down DIR

What makes it work on machines without systemd or usable cgroups:
- proctrack/linuxproc + task/none and no cgroup.conf: with the cgroup plugins every job step
  fails while `sbatch --wait` still returns 0, so tests check outputs, not exit codes;
- a private munged (own key 0400, socket dir 0711, pid and log files) named in
  `AuthInfo=socket=...`, so the host's /etc/munge is never touched;
- `SlurmctldHost=HOST(127.0.0.1)` and `NodeAddr=127.0.0.1`: no DNS needed, nothing but
  loopback is used to reach the daemons; the node line comes from `slurmd -C`;
- `batch_sched_delay=0` starts batch jobs in ~0.3 s instead of ~3 s;
- `cred_expire=10`: Slurm holds a requeued job for cred_expire + 1 s (default 120 s) before
  it may start again; the preemption test would otherwise wait two minutes per requeue.

Two nodes (`start(nodes=2)`): Debian's slurmd is built with multiple-slurmd support (`slurmd -N
NAME`, per-node pid/spool/log files through %n), so both slurmd run on this machine; each runs
inside its own network namespace (tests/cluster/netns.py) with its own address, so each node's
job steps (a Ray head, a Ray worker) get a network stack of their own, as on two machines.
slurmctld listens in this machine's namespace on the bridge address; munge is a Unix socket
on the shared file system, reachable from every namespace.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cluster.runtime import process_alive
from tests.cluster.netns import NetnsNetwork
from tests.cluster.slurm_conf import make_root, node_line, slurm_conf

DAEMONS = ("slurmctld", "slurmd", "munged")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")
NETWORK_FILE = "netns"  # under the cluster's root: "TAG SUBNET HOSTS" of its namespaces


def missing_requirements(nodes: int = 1) -> str | None:
    """Why a local Slurm of `nodes` nodes cannot start here, or None when it can."""
    if os.geteuid() != 0:
        return "the local Slurm needs root (slurmd launches jobs as their user)"
    absent = [name for name in DAEMONS + CLIENTS if shutil.which(name) is None]
    if absent:
        return (
            f"not installed: {', '.join(absent)} "
            "(apt-get install -y slurmctld slurmd slurm-client munge)"
        )
    if nodes > 1 and not (shutil.which("ip") and shutil.which("nsenter")):
        return "two nodes need `ip` and `nsenter` (apt-get install -y iproute2 util-linux)"
    return None


def free_port() -> int:
    """A TCP port free on loopback right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalSlurm:
    root: Path
    """The temp dir holding slurm.conf, munge/, state/, spool/, log/ and pid files."""
    node: str
    """The first node's name (one node: the host's short name)."""
    cpus: int
    """CPUs of each node."""
    env: dict[str, str] = field(default_factory=dict)
    """os.environ plus SLURM_CONF: pass to every subprocess that talks to this cluster."""
    started_in: float = 0.0
    """Seconds from the first daemon start until every node was idle."""
    nodes: list[str] = field(default_factory=list)
    """Every node's name, in slurm.conf order."""
    net: NetnsNetwork | None = None
    """The nodes' network namespaces (two or more nodes only)."""

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster and capture its output."""
        return subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, check=check, timeout=timeout
        )

    def job_field(self, job_id: str, name: str) -> str:
        """One field of `scontrol show job` (e.g. JobState, Restarts), '' when absent."""
        out = self.run("scontrol", "show", "job", "-o", job_id, check=False).stdout
        for token in out.split():
            key, _, value = token.partition("=")
            if key == name:
                return value
        return ""

    def wait_job(self, job_id: str, timeout: float, poll: float = 0.2) -> str:
        """Wait until the job leaves PENDING/RUNNING/COMPLETING/REQUEUED; return its final state."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.job_field(job_id, "JobState")
            if state and state not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED"):
                return state
            time.sleep(poll)
        raise TimeoutError(f"job {job_id} still {state or 'unknown'} after {timeout:.0f}s")

    def logs(self) -> str:
        """The daemons' log tails, for failure messages."""
        parts = []
        for path in sorted((self.root / "log").glob("*.log")) + [self.root / "munge" / "munged.log"]:
            if path.exists():
                parts.append(f"--- {path.name}\n" + "\n".join(path.read_text().splitlines()[-30:]))
        return "\n".join(parts)

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Cancel every job of this cluster and wait until the queue is empty."""
        jobs = self.run("squeue", "-h", "-o", "%i", check=False).stdout.split()
        if not jobs:
            return
        self.run("scancel", *jobs, check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run("squeue", "-h", "-o", "%i", check=False).stdout.split():
                return
            time.sleep(0.2)

    def stop(self) -> None:
        """Cancel leftover jobs, stop the daemons by the pids in their pid files, in parallel,
        kill whatever still runs in the nodes' namespaces and remove them, then the temp dir."""
        if self.env:
            self.cancel_all()
        pid_files = [*self.root.glob("slurmd*.pid"), self.root / "slurmctld.pid", self.root / "munge" / "munged.pid"]
        with ThreadPoolExecutor(len(pid_files)) as pool:
            list(pool.map(_stop_by_pid_file, pid_files))
        if self.net is not None:
            self.net.destroy()
        shutil.rmtree(self.root, ignore_errors=True)


def _stop_by_pid_file(path: Path, timeout: float = 10.0) -> None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(pid):
        os.kill(pid, 9)


def _configure(root: Path, nodes: int) -> LocalSlurm:
    """Write slurm.conf for `nodes` nodes (creating their network namespaces when > 1)."""
    host = socket.gethostname().split(".")[0]
    hardware = node_line(host).split(" ", 1)[1]
    cpus = int(next(f for f in hardware.split() if f.startswith("CPUs=")).split("=")[1])
    net = None
    if nodes == 1:
        names, ctld_addr = [host], "127.0.0.1"
        lines = [f"NodeName={host} {hardware} NodeAddr=127.0.0.1"]
    else:
        net = NetnsNetwork.create(nodes)
        (root / NETWORK_FILE).write_text(f"{net.tag} {net.subnet} {net.hosts}\n")
        names, ctld_addr = [f"node{i + 1}" for i in range(nodes)], net.gateway
        # NodeHostname: every slurmd runs on this machine; -N NAME tells each which node it is.
        lines = [f"NodeName={name} NodeHostname={host} NodeAddr={net.address(i)} {hardware}"
                 for i, name in enumerate(names)]
    conf = slurm_conf(root, lines, host, ctld_addr, free_port(), free_port())
    (root / "slurm.conf").write_text(conf)
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    return LocalSlurm(root, names[0], cpus, env=env, nodes=names, net=net)


def start(root: Path | None = None, timeout: float = 30.0, nodes: int = 1) -> LocalSlurm:
    """Start munged, slurmctld and one slurmd per node under a new temp dir; wait until every
    node is idle.

    Args:
        root: the temp dir to use (default: a new one).
        timeout: seconds to wait for the nodes.
        nodes: 1 (the host itself, on loopback) or more (one network namespace per node).

    Returns:
        The running cluster; call stop() when done.
    """
    reason = missing_requirements(nodes)
    if reason:
        raise RuntimeError(reason)
    root = make_root(root)
    munge = root / "munge"
    try:
        cluster = _configure(root, nodes)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    t0 = time.monotonic()
    try:
        subprocess.run(
            ["munged", f"--key-file={munge}/munge.key", f"--socket={munge}/munge.socket",
             f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
             f"--seed-file={munge}/munged.seed"],
            check=True, capture_output=True, text=True,
        )
        conf = ["-f", str(cluster.conf)]
        subprocess.run(["slurmctld", *conf], env=cluster.env, check=True, capture_output=True, text=True)
        if cluster.net is None:
            subprocess.run(["slurmd", *conf], env=cluster.env, check=True, capture_output=True, text=True)
        for i, name in enumerate(cluster.nodes if cluster.net else []):
            cluster.net.run_in(i, ["slurmd", *conf, "-N", name], env=cluster.env)
        _wait_idle(cluster, timeout)
    except BaseException as err:
        detail = cluster.logs()
        cluster.stop()
        if isinstance(err, subprocess.CalledProcessError):
            raise RuntimeError(f"{err.cmd[0]} failed: {err.stderr.strip()}\n{detail}") from None
        if isinstance(err, TimeoutError):
            raise TimeoutError(f"{err}\n{detail}") from None
        raise
    cluster.started_in = time.monotonic() - t0
    return cluster


def _wait_idle(cluster: LocalSlurm, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        out = cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False)
        states = out.stdout.split()
        if states == ["idle"] * len(cluster.nodes):
            return
        time.sleep(0.05)
    raise TimeoutError(f"local Slurm nodes not idle after {timeout:.0f}s (states {states or 'unknown'})")


def attach(root: Path) -> LocalSlurm:
    """A LocalSlurm for a cluster started earlier under `root` (to stop it)."""
    net = None
    if (root / NETWORK_FILE).is_file():
        tag, subnet, hosts = (root / NETWORK_FILE).read_text().split()
        net = NetnsNetwork(tag, subnet, int(hosts))
    return LocalSlurm(root, "", 0, env={**os.environ, "SLURM_CONF": str(root / "slurm.conf")}, net=net)


def main(argv: list[str]) -> int:
    nodes = 1
    if argv[:1] == ["up"] and argv[1:2] == ["--nodes"] and len(argv) > 2 and argv[2].isdigit():
        nodes, argv = int(argv[2]), argv[:1] + argv[3:]
    if len(argv) in (1, 2) and argv[0] == "up" and nodes >= 1:
        cluster = start(Path(argv[1]) if len(argv) > 1 else None, nodes=nodes)
        print(f"# local Slurm ({', '.join(cluster.nodes)}) up in {cluster.started_in:.2f}s; stop with: "
              f"python -m tests.cluster.local_slurm down {cluster.root}")
        print(f"export SLURM_CONF={cluster.conf}")
        return 0
    if len(argv) == 2 and argv[0] == "down":
        root = Path(argv[1])
        if not (root / "slurm.conf").is_file():
            print(f"{root}: no slurm.conf here; not a local Slurm dir", file=sys.stderr)
            return 2
        attach(root).stop()
        return 0
    print("usage: python -m tests.cluster.local_slurm up [--nodes N] [DIR] | down DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
