"""Starting or joining Ray for a sweep, locked down by default, leaving nothing behind.

Default: an embedded local Ray with the machine's CPUs (and GPUs, which Ray detects), no
dashboard, and:

- token authentication turned on explicitly (RAY_AUTH_MODE=token) with a per-sweep token in a
  private temp dir (0700, the token file 0600) named by RAY_AUTH_TOKEN_PATH, so the user's
  ~/.ray/auth_token is neither needed nor written;
- every listener on loopback: Ray turns the node address 127.0.0.1 into the machine's routable
  address unless its "local Ray only" switch (ray_constants.ENABLE_RAY_CLUSTER, env
  RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER) is off; with it off the GCS, raylet, workers and agents bind
  127.0.0.1 (README "What listens where"; tests/orchestrator/test_sockets.py checks it);
- Ray's session dir inside that private temp dir, and a watchdog (orchestrator.session.watchdog) that
  stops this session's processes and removes the dir when the driver ends, however it ends.

`--address` or RAY_ADDRESS joins an existing cluster instead (orchestrator.session.join): token mode
is picked when a token is at hand (~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN) unless
RAY_AUTH_MODE says otherwise, a failing join says why in one line within seconds, and no watchdog
runs, so the user's cluster is never touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from groktune.errors import UserError
from orchestrator.session.join import prepare_join, refresh_ray_auth, restore_env
from orchestrator.session.watchdog import MARKER

TOKEN_FILE = "auth_token"
WATCHDOG_WAIT_S = 30.0
# Ray's "local Ray only" switch; off, 127.0.0.1 stays 127.0.0.1 (ray/_private/services.py).
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN")
# Temp files of Ray (Tune's _ray_lockfiles/ follow RAY_TMPDIR) and of the trial processes
# (their scratch dirs, torch's compile cache follow TMPDIR) go into the session's private dir,
# so they are removed with it even when a worker is killed.
_TMP_ENV = ("RAY_TMPDIR", "TMPDIR")


@dataclass
class _Session:
    """The embedded cluster's private dir, its watchdog, and the environment to put back."""

    root: Path
    watchdog: subprocess.Popen
    saved_env: dict = field(default_factory=dict)
    saved_local_only: bool = True
    saved_tempdir: str | None = None  # tempfile.tempdir before the session pointed it into root


_session: _Session | None = None
_join_env: dict = {}  # what the join path changed in the environment (rayjoin.prepare_join)


def start_ray(address: str | None = None, num_cpus: int | None = None):
    """ray.init for a sweep; returns the RayContext. Safe to call when Ray is already up.

    Args:
        address: a cluster to join (else RAY_ADDRESS; else an embedded local cluster).
        num_cpus: CPUs of the embedded cluster (default: all of this machine's).

    Returns:
        The RayContext, or None when Ray was already initialised.
    """
    # deferred: Ray reads its RAY_* settings (auth, local-only) when first imported; they are set before
    import ray

    if ray.is_initialized():
        return None
    address = address or os.environ.get("RAY_ADDRESS") or None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a laptop sweep
    if address:
        return _join(address)
    _open_session()
    try:
        return ray.init(
            # "local" always starts a fresh embedded Ray; without it ray.init() silently joins any
            # cluster a `ray start` left running on this machine.
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            # Ray's session dir, sockets, logs and spilled objects. Ray makes its temp dir
            # world-writable (0777), so it is a subdir of the private 0700 root.
            _temp_dir=str(_session.root / "ray"),
            log_to_driver=False,  # trial output goes to each trial's files, not the driver's terminal
            configure_logging=True,
            logging_level="WARNING",
        )
    except BaseException:
        _close_session()
        raise


def _join(address: str):
    """ray.init against a running cluster, auth mode picked and the join checked first (rayjoin)."""
    # deferred: Ray reads its RAY_* settings (auth, local-only) when first imported; they are set before
    import ray

    global _join_env
    # A session left open (Ray died under it) must not lend its loopback switch, private token
    # or temp dirs to a join: _close_session puts the user's environment back first.
    _close_session()
    _join_env = prepare_join(address)
    try:
        return ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.AuthenticationError) as err:
        restore_env(_join_env)
        _join_env = {}
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"--address {address}: cannot join the Ray cluster ({first[:160]})") from None


