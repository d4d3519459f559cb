"""Separate network stacks on this machine, one per pretend host, for the two-node Slurm tests.

    net = NetnsNetwork.create(hosts=2)    # bridge 10.213.N.1, hosts at 10.213.N.2, 10.213.N.3
    net.run_in(0, ["slurmd", ...])        # a daemon started inside host 0's network namespace
    net.destroy()                         # processes inside killed, namespaces and links removed

Why namespaces: two Ray nodes sharing one network stack share ports, and a Slurm job's Ray
ports are per job, not per node (cluster/slurm/render.py: a real cluster has one node per
host). Each pretend host gets its own stack (own loopback, own ports, its own address on a
bridge), so the head and the worker bind the same port numbers without colliding and report
distinct node IPs, as on two machines. Only the 10.213.N.0/24 addresses of this bridge are
used; the machine's own interfaces, routes and firewall are not touched. Needs root
(CAP_NET_ADMIN) and `ip` (iproute2); `nsenter` (util-linux) enters a namespace.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cluster.runtime import process_alive

PREFIX = "10.213"
NETNS_DIR = Path("/run/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _subnet_in_use(subnet: str) -> bool:
    """True when an interface of this machine already has an address in `subnet`.0/24."""
    return f" {subnet}." in _ip("-4", "-o", "addr", "show").stdout


@dataclass
class NetnsNetwork:
    tag: str
    """Suffix of every name this network created (bridge gtbrTAG, namespaces gtTAG-I, veths gtvTAG-I)."""
    subnet: str
    """The /24 prefix, e.g. 10.213.7: the bridge is .1, host i is .(i + 2)."""
    hosts: int

    @property
    def bridge(self) -> str:
        return f"gtbr{self.tag}"

    @property
    def gateway(self) -> str:
        """The bridge's address in the machine's own namespace (where slurmctld listens)."""
        return f"{self.subnet}.1"

    def namespace(self, i: int) -> str:
        return f"gt{self.tag}-{i}"

    def address(self, i: int) -> str:
        return f"{self.subnet}.{i + 2}"

    @classmethod
    def create(cls, hosts: int) -> NetnsNetwork:
        """A bridge in this namespace plus `hosts` namespaces wired to it by veth pairs.

        Args:
            hosts: how many pretend hosts (namespaces) to create.

        Returns:
            The network; call destroy() when done (it also undoes a half-made network).
        """
        # A free /24 and names that no other test run on this machine uses right now.
        for n in [os.getpid() % 200 + 20, *range(20, 220)]:
            if not _subnet_in_use(f"{PREFIX}.{n}") and not Path(f"/sys/class/net/gtbr{n}").exists():
                break
        else:
            raise RuntimeError(f"no free {PREFIX}.N.0/24 subnet for the test network")
        net = cls(tag=str(n), subnet=f"{PREFIX}.{n}", hosts=hosts)
        try:
            _ip("link", "add", net.bridge, "type", "bridge")
            _ip("addr", "add", f"{net.gateway}/24", "dev", net.bridge)
            _ip("link", "set", net.bridge, "up")
            for i in range(hosts):
                ns, veth = net.namespace(i), f"gtv{net.tag}-{i}"
                _ip("netns", "add", ns)
                _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("link", "set", veth, "master", net.bridge, "up")
                _ip("-n", ns, "addr", "add", f"{net.address(i)}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                # Without a default route, programs that find "their" address by routing towards
                # a public one (Ray does) would see no address at all.
                _ip("-n", ns, "route", "add", "default", "via", net.gateway)
        except BaseException:
            net.destroy()
            raise
        return net

    def enter(self, i: int) -> list[str]:
        """The command prefix that runs a program in host i's network namespace (only)."""
        return ["nsenter", f"--net={NETNS_DIR / self.namespace(i)}", "--"]

    def run_in(self, i: int, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run `args` in host i's network namespace and wait for it (daemons fork and return)."""
        return subprocess.run(self.enter(i) + args, env=env, capture_output=True, text=True, check=True, timeout=60)

    def pids(self, i: int) -> list[int]:
        """Processes living in host i's network namespace."""
        proc = _ip("netns", "pids", self.namespace(i), check=False)
        return [int(p) for p in proc.stdout.split()]

    def destroy(self, timeout: float = 10.0) -> list[int]:
        """Kill what still runs inside the namespaces (TERM, then KILL), remove them and the bridge.

        Returns:
            The pids that were still running inside and had to be killed.
        """
        leftover: list[int] = []
        for i in range(self.hosts):
            if (NETNS_DIR / self.namespace(i)).exists():
                leftover += self.pids(i)
        _signal(leftover, 15)
        deadline = time.monotonic() + timeout
        while any(process_alive(p) for p in leftover) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal([p for p in leftover if process_alive(p)], 9)
        for i in range(self.hosts):
            _ip("netns", "del", self.namespace(i), check=False)  # its veth pair goes with it
        _ip("link", "del", self.bridge, check=False)
        return leftover


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
