"""Search-space parsing and validation: each bad space is one line naming the key."""

import pytest

from orchestrator.config import config_from_dict
from orchestrator.configtree import ConfigError
from orchestrator.space import Dist, check_space, grid_size, parse_dist, parse_space, snap, snap_values
from orchestrator.sweep_algos import expected_trials, num_samples
from tests.conftest import TINY, deep_merge


def with_search(**search):
    return deep_merge(TINY, {"search": search})


def test_every_distribution_parses():
    space = parse_space({
        "optim.lr": {"loguniform": [1e-4, 1e-2]},
        "optim.weight_decay": {"uniform": [0.0, 2.0]},
        "model.d_model": {"quniform": [16, 64, 16]},
        "optim.eps": {"qloguniform": [1e-9, 1e-6, 1e-9]},
        "optim.warmup_steps": {"randint": [0, 100]},
        "train.batch_size": {"choice": [8, 16]},
        "task.op": {"grid": ["x+y", "x-y"]},
    })
    assert space["optim.lr"] == Dist("loguniform", 1e-4, 1e-2)
    assert space["model.d_model"].q == 16
    assert space["task.op"].values == ("x+y", "x-y")


def test_a_good_search_section_validates_and_counts_trials():
    cfg = config_from_dict(with_search(
        space={"optim.lr": {"loguniform": [1e-3, 1e-2]}, "task.op": {"grid": ["x+y", "x-y", "x*y"]}},
        algorithm="random", num_samples=4, seeds=[0, 1]))
    assert grid_size(cfg.search.space) == 3
    assert num_samples(cfg.search) == 4
    assert expected_trials(cfg.search) == 4 * 3 * 2


def test_tpe_repeats_each_config_per_seed():
    cfg = config_from_dict(with_search(space={"optim.lr": {"loguniform": [1e-3, 1e-2]}}, num_samples=5, seeds=[0, 1, 2]))
    assert num_samples(cfg.search) == 15 and expected_trials(cfg.search) == 15


@pytest.mark.parametrize("search, needle", [
    ({"space": {"optim.lrr": {"loguniform": [1e-4, 1e-2]}}}, "search.space.optim.lrr: unknown key"),
    ({"space": {"model": {"choice": [1, 2]}}}, "search.space.model: unknown key"),
    ({"space": {"train.batch_size": {"choice": []}}}, "search.space.train.batch_size.choice: needs a non-empty list"),
    ({"space": {"task.op": {"grid": []}}, "algorithm": "grid"}, "search.space.task.op.grid: needs a non-empty list"),
    ({"space": {"optim.lr": {"loguniform": [1e-2, 1e-3]}}}, "search.space.optim.lr.loguniform: low 0.01 >= high 0.001"),
    ({"space": {"optim.weight_decay": {"uniform": [1.0, 1.0]}}}, "search.space.optim.weight_decay.uniform: low 1 >= high 1"),
    ({"space": {"optim.lr": {"uniform": [-1e-3, 1e-2]}}}, "search.space.optim.lr.uniform: every value must be > 0"),
    ({"space": {"optim.lr": {"loguniform": [-1e-3, 1e-2]}}}, "search.space.optim.lr.loguniform: needs low > 0"),
    ({"space": {"optim.weight_decay": {"loguniform": [0.0, 1.0]}}}, "weight_decay.loguniform: needs low > 0"),
    ({"space": {"optim.lr": {"logunif": [1e-4, 1e-2]}}}, "search.space.optim.lr: unknown distribution 'logunif'"),
    ({"space": {"optim.lr": [1e-4, 1e-2]}}, "search.space.optim.lr: got [0.0001, 0.01], expected one mapping"),
    ({"space": {"optim.lr": {"uniform": [1e-4]}}}, "optim.lr.uniform: needs [low, high] as numbers"),
    ({"space": {"model.d_model": {"quniform": [16, 64, 0]}}}, "q must be > 0"),
    ({"space": {"optim.beta1": {"uniform": [0.5, 1.5]}}}, "search.space.optim.beta1.uniform: value 1.5 gives an invalid config"),
    ({"space": {"task.op": {"choice": ["x+y", "x^y"]}}}, "search.space.task.op.choice: value 'x^y' gives an invalid config"),
    ({"algorithm": "bayes"}, "search.algorithm: got 'bayes', allowed: tpe, random, grid, pbt, nsga2"),
    ({"scheduler": "median"}, "search.scheduler: got 'median'"),
    ({"space": {"task.op": {"grid": ["x+y", "x-y"]}}}, "search.space.task.op: grid needs algorithm random, grid or pbt"),
    ({"space": {"optim.lr": {"uniform": [1e-4, 1e-2]}}, "algorithm": "pbt"}, "pbt needs algorithm: pbt and scheduler: pbt"),
    ({"space": {"model.d_model": {"choice": [16, 32]}}, "algorithm": "pbt", "scheduler": "pbt"}, "pbt can only perturb optim/train keys"),
    ({"space": {"train.steps": {"choice": [10, 20]}}}, "search.space.train.steps: the step budget is fixed"),
    ({"space": {"optim.lr": {"uniform": [1e-4, 1e-2]}}, "algorithm": "grid"}, "algorithm grid needs grid or choice values"),
    ({"space": {}}, "search.space: empty"),
    ({"seeds": []}, "search.seeds: empty list"),
    ({"seeds_per_trial": 0}, "search.seeds_per_trial: got 0, must be in [1, 1000]"),
    ({"seeds_per_trial": 3, "seeds": [0, 1]}, "search.seeds_per_trial: got 3 with 2 seeds; give one seed"),
    ({"population_vectorize": "jit"}, "search.population_vectorize: got 'jit', allowed: loop, vmap"),
])
def test_bad_search_is_one_line_naming_the_key(search, needle):
    data = with_search(**{"space": {"optim.lr": {"loguniform": [1e-4, 1e-2]}}, **search})
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    msg = str(err.value)
    assert needle in msg
    assert "\n" not in msg


