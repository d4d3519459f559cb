"""Shared fixtures (tiny experiment configs that train in well under a second per 100 steps) and
the suite's rules: the `--full` tier, no unlisted skip in CI, Hypothesis profiles.

Tiers: `pytest` (scripts/test.sh) runs everything but the tests marked `full` (the Slurm one- and
two-node tests, the three-node Ray test, the crash campaigns, the benchmark's tiny run);
`pytest --full` (scripts/test.sh --full, CI) runs them too.
"""

import os

import pytest
from hypothesis import settings

from orchestrator.config.experiment import config_from_dict
from tests import shared_sweep
from tests.allowed_skips import allowed

# CI runs a fixed draw of every property test (reproducible; a red CI is a real regression).
# Locally the draws stay random to keep finding new cases. Neither has a wall-clock deadline:
# on a shared 2-core machine one slow draw is load, not a bug.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help="also run the tests marked `full` (clusters, crash campaigns, benchmark)")


# Tests that read one session-wide real sweep run in one xdist worker, so that sweep runs once;
# every other test keeps to its file's worker (module-scoped fixtures run once too).
SHARED_SWEEPS = ("tpe_asha_sweep", "real_sweep_report")


def pytest_collection_modifyitems(config, items):
    """Without --full, deselect the `full` tier (pytest's summary counts them as deselected).
    Under pytest-xdist (scripts/test.sh runs `-n 2 --dist loadgroup`): group each test by the
    shared sweep it reads, else by its file."""
    for item in items:
        shared = [name for name in SHARED_SWEEPS if name in getattr(item, "fixturenames", ())]
        item.add_marker(pytest.mark.xdist_group(shared[0] if shared else item.nodeid.split("::", 1)[0]))
    if config.getoption("--full"):
        return
    full = [item for item in items if item.get_closest_marker("full")]
    if full:
        items[:] = [item for item in items if not item.get_closest_marker("full")]
        config.hook.pytest_deselected(items=full)


class SkipGuard:
    """With CI set, a skip that tests/allowed_skips.py does not allow fails the session, named in
    the summary. Its hooks also run in the xdist controller, for the reports its workers send."""

    def __init__(self):
        self.unlisted: list[str] = []  # "node id: reason"

    def pytest_runtest_logreport(self, report):
        if (os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail")
                and not allowed(report.nodeid, "gpu" in report.keywords)):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.unlisted.append(f"{report.nodeid}: {reason.removeprefix('Skipped: ')}")

    def pytest_sessionfinish(self, session, exitstatus):
        if self.unlisted and session.exitstatus == 0:
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if self.unlisted:
            terminalreporter.section("skips not allowed in CI (tests/allowed_skips.py)", red=True)
            for line in self.unlisted:
                terminalreporter.line(line, red=True)


def pytest_configure(config):
    config.pluginmanager.register(SkipGuard(), "groktune-skip-guard")


TINY = {
    "name": "tiny",
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 7, "train_fraction": 0.5},
    "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32},
    "optim": {"lr": 3e-3, "weight_decay": 0.1},
    # device cpu: the bitwise tests stay CPU-exact on a GPU machine (tests/trials/test_cuda.py runs CUDA)
    "train": {"device": "cpu", "steps": 60, "batch_size": 16, "num_threads": 1, "eval_dense_until": 20,
              "eval_dense_every": 5, "eval_every": 20, "checkpoint_every": 30,
              "target_val_acc": 1.0, "target_patience": 0},
}


def deep_merge(base: dict, extra: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture
def tiny_cfg():
    """Factory: tiny_cfg(train={"steps": 10}) -> a validated ExperimentConfig."""
    return lambda **extra: config_from_dict(deep_merge(TINY, extra))


@pytest.fixture(scope="session")
def tpe_asha_sweep(tmp_path_factory) -> shared_sweep.SharedSweep:
    """A finished real TPE + ASHA sweep (tests/shared_sweep.py), run once for the whole session.
    Read it; to change it, work on `tpe_asha_sweep.copy_to(tmp_path)`."""
    sweep = shared_sweep.run(tmp_path_factory.mktemp("tpe_asha"))
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    return sweep
