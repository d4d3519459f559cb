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

from groktune.layout import SLURM_DIR

TEMPLATE = "template.sbatch.tmpl"
_HOLE = re.compile(r"\{\{(\w+)\}\}")
_TIME = re.compile(r"^(?:(\d+)-)?(\d{1,3}):(\d{2}):(\d{2})$")
_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.,:@+%-]+$")
STOP_RAY_S = 20  # the template's bound on stopping Ray before it requeues


# Ports left at 0 in RayPorts that two jobs on one node would fight over (Ray's fixed defaults
# 6379, 52365, 10001, 10002-19999) come from a block of PORT_BLOCK ports picked by the job id:
# PORT_BASE + (job id % PORT_BLOCKS) * PORT_BLOCK, all below Linux's ephemeral range (32768).
PORT_BASE = 20000
PORT_BLOCK = 500
PORT_BLOCKS = 25


@dataclass
class RayPorts:
    """Ports of the Ray processes. 0: gcs, dashboard_agent_listen and the worker range come from
    this job's port block (so jobs sharing a node do not collide); the others are left to Ray."""

    gcs: int = 0
    """The head's GCS port: the cluster address is HEAD_IP:gcs (0: block + 0)."""
    client_server: int = 0
    """Ray Client server port. The job does not use Ray Client (the driver runs on the head and
    joins the GCS address), and a plain install lacks it (grpcio); 0: none, or block + 2 when
    grpcio is installed (Ray would otherwise take 10001)."""
    node_manager: int = 0
    object_manager: int = 0
    min_worker: int = 0
    """Worker port range; 0 and 0: block + 10 .. block + 499."""
    max_worker: int = 0
    dashboard: int = 8265
    """Only used when SlurmConfig.dashboard is on (bound to the head's 127.0.0.1)."""
    dashboard_agent_listen: int = 0
    """0: block + 1."""
    dashboard_agent_grpc: int = 0
    metrics_export: int = 0
    runtime_env_agent: int = 0

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0 <= value <= 65535:
                raise ValueError(f"{f.name}: got {value}, expected a port in 0..65535 (0 = Ray picks)")
        if (self.min_worker, self.max_worker) != (0, 0) and not 0 < self.min_worker <= self.max_worker:
            raise ValueError(f"min_worker..max_worker: got {self.min_worker}..{self.max_worker}, "
                             "expected a range (or 0..0: this job's port block)")


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
        return self.experiment_dir / SLURM_DIR


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
    """`ray start` options for the head or a worker: resources, ports, temp dir, dashboard.

    Ports from the job's block are shell variables that port_lines() sets.
    """
    p = cfg.ports
    args = [f"--num-cpus={cfg.cpus_per_node}", f"--num-gpus={cfg.gpus_per_node}", '--temp-dir="$RAY_TEMP_DIR"']
    if head:
        args += ['--node-ip-address="$head_ip"', '--port="$RAY_PORT"', '"${RAY_CLIENT_ARGS[@]}"']
        if cfg.dashboard:
            args += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={p.dashboard}"]
        else:
            args.append("--include-dashboard=false")
    optional = {
        "--node-manager-port": p.node_manager,
        "--object-manager-port": p.object_manager,
        "--dashboard-agent-grpc-port": p.dashboard_agent_grpc,
        "--metrics-export-port": p.metrics_export,
        "--runtime-env-agent-port": p.runtime_env_agent,
    }
    args += [f"{flag}={port}" for flag, port in optional.items() if port]
    args += [f"--dashboard-agent-listen-port={p.dashboard_agent_listen or '$RAY_AGENT_PORT'}",
             f"--min-worker-port={p.min_worker or '$RAY_MIN_WORKER_PORT'}",
             f"--max-worker-port={p.max_worker or '$RAY_MAX_WORKER_PORT'}", "--disable-usage-stats"]
    return args


def port_lines(cfg: SlurmConfig) -> list[str]:
    """Shell lines setting this job's ports: fixed ones from cfg.ports, the rest from its block."""
    p = cfg.ports
    client = (f"RAY_CLIENT_ARGS=(--ray-client-server-port={p.client_server})" if p.client_server else
              "RAY_CLIENT_ARGS=()\n"
              "# Ray starts a Ray Client server on 10001 whenever grpcio is installed; not used here.\n"
              "python -c 'import grpc' 2>/dev/null && "
              "RAY_CLIENT_ARGS=(--ray-client-server-port=$((port_block + 2)))")
    return [
        f"port_block=$(( {PORT_BASE} + (SLURM_JOB_ID % {PORT_BLOCKS}) * {PORT_BLOCK} ))",
        f"RAY_PORT={p.gcs or '$port_block'}",
        "RAY_AGENT_PORT=$((port_block + 1))",
        "RAY_MIN_WORKER_PORT=$((port_block + 10))",
        f"RAY_MAX_WORKER_PORT=$((port_block + {PORT_BLOCK - 1}))",
        client,
    ]


def srun_resources(cfg: SlurmConfig) -> str:
    """The srun options giving a Ray step its node's CPUs (and GPUs) explicitly."""
    opts = f"--cpus-per-task={cfg.cpus_per_node}"
    return opts + (f" --gres=gpu:{cfg.gpus_per_node}" if cfg.gpus_per_node else "")


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
        "port_lines": "\n".join(port_lines(cfg)),
        "srun_resources": srun_resources(cfg),
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



def head_start_script(cfg: SlurmConfig, job: SweepJob, job_id: int, then: str, head_ip: str = "127.0.0.1") -> str:
    """The job script's environment section and head start, without Slurm, then `then`: what
    tests/cluster/plain_install.py runs to check that a plain install starts the head exactly as
    the job does and that the driver joins it.

    Args:
        cfg: the job's SlurmConfig.
        job: the sweep it runs.
        job_id: stands in for SLURM_JOB_ID (it picks the port block and the temp dir).
        then: bash lines run once the head is starting ($ray_address, $head_pid are set); the
            program exits with their status, after stopping the head.
        head_ip: the head's address.

    Returns:
        A bash program.
    """
    script = render_script(cfg, job)
    env = script[script.index("# --- environment"):script.index("# --- the Ray cluster")]
    head = _continued(["ray start --head --block", *ray_start_args(cfg, head=True)], 4)
    return (f"set -uo pipefail\nSLURM_JOB_ID={int(job_id)}\n{env}head_ip={shlex.quote(head_ip)}\n"
            f'ray_address="$head_ip:$RAY_PORT"\n{head} &\nhead_pid=$!\n'
            "# TERM: `ray start --block` stops its node, as the job's stop_ray does\n"
            "trap 'kill -TERM $head_pid 2>/dev/null; wait $head_pid' EXIT\n"
            f"{then}\n")
