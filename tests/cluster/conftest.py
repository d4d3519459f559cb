"""Fixtures for the cluster tests: a real one- or two-node Slurm (tests/cluster/local_slurm.py).

The Slurm tests are marked slow. Where Slurm cannot run (not root, packages missing) they are
skipped with the reason, unless GROKTUNE_REQUIRE_SLURM=1 (CI) turns that into a failure.
"""

from __future__ import annotations

import os

import pytest

from tests.cluster import local_slurm


def _local_slurm(nodes: int):
    """Start a local Slurm of `nodes` nodes (skip or fail where it cannot run); stop it after."""
    reason = local_slurm.missing_requirements(nodes)
    if reason:
        if os.environ.get("GROKTUNE_REQUIRE_SLURM") == "1":
            pytest.fail(f"GROKTUNE_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    cluster = local_slurm.start(nodes=nodes)
    print(f"\nlocal Slurm ({', '.join(cluster.nodes)}) up in {cluster.started_in:.2f}s at {cluster.root}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running local Slurm for the whole session; stopped and removed at the end."""
    yield from _local_slurm(1)


@pytest.fixture(scope="module")
def slurm_two_nodes():
    """A two-node local Slurm (one network namespace per node) for one test module."""
    yield from _local_slurm(2)


@pytest.fixture
def slurm(slurm_cluster, monkeypatch):
    """The session's local Slurm, with SLURM_CONF set in this test's environment (so code under
    test that calls sbatch/squeue in-process talks to it) and an empty queue afterwards."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    yield slurm_cluster
    slurm_cluster.cancel_all()
