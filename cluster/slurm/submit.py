"""Write a sweep's sbatch script into its experiment dir, submit it, and ask Slurm about it.

    job = plan_job(cfg, name="modmul", storage=Path("sweeps"))
    paths = write_job(job, script, dump_config(cfg))   # STORAGE/NAME/slurm/{job.sbatch,config.yaml}
    job_id = sbatch(paths.script)                       # UserError with one line if refused

Slurm is reached only through its commands (sbatch, squeue, scontrol), so what runs is what a
user would type.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cluster.slurm.render import SweepJob
from groktune.errors import UserError
from groktune.layout import CONFIG, SLURM_DIR

SCRIPT_NAME = "job.sbatch"
CONFIG_NAME = CONFIG  # the sweep config the job runs, in the job folder
JOB_ID_NAME = "job_id"


@dataclass
class JobFiles:
    script: Path
    config: Path
    created_experiment_dir: bool
    """True when write_job made the experiment dir (so a refused submission can remove it)."""


def plan_job(name: str, storage: Path, workdir: Path | None = None) -> SweepJob:
    """Absolute paths for a sweep submitted from here, using this Python's environment."""
    storage = storage.expanduser().resolve()
    return SweepJob(
        name=name,
        storage=storage,
        config=storage / name / SLURM_DIR / CONFIG_NAME,
        workdir=(workdir or Path.cwd()).resolve(),
        bin_dir=Path(sys.executable).parent,
    )


def check_fresh(job: SweepJob) -> None:
    """Refuse to submit over an existing experiment (one line saying how to continue it)."""
    if job.experiment_dir.exists() and any(job.experiment_dir.iterdir()):
        hint = ""
        if (job.slurm_dir / SCRIPT_NAME).is_file():
            hint = f"; to continue it run: sbatch {job.slurm_dir / SCRIPT_NAME}"
        raise UserError(f"{job.experiment_dir}: already holds an experiment; choose another --name{hint}")


def write_job(job: SweepJob, script: str, config_text: str) -> JobFiles:
    """Write the resolved config and the script (executable) into STORAGE/NAME/slurm/."""
    created = not job.experiment_dir.exists()
    job.slurm_dir.mkdir(parents=True, exist_ok=True)
    job.config.write_text(config_text)
    path = job.slurm_dir / SCRIPT_NAME
    path.write_text(script)
    path.chmod(0o755)
    return JobFiles(path, job.config, created)


def find_sbatch() -> str:
    """The sbatch executable, or a one-line UserError."""
    exe = shutil.which("sbatch")
    if exe is None:
        raise UserError(
            "sbatch: not found on PATH; run this on a Slurm login node, or add --dry-run to only print the script"
        )
    return exe


def sbatch(script: Path, exe: str | None = None) -> str:
    """Submit `script`; return the job id. A refusal becomes a one-line UserError with Slurm's reason."""
    exe = exe or find_sbatch()
    try:
        proc = subprocess.run([exe, "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise UserError("sbatch: no answer from Slurm within 120 s; is slurmctld reachable?") from None
    if proc.returncode != 0:
        raise UserError(f"sbatch refused the job: {_last_error_line(proc.stderr) or f'exit status {proc.returncode}'}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise UserError(f"sbatch: unexpected answer {proc.stdout.strip()!r}; expected a job id")
    (script.parent / JOB_ID_NAME).write_text(job_id + "\n")
    return job_id


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    for prefix in ("sbatch: error: ", "sbatch: "):
        if line.startswith(prefix):
            line = line[len(prefix):]
    return line


def _run(args: list[str]) -> subprocess.CompletedProcess:
    exe = shutil.which(args[0])
    if exe is None:
        raise UserError(f"{args[0]}: not found on PATH; run this on a Slurm login node")
    return subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=60)


def job_info(job_id: str) -> dict[str, str] | None:
    """`scontrol show job` as a dict, or None when Slurm no longer knows the job."""
    if not job_id.isdigit():
        raise UserError(f"job id: got {job_id!r}, expected a number such as 1234")
    proc = _run(["scontrol", "show", "job", "-o", job_id])
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return None
        raise UserError(f"scontrol: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    info: dict[str, str] = {}
    for token in proc.stdout.split():
        key, sep, value = token.partition("=")
        if sep:
            info[key] = value
    return info


def experiment_dir_of(info: dict[str, str]) -> Path | None:
    """A groktune job's experiment dir: its script is STORAGE/NAME/slurm/job.sbatch."""
    command = Path(info.get("Command", ""))
    if command.name == SCRIPT_NAME and command.parent.name == SLURM_DIR:
        return command.parent.parent
    return None


def list_jobs() -> list[dict[str, str]]:
    """This user's queued or running groktune jobs (name starts with groktune-)."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or str(os.getuid())
    proc = _run(["squeue", "-h", "-u", user, "-o", "%i|%j|%T|%M|%l|%D|%R"])
    if proc.returncode != 0:
        raise UserError(f"squeue: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    keys = ("JobId", "JobName", "JobState", "RunTime", "TimeLimit", "NumNodes", "Reason")
    rows = [dict(zip(keys, line.split("|", 6))) for line in proc.stdout.splitlines() if line.strip()]
    return [row for row in rows if row.get("JobName", "").startswith("groktune-")]
