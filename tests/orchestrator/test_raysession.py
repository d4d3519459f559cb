"""orchestrator/session/start.py with a real embedded Ray (slow): token auth on with a private
per-sweep token, joining that cluster works with the token and is refused without it, and
stop_ray leaves nothing behind and puts the environment back."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

JOIN = """
import sys
import ray
from orchestrator.session.start import start_ray, stop_ray
start_ray(sys.argv[1])
print("CPU", ray.cluster_resources()["CPU"], flush=True)
stop_ray()
"""


def join(address: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", JOIN, address], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_embedded_ray_uses_a_private_token_and_cleans_up():
    import ray

    from orchestrator.session import start as raysession

    home_token = Path.home() / ".ray" / "auth_token"
    before = home_token.stat().st_mtime_ns if home_token.exists() else None
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    # Ray turns a joiner's 127.0.0.1 into the machine's address too, where nothing listens.
    clean_env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "TMPDIR", "RAY_TMPDIR")}
    raysession.start_ray(num_cpus=1)
    try:
        root = raysession._session.root
        token = Path(os.environ["RAY_AUTH_TOKEN_PATH"])
        assert os.environ["RAY_AUTH_MODE"] == "token" and token.parent == root
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(token.read_text()) == 64
        assert ray.get(ray.remote(lambda: 1 + 1).remote()) == 2
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:"), address

        ok = join(address, {**clean_env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})
        assert ok.returncode == 0 and "CPU 1.0" in ok.stdout, ok.stderr[-2000:]
        refused = join(address, {**clean_env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64})
        assert refused.returncode != 0 and "CPU" not in refused.stdout
        assert "InvalidAuthToken" in refused.stderr and "cannot join the Ray cluster" in refused.stderr
        # the joining processes' stop_ray left the cluster they joined alone
        assert ray.get(ray.remote(lambda: 2 + 2).remote()) == 4
    finally:
        raysession.stop_ray()
    assert not root.exists()
    assert {k: os.environ.get(k) for k in saved} == saved
    after = home_token.stat().st_mtime_ns if home_token.exists() else None
    assert after == before, "the user's ~/.ray/auth_token was written"
