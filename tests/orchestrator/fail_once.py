"""`python -m tests.orchestrator.fail_once FLAGFILE@STEP <groktune args>`: the CLI with one trial failing once.

Test-only: the first trial whose report reaches STEP raises once (creating FLAGFILE, holding the
step), so the retry-from-checkpoint path runs for real. Production code has no hook for this;
this module wraps the adapter's trainables before the CLI builds the sweep, and since it runs
as __main__, Ray pickles the wrappers by value, so the trial workers need not import tests/.
"""

from __future__ import annotations

import os
import sys


def fail_once(flag: str, at: int, step: int) -> None:
    """Raise RuntimeError the first time any trial reaches `at` (FLAGFILE created atomically)."""
    if step < at:
        return
    try:
        fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # failed once already (maybe in another trial's process)
    os.write(fd, f"{step}\n".encode())
    os.close(fd)
    raise RuntimeError(f"fail_once: failing once at step {step} (test hook)")


def failing(name: str, spec: str):
    """The trainable `name` of orchestrator.sweep.adapter with every report checked by fail_once.

    It looks `name` up in the trial's worker process, where the module is freshly imported
    (unwrapped), so the production function is pickled by reference as usual.
    """
    flag, at = spec.rsplit("@", 1)

    def trainable(config, **kwargs):
        from orchestrator.sweep import adapter as tune_adapter

        reporter = tune_adapter._Reporter
        if not getattr(reporter, "_fail_once", False):  # once per worker process
            original = reporter.__call__

            def call(self, record, save=None):
                fail_once(flag, int(at), int(record["step"]))
                return original(self, record, save)

            reporter.__call__, reporter._fail_once = call, True
        return getattr(tune_adapter, name)(config, **kwargs)

    return trainable


def main(argv: list[str]) -> int:
    """Wrap both trainables with the FLAGFILE@STEP spec argv[0], then run the CLI on argv[1:]."""
    from orchestrator.sweep import adapter as tune_adapter
    from orchestrator.cli.main import main as cli

    spec = argv[0]
    for name in ("trainable", "population_trainable"):
        setattr(tune_adapter, name, failing(name, spec))
    return cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
