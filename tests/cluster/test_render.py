"""cluster/slurm/render.py: the sbatch script is complete, valid bash, readable, and carries the
resources, ports, token auth and the signal -> save -> requeue -> resume path."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cluster.slurm.render import (
    RayPorts,
    SlurmConfig,
    SweepJob,
    ray_start_args,
    render_script,
    time_limit_seconds,
)
from orchestrator.config.tree import ConfigError, from_dict, validate_tree


def job(tmp_path: Path, storage: str = "results") -> SweepJob:
    store = tmp_path / storage
    return SweepJob(name="demo", storage=store, config=store / "demo" / "slurm" / "config.yaml",
                    workdir=tmp_path, bin_dir=Path("/opt/venv/bin"))


def render(tmp_path, **kw) -> str:
    return render_script(SlurmConfig(**kw), job(tmp_path), created="2026-01-01 00:00:00")


def bash_syntax_ok(text: str) -> None:
    proc = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_hole_filled_and_bash_parses_it(tmp_path):
    script = render(tmp_path, nodes=3, gpus_per_node=2, partition="gpu", account="proj1", dashboard=True,
                    setup=["module load cuda/12.4"], extra_sbatch=["--qos=high"])
    assert "{{" not in script and "}}" not in script
    assert script.startswith("#!/bin/bash\n# groktune sweep \"demo\"")
    bash_syntax_ok(script)


def test_sbatch_directives_carry_the_resources(tmp_path):
    script = render(tmp_path, nodes=3, cpus_per_node=16, gpus_per_node=2, time="1-02:00:00",
                    partition="gpu", account="proj1", mem="64G", exclusive=True, extra_sbatch=["--qos=high"])
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH ")]
    for expected in ("--nodes=3", "--ntasks-per-node=1", "--cpus-per-task=16", "--gpus-per-node=2",
                     "--time=1-02:00:00", "--partition=gpu", "--account=proj1", "--mem=64G", "--exclusive",
                     "--qos=high", "--requeue", "--open-mode=append", "--signal=B:USR1@120",
                     "--job-name=groktune-demo"):
        assert f"#SBATCH {expected}" in directives
    assert f"#SBATCH --output={tmp_path}/results/demo/slurm/%j.out" in directives
    assert f"#SBATCH --chdir={tmp_path}" in directives
    # sbatch stops reading directives at the first command: they must all come first.
    first_command = next(i for i, line in enumerate(script.splitlines())
                         if line and not line.startswith("#"))
    assert all(i < first_command for i, line in enumerate(script.splitlines()) if line.startswith("#SBATCH"))


def test_optional_directives_absent_by_default(tmp_path):
    script = render(tmp_path)
    for absent in ("--gpus-per-node", "--partition", "--account", "--mem", "--exclusive"):
        assert f"#SBATCH {absent}" not in script


def test_head_and_worker_srun_lines(tmp_path):
    script = render(tmp_path, nodes=2, cpus_per_node=8, gpus_per_node=1)
    assert re.search(r'srun --nodes=1 --ntasks=1 --overlap -w "\$head_node" --job-name=ray-head', script)
    assert re.search(r'srun --nodes=1 --ntasks=1 --overlap -w "\$node" --job-name=ray-worker', script)
    assert "ray start --head --block" in script
    assert 'ray start --block --address="$ray_address"' in script
    assert 'for node in "${nodes[@]:1}"; do' in script
    assert script.count("--num-cpus=8") == 2 and script.count("--num-gpus=1") == 2
    assert "python -m cluster.runtime wait-nodes \"$ray_address\" \"${#nodes[@]}\"" in script
    assert 'groktune sweep "$CONFIG" --name demo' in script and '--address "$ray_address" $resume' in script


def test_ports_are_configurable(tmp_path):
    ports = RayPorts(gcs=6400, client_server=20001, node_manager=20010, object_manager=20011,
                     min_worker=21000, max_worker=21999, dashboard=8300, dashboard_agent_listen=20012,
                     dashboard_agent_grpc=20013, metrics_export=20014, runtime_env_agent=20015)
    script = render(tmp_path, ports=ports, dashboard=True)
    assert "RAY_PORT=6400" in script
    for flag in ("--ray-client-server-port=20001", "--node-manager-port=20010", "--object-manager-port=20011",
                 "--min-worker-port=21000", "--max-worker-port=21999", "--dashboard-port=8300",
                 "--dashboard-agent-listen-port=20012", "--dashboard-agent-grpc-port=20013",
                 "--metrics-export-port=20014", "--runtime-env-agent-port=20015"):
        assert flag in script
    # Ports left at 0 are left to Ray (no flag at all).
    assert "--node-manager-port" not in render(tmp_path)


def job_ports(script: str, job_id: int) -> dict:
    """The port variables the script's port lines set for a job id (run by bash)."""
    start = script.index("port_block=")
    lines = script[start:script.index("\n\n", start)]
    out = subprocess.run(["bash", "-c", f"SLURM_JOB_ID={job_id}\n{lines}\n"
                          'echo "$RAY_PORT $RAY_AGENT_PORT $RAY_MIN_WORKER_PORT $RAY_MAX_WORKER_PORT"'],
                         capture_output=True, text=True, check=True).stdout.split()
    return dict(zip(("gcs", "agent", "min_worker", "max_worker"), map(int, out)))


