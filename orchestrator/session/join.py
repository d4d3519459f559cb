"""Joining a running Ray cluster (`--address` / RAY_ADDRESS) the way a plain `ray start` left it.

Ray 2.60's `ray start --head` turns token authentication on when a token exists (Ray writes
~/.ray/auth_token the first time a local ray.init runs, or `ray get-auth-token --generate`), and
a cluster started with RAY_AUTH_MODE=disabled has it off. A driver given an explicit address,
though, never turns token mode on by itself, so against a token cluster it retried for ~20 s and
failed with InvalidAuthToken. Here the mode is picked for the user: RAY_AUTH_MODE, when set, is
respected; otherwise token mode is on whenever a token is at hand (RAY_AUTH_TOKEN,
RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token), which works against both kinds of cluster (a cluster
with auth off ignores the token).

Before ray.init (which retries for 20 s to minutes and may end in SystemExit), a bounded probe
says why a join cannot work: nothing listening, no GCS answering, or the token refused; each as
one line naming the fix (UserError: exit 2), within JOIN_CHECK_S seconds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from orchestrator.errors import UserError

TCP_TIMEOUT_S = 2.0
PROBE_TIMEOUT_S = 5.0
JOIN_CHECK_S = TCP_TIMEOUT_S + PROBE_TIMEOUT_S  # the longest a failing join takes to say so
TOKEN_HELP = ("copy the head's token (print it there with `ray get-auth-token`) to ~/.ray/auth_token "
              "on this machine, or set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH")
# The probe: connect a GCS client only (no driver, no workers), as ray.init's first step does.
_PROBE = """
import sys
from ray._raylet import GcsClient
try:
    GcsClient(address=sys.argv[1])
except Exception as err:
    text = str(err).strip().splitlines()
    print(type(err).__name__ + ": " + (text[0] if text else ""), flush=True)
    sys.exit(3)
"""


def prepare_join(address: str) -> dict:
    """Pick the auth mode for joining `address` and check that the join can work.

    Args:
        address: the cluster's GCS address, HOST:PORT (other forms, e.g. ray://, pass unchecked).

    Returns:
        The environment values changed here ({name: old value or None}), for restore_env.

    Raises:
        UserError: one line naming the cause and the fix, when the join cannot work.
    """
    saved = {}
    if "RAY_AUTH_MODE" not in os.environ and token_available():
        saved["RAY_AUTH_MODE"] = None
        os.environ["RAY_AUTH_MODE"] = "token"
        refresh_ray_auth()
    try:
        check_join(address)
    except BaseException:
        restore_env(saved)
        raise
    return saved


def restore_env(saved: dict) -> None:
    """Put back the environment values that prepare_join changed."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if saved:
        refresh_ray_auth()


def token_available() -> bool:
    """Whether Ray would find a token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)."""
    # deferred: Ray only when a join is checked
    from ray._raylet import AuthenticationTokenLoader

    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()
    return bool(loader.has_token(ignore_auth_mode=True))


def refresh_ray_auth() -> None:
    """Make this process's Ray see the auth env now (Ray caches its config and token)."""
    # deferred: Ray only when a join is checked
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def check_join(address: str) -> None:
    """Raise UserError (one line: cause and fix) unless a Ray GCS at `address` accepts us.

    Args:
        address: HOST:PORT; anything with a scheme (ray://...) or "auto" is left to ray.init.
    """
    if "://" in address or address in ("auto", "local"):
        return
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise UserError(f"--address {address}: expected HOST:PORT of the Ray head "
                        "(the --port of `ray start --head`, default 6379)")
    host = host.strip("[]")
    prefix = f"--address {address}: cannot join the Ray cluster"
    try:
        with socket.create_connection((host, int(port_text)), timeout=TCP_TIMEOUT_S):
            pass
    except OSError as err:
        raise UserError(f"{prefix}: nothing accepts connections there ({err.strerror or err}); "
                        f"start the head with `ray start --head --port {port_text}` or pass the "
                        "address that `ray start` printed") from None
    mode_token = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    if mode_token and not token_available():
        raise UserError(f"{prefix}: RAY_AUTH_MODE=token but no token found; {TOKEN_HELP}")
    reason = _probe(address)
    if reason is None:
        return
    if "InvalidAuthToken" in reason or reason.startswith("AuthenticationError"):
        if mode_token:
            raise UserError(f"{prefix}: the cluster refused this machine's token (InvalidAuthToken); "
                            f"{TOKEN_HELP} with the head's value")
        raise UserError(f"{prefix}: it uses token authentication and no token was found "
                        f"(InvalidAuthToken); {TOKEN_HELP}")
    raise UserError(f"{prefix}: something listens there but no Ray GCS answered ({reason[:120]}); "
                    "pass the head's GCS port (the --port of `ray start --head`, default 6379)")


def _probe(address: str) -> str | None:
    """Connect a bare GCS client in a subprocess (bounded); None if it connected, else why not."""
    env = {**os.environ, "RAY_py_gcs_connect_timeout_s": str(int(PROBE_TIMEOUT_S) - 2)}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, address], env=env, capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"no answer within {PROBE_TIMEOUT_S:.0f} s"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if lines:
        return lines[-1]
    return "InvalidAuthToken" if "InvalidAuthToken" in done.stderr else f"probe exited {done.returncode}"


__all__ = ["JOIN_CHECK_S", "check_join", "prepare_join", "restore_env", "token_available"]
