"""SlurmConfig -> the sbatch script that runs a groktune sweep on a Ray cluster in one allocation.

    script = render_script(SlurmConfig(nodes=2, cpus_per_node=16, time="08:00:00"), job)

The template is cluster/slurm/template.sbatch.tmpl (read it: it is the script, with `{{name}}`
holes). Every value is shell-quoted here; the only shell expansion a user string may ask for is
`{job_id}` in `temp_dir`. Patterns follow Ray's "Deploying on Slurm" guide (explicit head and
worker `srun ... ray start --block`, configurable ports, since `ray symmetric-run` does not suit
shared nodes) and lingua's stool.py (a pre-limit signal and a requeue).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

TEMPLATE = "template.sbatch.tmpl"
_HOLE = re.compile(r"\{\{(\w+)\}\}")
_TIME = re.compile(r"^(?:(\d+)-)?(\d{1,3}):(\d{2}):(\d{2})$")
_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.,:@+%-]+$")
STOP_RAY_S = 20  # the template's bound on stopping Ray before it requeues


@dataclass
class RayPorts:
    """Ports of the Ray processes; 0 lets Ray pick a free one. Defaults are Ray's own."""

    gcs: int = 6379
    """The head's GCS port: the cluster address is HEAD_IP:gcs."""
    client_server: int = 10001
    node_manager: int = 0
    object_manager: int = 0
    min_worker: int = 10002
    max_worker: int = 19999
    dashboard: int = 8265
    """Only used when SlurmConfig.dashboard is on (bound to the head's 127.0.0.1)."""
    dashboard_agent_listen: int = 52365
    dashboard_agent_grpc: int = 0
    metrics_export: int = 0
    runtime_env_agent: int = 0

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0 <= value <= 65535:
                raise ValueError(f"{f.name}: got {value}, expected a port in 0..65535 (0 = Ray picks)")
        if self.gcs == 0:
            raise ValueError("gcs: got 0; the head needs a fixed port that workers and the driver dial")
        if not 0 < self.min_worker <= self.max_worker:
            raise ValueError(f"min_worker..max_worker: got {self.min_worker}..{self.max_worker}, expected a range")