def test_ports_per_job_no_ray_client_and_explicit_srun_resources(tmp_path):
    script = render(tmp_path, nodes=2, cpus_per_node=6, gpus_per_node=1)
    bash_syntax_ok(script)
    # No Ray Client flag unless grpcio is there (a plain install has none; Ray would take 10001).
    assert "--ray-client-server-port=1" not in script and "python -c 'import grpc'" in script
    # Two consecutive jobs on one node get disjoint port sets, below the ephemeral range.
    a, b = job_ports(script, 1234), job_ports(script, 1235)
    assert not set(range(a["gcs"], a["max_worker"] + 1)) & set(range(b["gcs"], b["max_worker"] + 1))
    assert all(20000 <= v < 32768 for v in (*a.values(), *b.values()))
    assert a["gcs"] not in range(a["min_worker"], a["max_worker"] + 1)
    assert "--dashboard-agent-listen-port=$RAY_AGENT_PORT" in script
    # Every srun step gets the node's CPUs and GPUs explicitly.
    sruns = [line for line in script.splitlines() if "--cpus-per-task=6 --gres=gpu:1 --output=" in line]
    assert len(sruns) == 2


def test_token_auth_on_and_dashboard_loopback_or_off(tmp_path):
    off = render(tmp_path)
    assert "export RAY_AUTH_MODE=token" in off and "export RAY_AUTH_TOKEN" in off
    assert "--include-dashboard=false" in off and "--dashboard-host" not in off
    on = render(tmp_path, dashboard=True)
    assert "--include-dashboard=true" in on and "--dashboard-host=127.0.0.1" in on
    # Workers never start a dashboard of their own.
    assert all("dashboard-host" not in a for a in ray_start_args(SlurmConfig(dashboard=True), head=False))


def test_signal_stops_the_driver_and_requeues(tmp_path):
    script = render(tmp_path, signal_lead_s=300, stop_grace_s=200)
    bash_syntax_ok(script)
    assert "#SBATCH --signal=B:USR1@300" in script
    assert "trap on_usr1 USR1" in script and "trap on_term TERM" in script
    assert 'kill -USR1 "$driver_pid"' in script  # Ray Tune saves its state and stops on USR1
    assert "for (( t = 0; t < 200; t += 5 ))" in script  # the grace before the driver gets TERM
    assert 'trap "" USR1; exec groktune sweep "$CONFIG"' in script  # no early death by USR1
    assert 'scontrol requeue "$SLURM_JOB_ID"' in script
    assert "python -m cluster.runtime can-resume \"$EXPERIMENT_DIR\"" in script
    assert 'resume="--resume"' in script


def test_paths_with_spaces_are_quoted(tmp_path):
    store = tmp_path / "my results"
    j = SweepJob(name="demo", storage=store, config=store / "demo" / "slurm" / "config.yaml",
                 workdir=tmp_path, bin_dir=Path("/opt/my venv/bin"))
    script = render_script(SlurmConfig(), j)
    assert f"EXPERIMENT_DIR='{store}/demo'" in script
    assert "export PATH='/opt/my venv/bin':$PATH" in script
    bash_syntax_ok(script)


def test_temp_dir_job_id_and_head_ip_override(tmp_path):
    script = render(tmp_path, temp_dir="/scratch/ray-{job_id}", head_ip="10.0.0.5")
    assert 'RAY_TEMP_DIR=/scratch/ray-"$SLURM_JOB_ID"' in script
    assert "head_ip=10.0.0.5" in script
    assert 'head_ip=$(node_ip "$head_node")' in render(tmp_path)


def test_time_limits():
    assert time_limit_seconds("00:10:00") == 600
    assert time_limit_seconds("1-00:00:30") == 86430
    for bad in ("10:00", "1:60:00", "abc", "00:00:61"):
        with pytest.raises(ValueError, match="time: got"):
            time_limit_seconds(bad)


@pytest.mark.parametrize("data, key", [
    ({"time": "00:01:00"}, "time"),                      # shorter than the signal lead
    ({"stop_grace_s": 100}, "stop_grace_s"),             # no time left to stop Ray and requeue
    ({"nodes": 0}, "nodes"),
    ({"gpus_per_node": -1}, "gpus_per_node"),
    ({"partition": "gpu\n#SBATCH --x"}, "partition"),    # no directive injection
    ({"ports": {"gcs": 70000}}, "ports.gcs"),
    ({"ports": {"gcs": -1}}, "ports.gcs"),                # (0 is fine: the job's port block)
    ({"extra_sbatch": ["qos=high"]}, "extra_sbatch"),
    ({"temp_dir": "relative/dir"}, "temp_dir"),
])
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        validate_tree(from_dict(SlurmConfig, data))
    message = str(err.value)
    assert message.startswith(f"{key}:") and "\n" not in message
