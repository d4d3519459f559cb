"""The arguments every command that reads an experiment config takes, written once.

    add_config_arguments(p, sweep=True, name="experiment folder name (default: the config's name)")

gives CONFIG (the experiment YAML), repeatable `--set K=V` (into args.overrides, applied by
orchestrator.config.experiment.load_config) and, when `name` is given, `--name` (checked by
orchestrator.cli.paths.check_name_flag). Used by train, sweep, slurm submit and k8s render.
"""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser, sweep: bool, name: str | None = None) -> None:
    """Add CONFIG, --set and (with `name`, its help text) --name to `parser`.

    Args:
        parser: the command's parser.
        sweep: the command runs a sweep, so the config needs a `search:` section.
        name: the help of --name; None for a command without one (train names its folder with --out).
    """
    parser.add_argument("config", help="experiment YAML with a `search:` section" if sweep else "experiment YAML")
    example = "search.num_samples=24" if sweep else "optim.lr=3e-4"
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                        help=f"override a config value, e.g. --set {example} (repeatable)")
    if name is not None:
        parser.add_argument("--name", help=name)


__all__ = ["add_config_arguments"]
