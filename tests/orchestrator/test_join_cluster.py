"""`groktune sweep --address` against a cluster started with plain `ray start --head`:
with Ray 2.60's defaults (token auth on because ~/.ray/auth_token exists) and with auth
off (RAY_AUTH_MODE=disabled at `ray start`), nobody setting RAY_AUTH_MODE for the driver; and a
join that cannot work says why in one line, exit 2, within 10 s.

Each head runs in a private HOME (its ~/.ray/auth_token) and temp dir, on free ports, and is
stopped by its temp dir in the fixture's teardown, so no other Ray on the machine is touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from groktune.errors import UserError
from tests.cluster.rayhead import free_port, stop_head, wait_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "tiny_sweep.yaml"
SMALL = ["--set", "search.num_samples=2", "--set", "train.steps=100", "--set", "search.verify.top=0"]


def clean_env(home: Path) -> dict:
    """The user's environment as a new shell has it: no Ray auth/address/loopback settings."""
    drop = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "GROKTUNE_RAY_SESSION")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(params=["token", "disabled"])
def ray_head(request, tmp_path):
    """`ray start --head` with Ray's own auth defaults ("token") or RAY_AUTH_MODE=disabled.

    Yields (address, env of a user's shell on this machine, auth mode).
    """
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home)
    head_env = dict(env)
    if request.param == "token":
        # Ray's own first step for a token cluster: writes ~/.ray/auth_token; `ray start` then
        # turns token auth on by itself (its default when a token exists).
        subprocess.run(["ray", "get-auth-token", "--generate"], env=env, check=True,
                       capture_output=True, timeout=120)
        assert (home / ".ray" / "auth_token").is_file()
    else:
        head_env["RAY_AUTH_MODE"] = "disabled"
    temp_dir = tempfile.mkdtemp(prefix="gtjoin-", dir="/tmp")  # short: Ray's socket paths
    port = free_port()
    # Free ports for what would otherwise collide with other Ray clusters on this machine;
    # auth is left to Ray's defaults.
    cmd = ["ray", "start", "--head", f"--port={port}", "--num-cpus=2", f"--temp-dir={temp_dir}",
           "--include-dashboard=false", f"--dashboard-agent-listen-port={free_port()}",
           "--disable-usage-stats"]
    try:
        import grpc  # noqa: F401  (with Ray Client installed, Ray would take port 10001)
        cmd.append(f"--ray-client-server-port={free_port()}")
    except ImportError:
        pass
    try:
        started = subprocess.run(cmd, env=head_env, capture_output=True, text=True, timeout=180,
                                 start_new_session=True)
        assert started.returncode == 0, started.stderr[-3000:]
        assert wait_port(port, 30)
        yield f"127.0.0.1:{port}", env, request.param
    finally:
        stop_head(temp_dir)


def sweep(tmp_path: Path, address: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "sweep", str(CONFIG), *SMALL,
         "--storage", str(tmp_path / "res"), "--address", address],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_sweep_joins_a_plain_ray_start_head(ray_head, tmp_path):
    address, env, mode = ray_head
    done = sweep(tmp_path, address, env)
    assert done.returncode == 0, (mode, done.stdout[-2000:], done.stderr[-3000:])
    trials = pd.read_parquet(tmp_path / "res" / "tiny_sweep" / "trials.parquet")
    assert len(trials) == 2 and trials.trial_id.is_unique
    if mode == "token":
        # Without the token the same join is refused, in one line naming the fix.
        no_token = sweep(tmp_path / "other", address, clean_env(tmp_path / "nohome"), timeout=60)
        assert no_token.returncode == 2
        line = no_token.stderr.strip()
        assert "\n" not in line and "InvalidAuthToken" in line and "ray get-auth-token" in line, line


@pytest.mark.slow
def test_a_join_that_cannot_work_says_why_within_10_s(tmp_path):
    env = clean_env(tmp_path)
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never speaks GCS
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        cases = {f"127.0.0.1:{free_port()}": "nothing accepts connections",
                 f"127.0.0.1:{silent.getsockname()[1]}": "no Ray GCS answered",
                 "no-port-here": "expected HOST:PORT"}
        for address, why in cases.items():
            t0 = time.monotonic()
            done = sweep(tmp_path, address, env, timeout=60)
            took = time.monotonic() - t0
            line = done.stderr.strip()
            assert done.returncode == 2 and "\n" not in line and why in line, (address, done.stderr[-2000:])
            assert took < 10, f"{address}: {took:.1f} s"


# --- fast: the checks that need no Ray cluster -----------------------------------------------------

def test_check_join_names_the_cause_without_ray():
    from orchestrator.session.join import check_join

    for address, why in {"head-without-port": "expected HOST:PORT", "head:port": "expected HOST:PORT",
                         f"127.0.0.1:{free_port()}": "nothing accepts connections"}.items():
        with pytest.raises(UserError) as err:
            check_join(address)
        assert why in str(err.value) and "\n" not in str(err.value)
    check_join("ray://head:10001")  # Ray Client addresses are left to ray.init


def test_token_mode_with_no_token_is_refused_before_ray_tries(tmp_path, monkeypatch):
    from orchestrator.session.join import check_join

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with pytest.raises(UserError, match="RAY_AUTH_MODE=token but no token found"):
            check_join(f"127.0.0.1:{listener.getsockname()[1]}")
