"""The suite's own rules (tests/conftest.py), run on small throwaway suites with pytester:
`--full` selects the long tier, and with CI set a skip that tests/allowed_skips.py does not allow
fails the session. And the Hypothesis profile in force has no wall-clock deadline."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]

# The hooks of tests/conftest.py, imported into the throwaway suite's conftest.
CONFTEST = """
from tests.conftest import SkipGuard, pytest_addoption, pytest_collection_modifyitems

def pytest_configure(config):
    config.addinivalue_line("markers", "full: the long tier")
    config.addinivalue_line("markers", "gpu: needs a GPU")
    config.pluginmanager.register(SkipGuard(), "groktune-skip-guard")
"""

SUITE = """
import pytest

def test_runs():
    pass

@pytest.mark.full
def test_long():
    pass

@pytest.mark.gpu
def test_on_a_gpu():
    pytest.skip("no GPU here")

def test_missing_browser():
    pytest.skip("chromium not installed")

@pytest.mark.parametrize("case", [1, 2])
def test_listed(case):
    pytest.skip("a CUDA device is present")

def test_xfails():
    pytest.xfail("known")
"""


@pytest.fixture
def suite(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_rules=SUITE)
    monkeypatch.setattr("tests.allowed_skips.ALLOWED_SKIPS", {"test_rules.py::test_listed": "GPU present"})
    monkeypatch.delenv("CI", raising=False)
    return pytester


def test_full_tier_is_deselected_unless_asked_for(suite):
    fast = suite.runpytest_inprocess("-p", "no:cacheprovider")
    fast.assert_outcomes(passed=1, skipped=4, xfailed=1, deselected=1)
    assert fast.ret == 0
    full = suite.runpytest_inprocess("-p", "no:cacheprovider", "--full")
    full.assert_outcomes(passed=2, skipped=4, xfailed=1)


def test_in_ci_an_unlisted_skip_fails_the_session_and_is_named(suite, monkeypatch):
    monkeypatch.setenv("CI", "1")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4, xfailed=1, deselected=1)
    assert result.ret == 1
    text = result.stdout.str()
    assert "test_rules.py::test_missing_browser: chromium not installed" in text
    # a gpu-marked test, the listed (parametrized) test and an xfail are not reported
    assert "test_on_a_gpu" not in text and "test_listed" not in text and "test_xfails" not in text


def test_in_ci_only_allowed_skips_pass(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_ok="import pytest\n\n@pytest.mark.gpu\ndef test_gpu():\n    pytest.skip('no GPU')\n")
    monkeypatch.setenv("CI", "1")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert result.ret == 0


def test_the_loaded_hypothesis_profile_has_no_deadline_and_is_derandomised_in_ci():
    assert settings().deadline is None
    assert settings().derandomize == bool(os.environ.get("CI"))


def test_under_xdist_the_controller_fails_the_session_too(suite, monkeypatch):
    """scripts/test.sh runs the suite in two xdist workers: their skips reach the controller."""
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
    assert result.ret == 1
    assert "test_rules.py::test_missing_browser: chromium not installed" in result.stdout.str()
