"""orchestrator/config/experiment.py: config_from_dict leaves the caller's data alone."""

import copy

from orchestrator.config.experiment import config_from_dict


def test_config_from_dict_does_not_write_overrides_into_the_callers_dict():
    data = {"task": {"name": "modular", "op": "x+y", "p": 97}, "optim": {"lr": 1e-3}}
    before = copy.deepcopy(data)
    cfg = config_from_dict(data, ["task.p=7", "optim.lr=0.5", "model.d_model=32"])
    assert (cfg.task.p, cfg.optim.lr, cfg.model.d_model) == (7, 0.5, 32)
    assert data == before
