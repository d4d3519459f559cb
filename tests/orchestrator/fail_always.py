"""`python -m tests.orchestrator.fail_always KEY=VALUE@STEP <groktune args>`: the CLI with trials that always fail.

Test-only, in the style of tests/orchestrator/fail_once.py: every start of a trial whose sampled
point has KEY == VALUE raises when its report reaches STEP, retries included, so the trial
errors for good once search.max_failures retries are spent; the other trials train normally.
"""

from __future__ import annotations

import sys


def failing(name: str, key: str, value: str, at: int):
    """The trainable `name` of orchestrator.sweep.adapter, raising at step `at` for config[key] == value."""

    def trainable(config, **kwargs):
        from orchestrator.sweep import adapter as tune_adapter

        reporter = tune_adapter._Reporter
        if not getattr(reporter, "_fail_always", False):  # once per worker process
            original = reporter.__call__

            def call(self, record, save=None):
                if reporter._fail_at is not None and int(record["step"]) >= reporter._fail_at:
                    raise RuntimeError(f"fail_always: {key}={value} fails at step {record['step']} (test hook)")
                return original(self, record, save)

            reporter.__call__, reporter._fail_always = call, True
        # Per trial: a reused worker may run a failing trial and then a healthy one.
        reporter._fail_at = at if str(config.get(key)) == value else None
        try:
            return getattr(tune_adapter, name)(config, **kwargs)
        finally:
            reporter._fail_at = None

    return trainable


def main(argv: list[str]) -> int:
    """Wrap both trainables with the KEY=VALUE@STEP spec argv[0], then run the CLI on argv[1:]."""
    from orchestrator.sweep import adapter as tune_adapter
    from orchestrator.cli.main import main as cli

    point, at = argv[0].rsplit("@", 1)
    key, value = point.split("=", 1)
    for name in ("trainable", "population_trainable"):
        setattr(tune_adapter, name, failing(name, key, value, int(at)))
    return cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
