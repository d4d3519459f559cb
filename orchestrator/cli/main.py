"""The `groktune` command: each subcommand lives in its own module with `register(subparsers)`.

A subcommand's handler does parse -> build -> run -> write; logic lives in the packages.
User errors (ConfigError, UserError) print one line `groktune: error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from orchestrator.config.tree import ConfigError
from orchestrator.errors import UserError
from tasks.errors import DataError
from trials.errors import CheckpointError, SetupError

USER_ERRORS = (ConfigError, UserError, DataError, CheckpointError, SetupError)

# Subcommand modules, in the order `groktune --help` lists them. Each defines
# `register(subparsers)`, which adds a parser whose `func(args) -> int` runs the command.
COMMANDS = [
    "orchestrator.cli.train",
    "orchestrator.cli.sweep",
    "orchestrator.cli.collect",
    "orchestrator.cli.status",
    "orchestrator.cli.report",
    "orchestrator.cli.bench",
    "orchestrator.cli.slurm",
    "orchestrator.cli.k8s",
]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (`groktune train: error: ...`, exit 2), like every other error.

    Subparsers inherit the class, so a bad flag of any subcommand reads the same.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(text: str) -> str:
    """The message with line breaks escaped: a path or value holding a newline stays one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="groktune",
        description="Grokking studies: train, sweep, analyse and report on algorithmic tasks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already printed as one line
        return int(done.code or 0) if not isinstance(done.code, str) else 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        print(f"groktune: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:
        # A path argument the checks above let through (permissions, a file vanishing, a full
        # disk): still one line naming the file, never a traceback.
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"groktune: error: {one_line(where)}{err.strerror or type(err).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("groktune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
