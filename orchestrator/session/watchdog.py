"""The watchdog that makes an embedded Ray session end with its driver, even after SIGKILL.

    python -m orchestrator.session.watchdog ROOT DRIVER_PID      (started by orchestrator.session.start)

Ray's own reaper kills the driver's process group when the driver dies, but Ray's agents and
workers are not all in that group and outlive a SIGKILLed driver. This process is
started in a session of its own (so Ray's reaper and a terminal's Ctrl-C do not take it down
first) with a pipe on stdin whose only writer is the driver: EOF on stdin means the driver has
closed it (a normal stop) or has died (any signal). Until then it records, twice a second, the
driver's descendants (listed in ROOT/WATCHDOG_PIDS, for a check from outside); then it stops
exactly the processes of this Ray session and removes ROOT (the session's private temp dir: Ray's
session dir and the token file).

A process belongs to the session when it carries MARKER=ROOT in its environment (Ray passes
the driver's environment on to gcs_server, the raylet and the workers), or when a snapshot saw it
below such a process in the driver's tree (the raylet starts its agents with an environment of
their own). Snapshotted processes are matched by pid AND start time, so a recycled pid is never
hit. Nothing else is touched: not the driver's other children, not other Ray clusters, not a
cluster joined with --address (no watchdog runs then).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import sys
from pathlib import Path

import psutil

from groktune.layout import WATCHDOG_PIDS

# The environment variable that tags the processes of one embedded session with its root dir.
MARKER = "GROKTUNE_RAY_SESSION"
POLL_S = 0.5
TERM_GRACE_S = 3.0


def descendants(driver_pid: int, root: str) -> dict[int, float]:
    """{pid: create_time} of the driver's live descendants that belong to the session.

    A descendant belongs when it, or one of its ancestors below the driver, carries
    MARKER=root: Ray's agents get an environment of their own from the raylet, but their
    parent (the raylet) carries the marker.

    Args:
        driver_pid: the sweep's driver process.
        root: the session's private temp dir.

    Returns:
        An empty dict when the driver is gone.
    """
    try:
        children = psutil.Process(driver_pid).children(recursive=True)
    except psutil.Error:
        return {}
    parent, started, tagged = {}, {}, set()
    for proc in children:
        try:
            parent[proc.pid], started[proc.pid] = proc.ppid(), proc.create_time()
            if proc.environ().get(MARKER) == root:
                tagged.add(proc.pid)
        except psutil.Error:
            continue

    def belongs(pid: int) -> bool:
        while pid in parent:  # walk up to the driver
            if pid in tagged:
                return True
            pid = parent[pid]
        return False

    return {pid: t for pid, t in started.items() if pid != os.getpid() and belongs(pid)}


def session_processes(root: str, known: dict[int, float], spare: set[int]) -> list:
    """The live processes of the session rooted at `root` (see the module docstring).

    Args:
        root: the session's private temp dir, the value of MARKER in its processes.
        known: {pid: create_time} recorded while the driver lived.
        spare: pids never to touch (this watchdog, the driver while it lives).

    Returns:
        psutil.Process objects.
    """
    found = {}
    for pid, started in known.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == started and pid not in spare:
                found[pid] = proc
        except psutil.Error:
            continue
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid in spare:
            continue
        try:
            if proc.environ().get(MARKER) == root:
                found[proc.pid] = proc
        except psutil.Error:  # gone, a zombie, or another user's process
            continue
    return list(found.values())


def stop_session(root: str, known: dict[int, float], spare: set[int]) -> int:
    """SIGTERM the session's processes, SIGKILL those left after a grace period, remove root.

    Returns:
        How many processes were signalled.
    """
    procs = session_processes(root, known, spare)
    _signal(procs, psutil.Process.terminate)
    _, alive = psutil.wait_procs(procs, timeout=TERM_GRACE_S)
    _signal(alive, psutil.Process.kill)
    psutil.wait_procs(alive, timeout=TERM_GRACE_S)
    # A second pass: a worker the raylet was starting while we signalled it.
    late = session_processes(root, {}, spare)
    _signal(late, psutil.Process.kill)
    shutil.rmtree(root, ignore_errors=True)
    return len(procs) + len(late)


def _signal(procs, send) -> None:
    """Send `send` (Process.terminate or .kill) to each process; one already gone is fine."""
    for proc in procs:
        try:
            send(proc)
        except psutil.Error:
            pass


def write_known(root: str, known: dict[int, float]) -> None:
    """Write the pids the watchdog will stop to ROOT/WATCHDOG_PIDS (atomically), so that what it
    has seen can be checked from outside; a root already gone is left gone."""
    tmp = Path(root) / f".{WATCHDOG_PIDS}.tmp"
    try:
        tmp.write_text(json.dumps(sorted(known)))
        os.replace(tmp, Path(root) / WATCHDOG_PIDS)
    except OSError:
        pass


def watch(root: str, driver_pid: int) -> None:
    """Record the driver's descendants until stdin reaches EOF, then stop the session."""
    known: dict[int, float] = {}
    stdin = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([stdin], [], [], POLL_S)
        if ready and not os.read(stdin, 4096):
            break
        seen = descendants(driver_pid, root)
        if seen.keys() - known.keys():
            known.update(seen)
            write_known(root, known)
    spare = {os.getpid(), driver_pid}
    stop_session(root, known, spare)


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m orchestrator.session.watchdog ROOT DRIVER_PID`.

    Args:
        argv: [ROOT, DRIVER_PID] (default sys.argv[1:]).

    Returns:
        0 once the session is stopped and ROOT removed.
    """
    args = sys.argv[1:] if argv is None else argv
    root, driver_pid = str(Path(args[0]).resolve()), int(args[1])
    watch(root, driver_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