@dataclass
class SlurmConfig:
    """What `groktune slurm submit` asks Slurm and Ray for. CLI flags set the first fields;
    `--opt key=value` sets any field (e.g. --opt ports.gcs=6380 --opt setup='["module load cuda"]')."""

    nodes: int = 1
    cpus_per_node: int = 4
    """Slurm --cpus-per-task (one task per node), and Ray's --num-cpus on each node."""
    gpus_per_node: int = 0
    time: str = "01:00:00"
    """Time limit, [D-]HH:MM:SS."""
    partition: str = ""
    account: str = ""
    mem: str = ""
    """Memory per node as Slurm takes it (e.g. 32G); empty = the site's default."""
    exclusive: bool = False
    signal_lead_s: int = 120
    """Seconds before the time limit at which Slurm sends USR1 (stop, save, requeue)."""
    stop_grace_s: int = 60
    """Seconds the sweep driver gets to save its state after USR1/TERM before it is killed."""
    join_timeout_s: int = 300
    """Seconds to wait for all nodes to join the Ray cluster."""
    ports: RayPorts = field(default_factory=RayPorts)
    temp_dir: str = "/tmp/ray-groktune-{job_id}"
    """Ray's temp dir on each node ({job_id} is the Slurm job id); Ray's sockets live here, so
    keep it short (Unix socket paths are limited to 107 bytes)."""
    dashboard: bool = False
    """Start Ray's dashboard, bound to the head node's 127.0.0.1 (reach it with ssh -L)."""
    head_ip: str = ""
    """The head's IP for Ray; empty = the head node's NodeAddr as Slurm knows it, resolved."""
    setup: list[str] = field(default_factory=list)
    """Shell lines run before Ray starts, e.g. ["module load cuda/12.4"]."""
    extra_sbatch: list[str] = field(default_factory=list)
    """More sbatch options, e.g. ["--qos=high", "--constraint=a100"]."""

    def validate(self) -> None:
        for name in ("nodes", "cpus_per_node", "signal_lead_s", "stop_grace_s", "join_timeout_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: got {getattr(self, name)}, must be >= 1")
        if self.gpus_per_node < 0:
            raise ValueError(f"gpus_per_node: got {self.gpus_per_node}, must be >= 0")
        for name, high in (("nodes", 100_000), ("cpus_per_node", 4096), ("gpus_per_node", 64),
                           ("signal_lead_s", 86_400), ("stop_grace_s", 86_400), ("join_timeout_s", 86_400)):
            if getattr(self, name) > high:
                raise ValueError(f"{name}: got {getattr(self, name)}, must be <= {high}")
        limit = time_limit_seconds(self.time)
        if limit <= self.signal_lead_s:
            raise ValueError(
                f"time: got {self.time} ({limit} s), must exceed signal_lead_s ({self.signal_lead_s} s), "
                "or the stop signal would come at once"
            )
        if self.stop_grace_s + STOP_RAY_S + 10 > self.signal_lead_s:
            raise ValueError(
                f"stop_grace_s: got {self.stop_grace_s}, must be <= signal_lead_s - {STOP_RAY_S + 10} "
                f"({self.signal_lead_s - STOP_RAY_S - 10}) so the job can stop Ray and requeue before its time limit"
            )
        for name in ("partition", "account", "mem"):
            value = getattr(self, name)
            if value and not _SLURM_NAME.fullmatch(value):
                raise ValueError(f"{name}: got {value!r}, expected letters, digits and _.,:@+%-")
        for option in self.extra_sbatch:
            if not option.startswith("--") or not option.isprintable():
                raise ValueError(f"extra_sbatch: got {option!r}, expected one option such as '--qos=high'")
        if not self.temp_dir.isprintable() or not self.temp_dir.startswith("/"):
            raise ValueError(f"temp_dir: got {self.temp_dir!r}, expected an absolute path")
        if self.head_ip and not re.fullmatch(r"[0-9A-Za-z.:_-]+", self.head_ip):
            raise ValueError(f"head_ip: got {self.head_ip!r}, expected an IP address or host name")
        if any(not line.isprintable() for line in self.setup):
            raise ValueError("setup: one shell command per list item, without newlines")


@dataclass
class SweepJob:
    """The sweep a script runs: where its config is and where results go (absolute paths)."""

    name: str
    storage: Path
    config: Path
    """The resolved experiment YAML saved with the experiment (what the job actually runs)."""
    workdir: Path
    bin_dir: Path
    """Directory holding the `groktune`, `ray` and `python` this job uses (the submitter's venv)."""

    @property
    def experiment_dir(self) -> Path:
        return self.storage / self.name

    @property
    def slurm_dir(self) -> Path:
        return self.experiment_dir / "slurm"


def time_limit_seconds(text: str) -> int:
    """'[D-]HH:MM:SS' -> seconds; ValueError naming the format otherwise."""
    m = _TIME.fullmatch(text)
    if not m or int(m.group(3)) >= 60 or int(m.group(4)) >= 60:
        raise ValueError(f"time: got {text!r}, expected [D-]HH:MM:SS such as 04:00:00 or 1-12:00:00")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def sbatch_directives(cfg: SlurmConfig, job: SweepJob) -> list[str]:
    """The #SBATCH lines: resources, time, log file, requeue and the pre-limit signal."""
    lines = [
        f"--job-name=groktune-{job.name}",
        f"--nodes={cfg.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={cfg.cpus_per_node}",
    ]
    if cfg.gpus_per_node:
        lines.append(f"--gpus-per-node={cfg.gpus_per_node}")
    if cfg.mem:
        lines.append(f"--mem={cfg.mem}")
    lines.append(f"--time={cfg.time}")
    if cfg.partition:
        lines.append(f"--partition={cfg.partition}")
    if cfg.account:
        lines.append(f"--account={cfg.account}")
    if cfg.exclusive:
        lines.append("--exclusive")
    lines += [
        f"--chdir={job.workdir}",
        f"--output={job.slurm_dir}/%j.out",
        "--open-mode=append",  # a requeued run appends to the same log
        "--requeue",
        f"--signal=B:USR1@{cfg.signal_lead_s}",  # B: only this script; it tells the driver
        *cfg.extra_sbatch,
    ]
    return [f"#SBATCH {line}" for line in lines]