def stop_ray() -> None:
    """ray.shutdown, then (embedded cluster) stop what is left of the session and remove its dir."""
    # deferred: Ray reads its RAY_* settings (auth, local-only) when first imported; they are set before
    import ray

    global _join_env
    try:
        if ray.is_initialized():
            ray.shutdown()
    finally:
        _close_session()
        restore_env(_join_env)
        _join_env = {}


def _open_session() -> None:
    """Create the private dir and token, start the watchdog, switch this process's env over."""
    global _session
    _close_session()  # a session left open by a start without a stop (Ray died meanwhile)
    base = _system_temp_dir()
    tempfile.gettempdir()  # fixes this process's own temp dir before TMPDIR points into root
    root = Path(tempfile.mkdtemp(prefix="groktune-", dir=base)).resolve()  # 0700
    try:
        token = root / TOKEN_FILE
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))  # 256 bits, as Ray's own generator
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.session.watchdog", str(root), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own session: Ray's reaper kills the driver's process group, and a terminal's
            # Ctrl-C reaches the foreground group; the watchdog must outlive both.
            start_new_session=True, cwd=str(Path(__file__).resolve().parents[1]),
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    _session = _Session(root=root, watchdog=watchdog,
                        saved_env={k: os.environ.get(k) for k in (*_AUTH_ENV, *_TMP_ENV, MARKER, LOCAL_ONLY_ENV)})
    os.environ.pop("RAY_AUTH_TOKEN", None)  # it would take precedence over the per-sweep file
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                       **dict.fromkeys(_TMP_ENV, str(root)), MARKER: str(root), LOCAL_ONLY_ENV: "0"})
    _session.saved_local_only = _set_local_only(True)
    # This process's own temp files made while the session is open go into root too, so the
    # watchdog removes them if the driver is killed: Tune imports Ray's W&B integration, and with
    # wandb installed that makes two temp folders at import.
    _session.saved_tempdir, tempfile.tempdir = tempfile.tempdir, str(root)
    refresh_ray_auth()


def _system_temp_dir() -> str:
    """The temp dir Ray itself would use (/tmp on macOS rather than its long $TMPDIR): Ray's
    Unix socket paths live under it and must fit in ~104 bytes."""
    if os.environ.get("RAY_TMPDIR"):
        return os.environ["RAY_TMPDIR"]
    if sys.platform.startswith("linux") and os.environ.get("TMPDIR"):
        return os.environ["TMPDIR"]
    return "/tmp" if sys.platform.startswith(("linux", "darwin")) else tempfile.gettempdir()


def _close_session() -> None:
    """Let the watchdog stop the session's processes and remove its dir; put the env back."""
    global _session
    session, _session = _session, None
    if session is None:
        return
    try:
        session.watchdog.stdin.close()  # EOF: the watchdog cleans up now
        session.watchdog.wait(timeout=WATCHDOG_WAIT_S)
    except (OSError, subprocess.TimeoutExpired):
        session.watchdog.kill()
    finally:
        tempfile.tempdir = session.saved_tempdir
        shutil.rmtree(session.root, ignore_errors=True)
        for key, value in session.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _set_local_only(session.saved_local_only)
        refresh_ray_auth()


def _set_local_only(on: bool) -> bool:
    """Set Ray's "local Ray only" switch; returns its previous value.

    Ray reads it at import, and the sweep has imported Ray by now, so the module attribute is
    set as well as the environment (which Ray's child processes read).
    """
    # deferred: Ray reads its RAY_* settings (auth, local-only) when first imported; they are set before
    from ray._private import ray_constants

    old = not ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = not on
    return old




def cluster_resources() -> dict:
    """{"total": {...}, "available": {...}} of the connected cluster (CPU, GPU, memory in GiB)."""
    # deferred: Ray reads its RAY_* settings (auth, local-only) when first imported; they are set before
    import ray

    def tidy(res: dict) -> dict:
        keep = {k: v for k, v in res.items() if k in ("CPU", "GPU", "memory", "object_store_memory")}
        for k in ("memory", "object_store_memory"):
            if k in keep:
                keep[k] = round(keep[k] / 2**30, 2)
        return keep

    return {"total": tidy(ray.cluster_resources()), "available": tidy(ray.available_resources())}


__all__ = ["cluster_resources", "start_ray", "stop_ray"]
