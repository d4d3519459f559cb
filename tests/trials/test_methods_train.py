"""The grokking methods beyond Adam and SGD as config options and search parameters, in real tiny training runs:
validation, bitwise resume per new optimizer, and populations refusing them in one line."""

import copy

import pytest

from orchestrator.config.experiment import config_from_dict
from orchestrator.config.tree import ConfigError
from tests.conftest import TINY, deep_merge
from tests.trials.test_train import assert_resume_at_30_matches, collect

METHODS = {
    "lion": {"name": "lion", "lr": 1e-3},
    "muon": {"name": "muon", "muon_lr": 0.02},
    "adamw+stablemax+orthograd+rowclip": {"loss": "stablemax", "orthogonal_grad": True, "weight_norm_clip": 1.0,
                                          "weight_decay": 0.0},
    "lion+matrixclip": {"name": "lion", "lr": 1e-3, "weight_norm_clip": 2.0, "weight_norm_clip_mode": "matrix"},
}


@pytest.mark.parametrize("method", list(METHODS))
def test_resume_gives_the_same_records_bitwise(tiny_cfg, tmp_path, method):
    full = assert_resume_at_30_matches(tiny_cfg(optim=METHODS[method]), tmp_path)
    assert full[-1]["train_acc"] > full[0]["train_acc"]  # it learns


def test_methods_change_the_run(tiny_cfg):
    base = collect(tiny_cfg())[1][-1]
    for extra in METHODS.values():
        assert collect(tiny_cfg(optim=extra))[1][-1]["param_norm"] != base["param_norm"]


@pytest.mark.parametrize("override", ["optim.name=lion", "optim.name=muon", "optim.loss=stablemax",
                                      "optim.orthogonal_grad=true", "optim.weight_norm_clip=2",
                                      "optim.weight_norm_clip_mode=matrix", "optim.muon_lr=0.05"])
def test_set_overrides_validate(override):
    cfg = config_from_dict(copy.deepcopy(TINY), [override])  # --set edits nested dicts in place
    key, value = override.split("=")
    assert str(getattr(cfg.optim, key.split(".")[1])).lower() == value.lower() or float(value) == getattr(
        cfg.optim, key.split(".")[1])


@pytest.mark.parametrize("override,message", [
    ("optim.name=lamb", "optim.name: got 'lamb', allowed: adamw, adam, sgd, lion, muon"),
    ("optim.loss=focal", "optim.loss: got 'focal', allowed: cross_entropy, stablemax"),
    ("optim.weight_norm_clip_mode=column", "optim.weight_norm_clip_mode: got 'column', allowed: row, matrix"),
    ("optim.weight_norm_clip=-1", "optim.weight_norm_clip: got -1"),
])
def test_bad_values_are_refused_in_one_line(override, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(copy.deepcopy(TINY), [override])  # --set edits nested dicts in place
    assert message in str(err.value) and "\n" not in str(err.value)


def test_stablemax_with_label_smoothing_is_refused():
    with pytest.raises(ConfigError, match="label_smoothing.*stablemax"):
        config_from_dict(deep_merge(TINY, {"optim": {"loss": "stablemax", "label_smoothing": 0.1}}))


def test_methods_are_search_parameters():
    space = {"optim.name": {"choice": ["adamw", "lion", "muon"]},
             "optim.loss": {"choice": ["cross_entropy", "stablemax"]},
             "optim.orthogonal_grad": {"choice": [True, False]},
             "optim.weight_norm_clip": {"uniform": [0.0, 3.0]},
             "optim.weight_norm_clip_mode": {"choice": ["row", "matrix"]},
             "optim.muon_lr": {"loguniform": [1e-3, 1e-1]}}
    cfg = config_from_dict(deep_merge(TINY, {"search": {"space": space, "num_samples": 2}}))
    assert set(cfg.search.space) == set(space)
    with pytest.raises(ConfigError, match="lamb"):
        config_from_dict(deep_merge(TINY, {"search": {"space": {"optim.name": {"choice": ["adamw", "lamb"]}},
                                                      "num_samples": 2}}))


@pytest.mark.parametrize("optim,reason", [
    ({"name": "lion"}, "optim.name 'lion' is not supported; use adamw, adam, sgd"),
    ({"name": "muon"}, "optim.name 'muon' is not supported"),
    ({"loss": "stablemax"}, "optim.loss 'stablemax' is not supported"),
    ({"orthogonal_grad": True}, "optim.orthogonal_grad is not supported"),
    ({"weight_norm_clip": 2.0}, "optim.weight_norm_clip is not supported"),
])
def test_populations_refuse_the_new_methods_at_validation(optim, reason):
    data = deep_merge(TINY, {"optim": optim, "search": {"space": {"optim.lr": {"loguniform": [1e-4, 1e-2]}},
                                                         "num_samples": 2, "seeds_per_trial": 2}})
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert reason in str(err.value) and "seeds_per_trial" in str(err.value) and "\n" not in str(err.value)
    data["search"]["seeds_per_trial"] = 1
    config_from_dict(data)  # fine as single runs
