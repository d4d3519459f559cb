"""Search-space parsing and validation: each bad space is one line naming the key."""

import math

import pytest

from groktune.errors import ConfigError
from groktune.space import Dist, grid_size, parse_dist, parse_space, snap, snap_values
from orchestrator.config.experiment import config_from_dict
from orchestrator.search.algos import expected_trials, num_samples, param_space
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
    assert grid_size(cfg.search.params) == 3
    assert num_samples(cfg.search) == 4
    assert expected_trials(cfg.search) == 4 * 3 * 2


def test_tpe_repeats_each_config_per_seed():
    cfg = config_from_dict(with_search(space={"optim.lr": {"loguniform": [1e-3, 1e-2]}}, num_samples=5, seeds=[0, 1, 2]))
    assert num_samples(cfg.search) == 15 and expected_trials(cfg.search) == 15


@pytest.mark.parametrize("pack", [1, 4])
def test_random_search_trains_each_sampled_config_once_per_seed_and_grid_value(pack):
    """Ray draws random values anew for every grid value unless told otherwise; the seeds are a
    grid dimension, so without constant_grid_search each seed would train a config of its own."""
    from ray.tune.experiment import Experiment

    from orchestrator.search.algos import build_searcher, param_space
    from orchestrator.sweep.packing import sample_points

    cfg = config_from_dict(with_search(
        space={"optim.lr": {"loguniform": [1e-3, 1e-2]}, "task.op": {"grid": ["x+y", "x-y"]}},
        algorithm="random", num_samples=3, seeds=[0, 1], scheduler="fifo", pack=pack))
    if pack == 1:  # the Tuner's generator, driven as Tune drives it
        gen = build_searcher(cfg.search, 0, "s")
        gen.add_configurations([Experiment("x", run=lambda config: None, config=param_space(cfg.search),
                                           num_samples=num_samples(cfg.search))])
        points = []
        while (trial := gen.next_trial()) is not None:
            points.append(trial.config)
    else:  # packs: drawn on the driver
        points = sample_points(param_space(cfg.search), cfg.search.num_samples, cfg.seed)
    assert len(points) == expected_trials(cfg.search) == 3 * 2 * 2
    by_lr: dict[float, set] = {}
    for p in points:
        by_lr.setdefault(p["optim.lr"], set()).add((p["task.op"], p["seed"]))
    assert len(by_lr) == 3 and all(cells == {(op, s) for op in ("x+y", "x-y") for s in (0, 1)} for cells in by_lr.values())


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
    ({"population_vectorize": "jit"}, "search.population_vectorize: got 'jit', allowed: auto, loop, vmap"),
])
def test_bad_search_is_one_line_naming_the_key(search, needle):
    data = with_search(**{"space": {"optim.lr": {"loguniform": [1e-4, 1e-2]}}, **search})
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    msg = str(err.value)
    assert needle in msg
    assert "\n" not in msg


def test_parse_space_alone_needs_no_config():
    parse_space({"optim.lr": {"loguniform": [1e-4, 1e-2]}})
    with pytest.raises(ValueError, match="space.optim.lr.uniform: low"):
        parse_space({"optim.lr": {"uniform": [1e-2, 1e-4]}})


def test_snap_quantises_and_keeps_integers_integers():
    d = parse_dist("model.d_model", {"quniform": [16, 64, 16]})
    assert snap(d, 37.2) == 32 and isinstance(snap(d, 37.2), int)
    assert snap(d, 70.0) == 64  # clipped to high
    q = parse_dist("optim.eps", {"qloguniform": [1e-9, 1e-6, 1e-9]})
    assert snap(q, 3.4e-9) == pytest.approx(3e-9)
    assert snap_values(parse_space({"a.b": {"uniform": [0, 1]}}), {"a.b": 0.3, "seed": 1}) == {"a.b": 0.3, "seed": 1}