def test_check_space_alone_needs_no_config():
    check_space({"optim.lr": {"loguniform": [1e-4, 1e-2]}})
    with pytest.raises(ValueError, match="space.optim.lr.uniform: low"):
        check_space({"optim.lr": {"uniform": [1e-2, 1e-4]}})


def test_snap_quantises_and_keeps_integers_integers():
    d = parse_dist("model.d_model", {"quniform": [16, 64, 16]})
    assert snap(d, 37.2) == 32 and isinstance(snap(d, 37.2), int)
    assert snap(d, 70.0) == 64  # clipped to high
    q = parse_dist("optim.eps", {"qloguniform": [1e-9, 1e-6, 1e-9]})
    assert snap(q, 3.4e-9) == pytest.approx(3e-9)
    assert snap_values({"a.b": {"uniform": [0, 1]}}, {"a.b": 0.3, "seed": 1}) == {"a.b": 0.3, "seed": 1}


def test_sampled_point_becomes_a_trial_config():
    from orchestrator.trial_config import TRIAL_INDEX, maker_for

    cfg = config_from_dict(with_search(
        space={"optim.lr": {"loguniform": [1e-4, 1e-2]}, "model.d_model": {"quniform": [16, 64, 16]}},
        seeds=[5, 6], cpus_per_trial=2))
    make = maker_for(cfg)
    trial = make({"optim.lr": 2e-3, "model.d_model": 33.0, TRIAL_INDEX: 1})
    assert trial.optim.lr == 2e-3 and trial.model.d_model == 32 and trial.seed == 6
    assert trial.search is None and trial.train.num_threads == 1  # TINY pins num_threads=1
    make2 = maker_for(config_from_dict(deep_merge(with_search(space={"optim.lr": {"loguniform": [1e-4, 1e-2]}},
                                                              cpus_per_trial=2), {"train": {"num_threads": 0}})))
    assert make2({"optim.lr": 1e-3}).train.num_threads == 2 and make2({"optim.lr": 1e-3}).seed == 0


@pytest.mark.parametrize("sections, needle", [
    ({"task": {"name": "lm", "path": "tokens.bin"}}, "task.name 'lm' is not supported"),
    ({"train": {"precision": "fp16"}}, "train.precision fp16 is not supported"),
    ({"probes": {"kinds": ["weights"]}}, "probes are not supported"),
])
def test_a_population_trial_is_refused_where_populations_cannot_train(sections, needle):
    data = deep_merge(with_search(space={"optim.lr": {"loguniform": [1e-4, 1e-2]}}, seeds_per_trial=3), sections)
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    msg = str(err.value)
    assert msg.startswith("search.seeds_per_trial: got 3 (one population per trial), but ") and needle in msg, msg
    assert msg.endswith("or set search.seeds_per_trial: 1") and "\n" not in msg


def test_a_population_trial_trains_its_point_once_per_member_seed():
    from orchestrator.trial_config import maker_for

    cfg = config_from_dict(with_search(space={"optim.lr": {"loguniform": [1e-4, 1e-2]}}, seeds=[7], seeds_per_trial=3))
    members = maker_for(cfg).members({"optim.lr": 2e-3})
    assert [m.seed for m in members] == [7, 1007, 2007]
    assert all(m.optim.lr == 2e-3 and m.search is None for m in members)
    assert maker_for(config_from_dict(with_search(space={"optim.lr": {"loguniform": [1e-4, 1e-2]}}))).members(
        {"optim.lr": 2e-3})[0].seed == 0  # seeds_per_trial 1: one member, the trial's own seed
