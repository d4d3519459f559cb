"""The command line starts without torch or Ray: `groktune --help`, every `groktune <cmd> --help`
(subcommands included), and `status` and `collect` on a finished sweep folder import neither.

Each command runs in a fresh interpreter (`orchestrator.cli.main.main`, what the console script
calls), which then lists the top-level packages it imported; the test measures imports, not
time (benchmarks/README.md has the timings). A command that needs torch or Ray imports it inside
the handler that runs it, with a `# deferred:` comment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli.main import build_parser
from tests.orchestrator.fake_sweep import write_sweep

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "ray"}

PROBE = """
import json, sys
from orchestrator.cli.main import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}, f)
"""


def imported(tmp_path: Path, *argv: str) -> tuple[int, set[str]]:
    """(exit code, top-level packages imported) of `groktune ARGV` in a fresh interpreter."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(out), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and out.exists(), proc.stderr[-2000:]
    data = json.loads(out.read_text())
    return data["code"], set(data["modules"])


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the parser, e.g. ("slurm", "submit")."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append(prefix + (name,))
                paths.extend(command_paths(sub, prefix + (name,)))
    return paths


COMMANDS = command_paths(build_parser())


def test_every_command_is_listed():
    assert {("train",), ("sweep",), ("status",), ("collect",), ("report",), ("bench",), ("slurm", "submit"),
            ("k8s", "render")} <= set(COMMANDS)


def test_the_probe_sees_a_heavy_import(tmp_path):
    # The check can fail: a process that trains (here: imports the trainer's module) lists torch.
    code = subprocess.run([sys.executable, "-c", "import json, sys; import orchestrator.run.train; "
                           "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "torch" in json.loads(code.stdout)


def test_help_imports_neither_torch_nor_ray(tmp_path):
    code, modules = imported(tmp_path, "--help")
    assert code == 0 and modules & HEAVY == set()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_help_imports_neither_torch_nor_ray(tmp_path, command):
    code, modules = imported(tmp_path, *command, "--help")
    assert code == 0 and modules & HEAVY == set()


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    return write_sweep(tmp_path_factory.mktemp("fast_cli") / "fake", n_trials=4, n_evals=5)


@pytest.mark.parametrize("argv", [("status",), ("status", "--json"), ("collect",)], ids=" ".join)
def test_status_and_collect_import_neither_torch_nor_ray(tmp_path, finished_sweep, argv):
    code, modules = imported(tmp_path, *argv, str(finished_sweep))
    assert code == 0 and modules & HEAVY == set()
    assert "pandas" in modules  # they did build the tables