def test_sampled_point_becomes_a_trial_config():
    from orchestrator.config.trial import TRIAL_INDEX, maker_for

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
    ({"task": {"name": "lm", "path": "tokens.bin"}}, "task.name 'lm' trains in loop mode only"),
    ({"train": {"precision": "fp16"}}, "train.precision fp16 trains in loop mode only"),
    ({"probes": {"kinds": ["weights"]}}, "probes run in single runs only"),
])
def test_a_population_trial_is_refused_where_populations_cannot_train(sections, needle):
    data = deep_merge(with_search(space={"optim.lr": {"loguniform": [1e-4, 1e-2]}}, seeds_per_trial=3,
                                  population_vectorize="vmap"), sections)
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    msg = str(err.value)
    assert msg.startswith("search.seeds_per_trial: got 3 (one population per trial), but ") and needle in msg, msg
    assert msg.endswith("or set search.seeds_per_trial: 1") and "\n" not in msg


def test_a_population_trial_trains_its_point_once_per_member_seed():
    from orchestrator.config.trial import maker_for

    cfg = config_from_dict(with_search(space={"optim.lr": {"loguniform": [1e-4, 1e-2]}}, seeds=[7], seeds_per_trial=3))
    members = maker_for(cfg).members({"optim.lr": 2e-3})
    assert [m.seed for m in members] == [7, 1007, 2007]
    assert all(m.optim.lr == 2e-3 and m.search is None for m in members)
    assert maker_for(config_from_dict(with_search(space={"optim.lr": {"loguniform": [1e-4, 1e-2]}}))).members(
        {"optim.lr": 2e-3})[0].seed == 0  # seeds_per_trial 1: one member, the trial's own seed


# --- a range per value of another key (loguniform_per / uniform_per) ---------------------------

PER_OPTIMIZER = {
    "optim.name": {"choice": ["adamw", "lion"]},
    "optim.lr": {"loguniform_per": {"optim.name": {"adamw": [1e-3, 1e-1], "lion": [1e-5, 1e-3]}}},
    "optim.weight_decay": {"uniform_per": {"optim.name": {"adamw": [0.0, 2.0], "lion": [1.0, 3.0]}}},
}


@pytest.mark.parametrize("u", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_a_position_resolves_to_the_range_of_the_chosen_value(u):
    for name, (low, high), (wlow, whigh) in (("adamw", (1e-3, 1e-1), (0.0, 2.0)), ("lion", (1e-5, 1e-3), (1.0, 3.0))):
        point = snap_values(parse_space(PER_OPTIMIZER), {"optim.name": name, "optim.lr": u, "optim.weight_decay": u})
        assert point["optim.lr"] == pytest.approx(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))
        assert point["optim.weight_decay"] == pytest.approx(wlow + u * (whigh - wlow))
        assert low * (1 - 1e-9) <= point["optim.lr"] <= high * (1 + 1e-9)


def test_a_trial_config_holds_the_resolved_value_and_every_sampler_sees_a_unit_interval():
    from orchestrator.search.ray_space import mutations, to_ray
    from orchestrator.config.trial import maker_for

    cfg = config_from_dict(with_search(space=PER_OPTIMIZER, num_samples=4))
    trial = maker_for(cfg)({"optim.name": "lion", "optim.lr": 0.5, "optim.weight_decay": 0.5})
    assert trial.optim.name == "lion" and trial.optim.lr == pytest.approx(1e-4) and trial.optim.weight_decay == 2.0
    for domains in (to_ray(cfg.search.params), mutations(cfg.search.params)):
        assert (domains["optim.lr"].lower, domains["optim.lr"].upper) == (0.0, 1.0)


