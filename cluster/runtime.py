"""Small steps the generated cluster scripts run inside a job (Slurm batch script, RayJob).

    python -m cluster.runtime wait-nodes HEAD_IP:PORT N [--timeout S] [--watch-pids "P1 P2"]
        exit 0 once N Ray nodes are alive; 1 on timeout or when a watched process (the srun
        steps running `ray start`) has died, with one line saying which.
    python -m cluster.runtime can-resume EXPERIMENT_DIR
        exit 0 when the directory holds a Ray Tune experiment state to resume, 1 otherwise.

Both talk to Ray with the job's environment (RAY_AUTH_MODE=token and the token).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path


def process_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _dead(pids: list[int]) -> list[int]:
    return [pid for pid in pids if not process_alive(pid)]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_nodes(address: str, expected: int, timeout: float, watch: list[int], poll: float = 1.0) -> str | None:
    """Wait until `expected` alive nodes have joined the Ray cluster at `address`.

    Returns None on success, else a one-line reason.
    """
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while not _port_open(host, int(port)):  # connect only once the GCS listens
        if dead := _dead(watch):
            return f"Ray process(es) {dead} exited before the head came up"
        if time.monotonic() > deadline:
            return f"no Ray head listening at {address} after {timeout:.0f}s"
        time.sleep(0.5)

    # deferred: Ray loads only once the head is up (this module's helpers run before it)
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    try:
        alive = 0
        while True:
            alive = sum(1 for node in ray.nodes() if node.get("Alive"))
            if alive >= expected:
                print(f"{alive}/{expected} Ray nodes joined at {address}", flush=True)
                return None
            if dead := _dead(watch):
                return f"Ray process(es) {dead} exited; {alive}/{expected} nodes joined"
            if time.monotonic() > deadline:
                return f"only {alive}/{expected} Ray nodes joined {address} after {timeout:.0f}s"
            time.sleep(poll)
    finally:
        ray.shutdown()


def can_resume(experiment_dir: Path) -> bool:
    """Whether `experiment_dir` holds Ray Tune experiment state (Tuner.can_restore)."""
    if not experiment_dir.is_dir():
        return False
    # deferred: Ray Tune only when there is an experiment folder to check
    from ray.tune import Tuner

    return Tuner.can_restore(str(experiment_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.runtime")
    sub = parser.add_subparsers(dest="step", required=True)
    w = sub.add_parser("wait-nodes", help="wait until N Ray nodes have joined")
    w.add_argument("address", help="HEAD_IP:PORT of the Ray head")
    w.add_argument("nodes", type=int)
    w.add_argument("--timeout", type=float, default=300.0)
    w.add_argument("--watch-pids", default="", help="space-separated pids that must stay alive")
    r = sub.add_parser("can-resume", help="exit 0 if the experiment dir can be resumed")
    r.add_argument("experiment_dir", type=Path)
    args = parser.parse_args(argv)

    if args.step == "can-resume":
        return 0 if can_resume(args.experiment_dir) else 1
    watch = [int(p) for p in args.watch_pids.split()]
    reason = wait_nodes(args.address, args.nodes, args.timeout, watch)
    if reason:
        print(f"groktune: error: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
