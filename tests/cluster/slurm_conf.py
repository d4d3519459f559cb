"""The files of a throwaway Slurm under one temp dir (tests/cluster/local_slurm.py starts it):
slurm.conf for one or more nodes, the munge key, the state/spool/log folders.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def node_line(name: str) -> str:
    """The hardware line of `slurmd -C` (CPUs, sockets, memory), named `name`."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = [f for f in out.splitlines()[0].split() if not f.startswith(("NodeName=", "UpTime="))]
    return " ".join([f"NodeName={name}", *fields])


def slurm_conf(root: Path, node_lines: list[str], ctld: str, ctld_addr: str, ctld_port: int, slurmd_port: int) -> str:
    """The slurm.conf text of a cluster living under `root`.

    Args:
        root: the cluster's temp dir.
        node_lines: one `NodeName=... NodeAddr=...` line per node.
        ctld: the controller's host name; ctld_addr: the address slurmctld is reached at.
        ctld_port, slurmd_port: slurmctld's and every slurmd's port.

    Returns:
        The file's text. With several nodes the slurmd files carry the node name (%n): the
        slurmd share this machine's file system (multiple-slurmd mode).
    """
    tag = "-%n" if len(node_lines) > 1 else ""
    names = ",".join(line.split()[0].split("=")[1] for line in node_lines)
    nodes = "\n".join(f"{line} State=UNKNOWN" for line in node_lines)
    return f"""\
# A throwaway Slurm for groktune's tests (tests/cluster/local_slurm.py).
ClusterName=groktune-test
SlurmctldHost={ctld}({ctld_addr})
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket,cred_expire=10
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool{tag.replace("-", "/")}
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd{tag}.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd{tag}.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
{nodes}
PartitionName=debug Nodes={names} Default=YES MaxTime=INFINITE State=UP
"""


def make_root(root: Path | None) -> Path:
    """The cluster's temp dir with state/, spool/, log/ and munge/ (a fresh key)."""
    root = Path(tempfile.mkdtemp(prefix="gt-slurm-")) if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    # munged insists that every directory above its socket is searchable by all.
    root.chmod(0o711)
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(exist_ok=True)
    munge = root / "munge"
    munge.mkdir(mode=0o711, exist_ok=True)
    munge.chmod(0o711)
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    return root