def ray_start_args(cfg: SlurmConfig, head: bool) -> list[str]:
    """`ray start` options for the head or a worker: resources, ports, temp dir, dashboard."""
    p = cfg.ports
    args = [f"--num-cpus={cfg.cpus_per_node}", f"--num-gpus={cfg.gpus_per_node}", '--temp-dir="$RAY_TEMP_DIR"']
    if head:
        args += ['--node-ip-address="$head_ip"', '--port="$RAY_PORT"', f"--ray-client-server-port={p.client_server}"]
        if cfg.dashboard:
            args += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={p.dashboard}"]
        else:
            args.append("--include-dashboard=false")
    optional = {
        "--node-manager-port": p.node_manager,
        "--object-manager-port": p.object_manager,
        "--dashboard-agent-listen-port": p.dashboard_agent_listen,
        "--dashboard-agent-grpc-port": p.dashboard_agent_grpc,
        "--metrics-export-port": p.metrics_export,
        "--runtime-env-agent-port": p.runtime_env_agent,
    }
    args += [f"{flag}={port}" for flag, port in optional.items() if port]
    args += [f"--min-worker-port={p.min_worker}", f"--max-worker-port={p.max_worker}", "--disable-usage-stats"]
    return args


def _continued(args: list[str], indent: int) -> str:
    pad = " " * indent
    return " \\\n".join(pad + a for a in args)


def _shell_path_with_job_id(path: str) -> str:
    """Quote a path for bash, turning `{job_id}` into "$SLURM_JOB_ID"."""
    return '"$SLURM_JOB_ID"'.join(shlex.quote(part) if part else "" for part in path.split("{job_id}"))


def render_script(cfg: SlurmConfig, job: SweepJob, created: str = "") -> str:
    """The complete sbatch script text for this config and sweep."""
    values = {
        "name": job.name,
        "created": created or "(unknown date)",
        "nodes": str(cfg.nodes),
        "signal_lead_s": str(cfg.signal_lead_s),
        "stop_grace_s": str(cfg.stop_grace_s),
        "stop_ray_s": str(STOP_RAY_S),
        "join_timeout_s": str(cfg.join_timeout_s),
        "dashboard_note": (
            "the dashboard listens on the head's 127.0.0.1 only" if cfg.dashboard else "no dashboard is started"
        ),
        "sbatch_directives": "\n".join(sbatch_directives(cfg, job)),
        "bin_dir": shlex.quote(str(job.bin_dir)),
        "setup": "\n".join(cfg.setup) if cfg.setup else "# (no setup lines; SlurmConfig.setup adds some)",
        "experiment_dir": shlex.quote(str(job.experiment_dir)),
        "config": shlex.quote(str(job.config)),
        "temp_dir": _shell_path_with_job_id(cfg.temp_dir),
        "gcs_port": str(cfg.ports.gcs),
        "head_ip": shlex.quote(cfg.head_ip) if cfg.head_ip else '$(node_ip "$head_node")',
        "head_args": _continued(ray_start_args(cfg, head=True), 8),
        "worker_args": _continued(ray_start_args(cfg, head=False), 12),
        "name_arg": shlex.quote(job.name),
        "storage": shlex.quote(str(job.storage)),
    }
    template = resources.files("cluster.slurm").joinpath(TEMPLATE).read_text()
    missing = sorted(set(_HOLE.findall(template)) - values.keys())
    if missing:
        raise KeyError(f"{TEMPLATE}: no value for {', '.join(missing)}")
    return _HOLE.sub(lambda m: values[m.group(1)], template)
