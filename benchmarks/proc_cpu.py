"""CPU seconds from /proc (Linux; nan elsewhere): per process, per process tree, whole machine.

Used by benchmarks/sweep_overhead.py to say where the cores went during a sweep.
"""

from __future__ import annotations

import os
from pathlib import Path


TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read_stat(pid: int) -> tuple[int, str, float]:
    """(parent pid, name, CPU seconds so far) of a live process from /proc (Linux); (-1, "", nan)
    if it is gone or there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1, "", float("nan")
    name, f = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
    return int(f[1]), name, (int(f[11]) + int(f[12])) / TICK  # utime + stime


def process_cpu(root_pid: int) -> dict[int, tuple[str, float]]:
    """pid -> (name, CPU seconds so far) of root_pid's live descendants: Ray's services, agents and
    workers."""
    procs = {int(d.name): read_stat(int(d.name)) for d in Path("/proc").glob("[0-9]*")}
    out, todo = {}, [root_pid]
    while todo:
        parent = todo.pop()
        for pid, (ppid, name, cpu) in procs.items():
            if ppid == parent:
                todo.append(pid)
                out[pid] = (name, cpu)
    return out


def machine_busy() -> float:
    """CPU seconds all processes on this machine have used since boot (/proc/stat; nan elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK
