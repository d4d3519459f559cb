"""What listens where during a real sweep, checked against what the docs state (docs/listening.md).

docs/listening.md, "What listens where": with the embedded cluster every TCP listener of the sweep's Ray
session (the driver, gcs_server, raylet, the trial workers, the RuntimeEnvAgent) is bound to
loopback; nothing listens on another address, with no exception. The test runs `groktune sweep`
as a subprocess, samples the listening sockets of the driver and all its descendants several
times while trials train, and checks every one of them.
"""

import ipaddress
import shutil
import stat
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.orchestrator import rayprocs

ROOT = Path(__file__).resolve().parents[2]
LISTENING = ROOT / "docs" / "listening.md"
# The Ray processes the docs' table names as listening (on loopback), besides the driver.
LISTENERS = {"gcs_server", "raylet", "ray::RuntimeEnvAgent"}


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1, and IPv4-mapped loopback (::ffff:127.0.0.1, what a dual-stack socket shows)."""
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def test_is_loopback_tells_wildcards_and_routable_addresses_apart():
    assert all(map(is_loopback, ["127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.1.1"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.2", "::ffff:10.0.0.1", "fe80::1"]))


def test_docs_state_what_listens_where():
    text = LISTENING.read_text()
    assert text.startswith("# What listens where")
    table = text.split("| process | listens on | why |", 1)[1].split("\n\n", 1)[0]
    for name in ("gcs_server", "raylet", "RuntimeEnvAgent", "127.0.0.1"):
        assert name in table, name
    for name in ("RAY_AUTH_MODE=token", "0600"):
        assert name in text, name
    assert "(docs/listening.md)" in (ROOT / "README.md").read_text()  # the front door points to it


@pytest.mark.slow
def test_every_listener_of_a_running_sweep_is_on_loopback(tmp_path):
    short_tmp = Path(tempfile.mkdtemp(prefix="gt", dir="/tmp"))  # Ray's socket paths stay short
    home_token = Path.home() / ".ray" / "auth_token"
    before = home_token.stat().st_mtime_ns if home_token.exists() else None
    driver, exp = rayprocs.start_sweep(tmp_path, env={"TMPDIR": str(short_tmp)})
    recorded, seen = {}, []
    try:
        assert rayprocs.wait_for(lambda: rayprocs.trials_running(exp, driver.pid, n=2), timeout=300), \
            (tmp_path / "driver.log").read_text()[-3000:]
        for _ in range(6):  # workers and their servers come and go: sample a few times
            tree = rayprocs.members(driver.pid)
            recorded.update(tree)
            seen += rayprocs.listeners([driver.pid, *tree])
            time.sleep(0.5)
        root = Path(rayprocs.session_root(recorded))
        token = root / "auth_token"
        modes = stat.S_IMODE(root.stat().st_mode), stat.S_IMODE(token.stat().st_mode)
        gcs = next(pid for pid, (_, name) in recorded.items() if name == "gcs_server")
        gcs_env = psutil.Process(gcs).environ()
    finally:
        rayprocs.stop(driver, recorded)
        shutil.rmtree(short_tmp, ignore_errors=True)
    names = {name for _, name, _, _ in seen}
    assert LISTENERS <= names, names  # the sampling saw every kind of listener
    assert driver.pid in {pid for pid, _, _, _ in seen}
    assert any(name.startswith("ray::") and "Agent" not in name for name in names), names  # a trial worker
    exposed = [s for s in seen if not is_loopback(s[2])]
    assert exposed == [], exposed
    assert modes == (0o700, 0o600), [oct(m) for m in modes]
    assert gcs_env.get("RAY_AUTH_MODE") == "token" and gcs_env.get("RAY_AUTH_TOKEN_PATH") == str(token)
    after = home_token.stat().st_mtime_ns if home_token.exists() else None
    assert after == before, "the user's ~/.ray/auth_token was written"
