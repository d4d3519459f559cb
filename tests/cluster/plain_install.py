"""A plain install (`pip install torch && pip install groktune`, no extras) can start the Ray head
exactly as the Slurm job script does and run a sweep that joins it with --address.
Run it with the plain venv's python, from anywhere:

    /path/to/plain-venv/bin/python tests/cluster/plain_install.py [--keep WORKDIR]

It renders the job script's environment section and head start (cluster.slurm.render.
head_start_script: the same env, token, ports and `ray start --head --block` flags), then runs
the job's own driver steps (`python -m cluster.runtime wait-nodes`, `groktune sweep --address`)
on configs/tiny_sweep.yaml, and checks trials.parquet. Exit 0 on success, 1 with the reason.
The head is stopped (TERM, then anything left of its temp dir is killed) however it ends.
Called by .ci/run and by tests/cluster/test_plain_install.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rayhead import stop_head  # this script's own directory (tests/cluster) is on sys.path

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "tiny_sweep.yaml"
SMALL = "--set search.num_samples=2 --set train.steps=100 --set search.verify.top=0"


def pick_job_id() -> int:
    """A stand-in SLURM_JOB_ID whose port block (gcs, agent, worker ports) is free right now."""
    import socket

    from cluster.slurm.render import PORT_BASE, PORT_BLOCK, PORT_BLOCKS

    for job_id in range(os.getpid(), os.getpid() + PORT_BLOCKS):
        base = PORT_BASE + (job_id % PORT_BLOCKS) * PORT_BLOCK
        try:
            for port in (base, base + 1, base + 2):
                with socket.socket() as s:
                    s.bind(("0.0.0.0", port))
        except OSError:
            continue
        return job_id
    raise SystemExit("plain install check: no free port block")


def run_check(work: Path) -> int:
    """Render, start the head, run the sweep against it; returns the exit status."""
    from cluster.slurm.render import SlurmConfig, SweepJob, head_start_script

    bin_dir = Path(sys.executable).parent
    job = SweepJob(name="tiny_sweep", storage=work / "results", config=CONFIG, workdir=work, bin_dir=bin_dir)
    job_id = pick_job_id()
    cfg = SlurmConfig(cpus_per_node=2, temp_dir=f"{tempfile.gettempdir()}/gtplain-{{job_id}}")
    then = ('python -m cluster.runtime wait-nodes "$ray_address" 1 --timeout 120 --watch-pids "$head_pid" '
            f'|| exit 1\ngroktune sweep "$CONFIG" {SMALL} --storage "{job.storage}" --address "$ray_address"')
    program = head_start_script(cfg, job, job_id, then)
    (work / "head_and_sweep.sh").write_text(program)
    temp_dir = cfg.temp_dir.replace("{job_id}", str(job_id))
    try:
        done = subprocess.run(["bash", str(work / "head_and_sweep.sh")], cwd=work, timeout=600,
                              env={**os.environ, "HOME": str(work / "home")})
    finally:
        stop_head(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    if done.returncode != 0:
        print(f"plain install check: head start + sweep exited {done.returncode}", file=sys.stderr)
        return 1
    import pandas as pd

    trials = pd.read_parquet(job.experiment_dir / "trials.parquet")
    if len(trials) != 2:
        print(f"plain install check: {len(trials)} trials in trials.parquet, expected 2", file=sys.stderr)
        return 1
    print(f"plain install check: OK (Ray Client deps present: {has_grpc()}; {len(trials)} trials)")
    return 0


def has_grpc() -> bool:
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work in this dir and keep it (default: a temp dir)")
    args = parser.parse_args()
    import cluster

    if Path(cluster.__file__).resolve().is_relative_to(REPO):
        # An editable install or the checkout on sys.path would not test what `pip install .` ships.
        print(f"plain install check: groktune comes from {cluster.__file__}, not an installed copy", file=sys.stderr)
        return 1
    work = args.keep or Path(tempfile.mkdtemp(prefix="gtplain-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "home").mkdir(exist_ok=True)
    try:
        return run_check(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
