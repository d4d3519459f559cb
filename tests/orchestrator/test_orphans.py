"""Ray's processes end with the driver and its temp files go, however the driver ends.

Slow tier: a real `groktune sweep` subprocess with trials training; the driver is SIGKILLed,
SIGTERMed or SIGINTed (Ctrl-C) while they run, or the sweep runs to its normal end. Within
~20 s no process of that sweep's Ray session may remain (gcs_server, raylet, workers, agents),
and the temp dir the sweep used (its own TMPDIR, so nothing else on the machine interferes) is
empty: no session dir, no token file, no lock files.
"""

import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from tests.orchestrator import rayprocs

GONE_WITHIN_S = 20


@pytest.fixture
def short_tmp():
    """A private, short TMPDIR for the sweep: Ray's Unix socket paths must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="gt", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _watch_until_running(tmp_path, short_tmp, **train):
    """Start a sweep; return (driver, recorded processes, session root) once trials run."""
    driver, exp = rayprocs.start_sweep(tmp_path, env={"TMPDIR": str(short_tmp)}, **train)
    recorded = {}
    try:
        running = rayprocs.wait_for(lambda: rayprocs.trials_running(exp, driver.pid), timeout=300)
        assert running, (tmp_path / "driver.log").read_text()[-3000:]
        for _ in range(4):  # workers come and go; collect the whole tree over a moment
            recorded.update(rayprocs.members(driver.pid))
            rayprocs.wait_for(lambda: False, timeout=0.5)
    except BaseException:
        rayprocs.stop(driver, recorded)
        raise
    names = {name for _, name in recorded.values()}
    assert {"gcs_server", "raylet"} <= names, names
    root = rayprocs.session_root(recorded)
    assert root and Path(root).parent == short_tmp, root
    return driver, recorded, root


def _assert_nothing_left(driver, recorded, root, short_tmp, tmp_path):
    try:
        left = rayprocs.wait_for(lambda: not rayprocs.still_alive(recorded, root), timeout=GONE_WITHIN_S)
        assert left, f"still running {GONE_WITHIN_S}s after the driver ended: {rayprocs.still_alive(recorded, root)}"
        assert not Path(root).exists(), sorted(str(p) for p in Path(root).rglob("*"))[:20]
        assert list(short_tmp.iterdir()) == [], list(short_tmp.iterdir())
    finally:
        rayprocs.stop(driver, recorded)


@pytest.mark.slow
@pytest.mark.full  # kills a running driver three ways: the crash tier
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["kill", "term", "int"])
def test_a_killed_driver_leaves_no_ray_process_and_no_temp_file(tmp_path, short_tmp, sig):
    driver, recorded, root = _watch_until_running(tmp_path, short_tmp)
    assert len(recorded) >= 5, recorded  # gcs, raylet, agents, trial workers: the tree was seen
    driver.send_signal(sig)
    driver.wait(timeout=60)
    _assert_nothing_left(driver, recorded, root, short_tmp, tmp_path)


@pytest.mark.slow
def test_a_sweep_that_ends_normally_leaves_nothing(tmp_path, short_tmp):
    driver, recorded, root = _watch_until_running(tmp_path, short_tmp, steps=2000)
    assert driver.wait(timeout=300) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    _assert_nothing_left(driver, recorded, root, short_tmp, tmp_path)
