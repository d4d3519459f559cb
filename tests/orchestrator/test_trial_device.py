"""A sweep's train.device follows search.gpus_per_trial: what Ray reserves is what a trial uses.

Fast tier: pure functions and a refused sweep that exits 2 before Ray starts.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.search.config import check_trial_device, trial_device
from orchestrator.config.trial import maker_for
from tests.conftest import TINY, deep_merge
from orchestrator.config.experiment import config_from_dict

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"optim.lr": {"loguniform": [1e-3, 1e-2]}}


@pytest.mark.parametrize("device, gpus, expected", [
    ("auto", 0, "cpu"), ("auto", 0.25, "cuda"), ("auto", 2, "cuda"), ("cpu", 0, "cpu"), ("cuda", 1, "cuda")])
def test_auto_follows_the_gpus_reserved(device, gpus, expected):
    check_trial_device(device, gpus)
    assert trial_device(device, gpus) == expected


@pytest.mark.parametrize("device, gpus, message", [
    ("cuda", 0, "train.device: got 'cuda' with search.gpus_per_trial 0"),
    ("cpu", 0.5, "train.device: got 'cpu' with search.gpus_per_trial 0.5: the reserved GPU would idle"),
    ("mps", 1, "train.device: got 'mps' with search.gpus_per_trial 1"),
    ("cuda:1", 1, "train.device: got 'cuda:1'; in a sweep each trial sees only the GPUs Ray gives it"),
    ("cuda:0", 0, "train.device: got 'cuda:0'"),
])
def test_a_device_that_does_not_fit_the_reservation_is_refused(device, gpus, message):
    with pytest.raises(ValueError) as err:
        check_trial_device(device, gpus)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize("gpus, expected", [(0, "cpu"), (0.5, "cuda")])
def test_each_trial_config_gets_the_resolved_device(gpus, expected):
    cfg = config_from_dict(deep_merge(TINY, {"train": {"device": "auto"},
                                             "search": {"space": SPACE, "gpus_per_trial": gpus}}))
    maker = maker_for(cfg)
    assert maker({"optim.lr": 3e-3}).train.device == expected
    assert {m.train.device for m in maker.members({"optim.lr": 3e-3})} == {expected}


def test_the_sweep_command_refuses_the_mismatch_before_ray(tmp_path):
    """gpus_per_trial 0 (passes the GPU check on any machine) with device cuda: one line, exit 2."""
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(deep_merge(TINY, {"train": {"device": "cuda"},
                                                       "search": {"space": SPACE, "gpus_per_trial": 0}})))
    storage = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "sweep", str(config), "--storage", str(storage)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.device: got 'cuda' with search.gpus_per_trial 0" in lines[0]
    assert not storage.exists()


@pytest.mark.parametrize("train, message", [
    ({"device": "cpu", "tf32": True}, "train.tf32: TF32 matmuls are CUDA's; got device 'cpu'"),
    ({"compile_mode": "fastest"}, "train.compile_mode: got 'fastest', allowed: default, reduce-overhead"),
])
def test_gpu_settings_are_checked_at_validation(train, message):
    from orchestrator.config.tree import ConfigError

    with pytest.raises(ConfigError) as err:
        config_from_dict(deep_merge(TINY, {"train": train}))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_tf32_is_recorded_with_the_run():
    from orchestrator.config.experiment import dump_config

    cfg = config_from_dict(deep_merge(TINY, {"train": {"device": "auto", "tf32": True}}))
    assert "tf32: true" in dump_config(cfg)
