"""Shared fixtures of the analysis tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def real_sweep_report(tmp_path_factory):
    """(sweep folder, report folder) of a real small sweep (tests/analysis/real_sweep.py)."""
    from analysis.report import make_report
    from tests.analysis.real_sweep import run_sweep

    tmp = tmp_path_factory.mktemp("real_sweep")
    sweep = run_sweep(tmp)
    make_report(sweep, tmp / "report")
    return sweep, tmp / "report"