@pytest.mark.parametrize("space, needle", [
    ({"optim.lr": {"loguniform_per": {"optim.name": {"adamw": [1e-3, 1e-1]}}}},
     "space.optim.lr.loguniform_per.optim.name: must be a choice or grid key of the same search.space, but it is not in the space"),
    ({"optim.weight_decay": {"uniform": [0.0, 1.0]}, "optim.lr": {"loguniform_per": {"optim.weight_decay": {"a": [1e-3, 1e-1]}}}},
     "optim.weight_decay: must be a choice or grid key of the same search.space, but it is a uniform"),
    ({**PER_OPTIMIZER, "optim.lr": {"loguniform_per": {"optim.name": {"adamw": [1e-3, 1e-1]}}}},
     "loguniform_per.optim.name: no range for 'lion'; give one for each value of optim.name: adamw, lion"),
    ({**PER_OPTIMIZER, "optim.lr": {"loguniform_per": {"optim.name": {"adamw": [1e-3, 1e-1], "lion": [1e-5, 1e-3], "sgd": [1e-2, 1.0]}}}},
     "loguniform_per.optim.name: 'sgd' is not a value of optim.name (adamw, lion)"),
    ({**PER_OPTIMIZER, "optim.lr": {"loguniform_per": {"optim.name": {"adamw": [1e-1, 1e-3], "lion": [1e-5, 1e-3]}}}},
     "optim.lr.loguniform_per.optim.name.adamw.loguniform: low 0.1 >= high 0.001"),
    ({**PER_OPTIMIZER, "optim.lr": {"loguniform_per": {"optim.name": {"adamw": [0.0, 1e-3], "lion": [1e-5, 1e-3]}}}},
     "optim.name.adamw.loguniform: needs low > 0"),
    ({**PER_OPTIMIZER, "optim.lr": {"loguniform_per": [1e-3, 1e-1]}},
     "space.optim.lr.loguniform_per: needs {OTHER_KEY: {VALUE: [low, high], ...}}"),
    ({**PER_OPTIMIZER, "optim.lr": {"loguniform_per": {"optim.name": []}}},
     "space.optim.lr.loguniform_per.optim.name: needs a range [low, high] per value"),
    ({**PER_OPTIMIZER, "optim.beta1": {"uniform_per": {"optim.name": {"adamw": [0.5, 1.5], "lion": [0.8, 0.9]}}}},
     "search.space.optim.beta1.uniform_per: value optim.name='adamw', optim.beta1=1.5 gives an invalid config"),
])
def test_a_bad_per_value_range_is_one_line_naming_the_key(space, needle):
    with pytest.raises(ConfigError) as err:
        config_from_dict(with_search(space=space))
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_grid_search_refuses_a_per_value_range():
    with pytest.raises(ConfigError, match="algorithm grid needs grid or choice values, got loguniform_per"):
        config_from_dict(with_search(space=PER_OPTIMIZER, algorithm="grid"))


def test_the_space_is_parsed_once_by_validation_and_every_consumer_reads_that(monkeypatch):
    """SearchConfig.validate parses search.space into typed distributions (SearchConfig.params);
    Ray's domains, PBT's mutations, the grid count, the trial configs and the tables read them
    and never parse the mapping again."""
    import groktune.space as space_module
    from orchestrator.config.trial import maker_for
    from orchestrator.search.ray_space import mutations, to_ray
    from orchestrator.sweep.results import point_values

    calls = []
    parse = space_module.parse_dist
    monkeypatch.setattr(space_module, "parse_dist", lambda key, spec: calls.append(key) or parse(key, spec))
    cfg = config_from_dict(with_search(space=PER_OPTIMIZER, algorithm="random", num_samples=2))
    assert set(PER_OPTIMIZER) <= set(calls)  # parsed by validation
    parsed = len(calls)
    assert cfg.search.params["optim.lr"].kind == "loguniform_per" and cfg.search.params["optim.name"].discrete
    point = {"optim.name": "lion", "optim.lr": 0.5, "optim.weight_decay": 0.5}
    to_ray(cfg.search.params), mutations(cfg.search.params), param_space(cfg.search), expected_trials(cfg.search)
    trial = maker_for(cfg)(point)
    assert point_values(point, cfg.search.params, "params.json")["optim.lr"] == pytest.approx(trial.optim.lr)
    assert len(calls) == parsed  # nothing parsed the mapping again
