"""The config / --set / --name arguments are one helper (orchestrator.cli.options), the same on
every command that reads an experiment config."""

from __future__ import annotations

import pytest

from orchestrator.cli.main import build_parser

COMMANDS = {("train",): False, ("sweep",): True, ("slurm", "submit"): True, ("k8s", "render"): True}


@pytest.mark.parametrize("command, named", list(COMMANDS.items()), ids=[" ".join(c) for c in COMMANDS])
def test_config_set_and_name_parse_alike(command, named):
    argv = [*command, "exp.yaml", "--set", "optim.lr=1e-3", "--set", "seed=2", *(["--name", "n1"] if named else [])]
    args = build_parser().parse_args(argv)
    assert args.config == "exp.yaml" and args.overrides == ["optim.lr=1e-3", "seed=2"]
    assert getattr(args, "name", None) == ("n1" if named else None)


def test_set_defaults_to_no_overrides():
    assert build_parser().parse_args(["sweep", "exp.yaml"]).overrides == []


def test_train_has_no_name_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "exp.yaml", "--name", "n1"])
    assert exit_.value.code == 2 and "unrecognized arguments: --name n1" in capsys.readouterr().err
