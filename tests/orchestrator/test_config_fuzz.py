"""Property tests: no config input, however broken, produces anything but a valid config or a
one-line user error. Random mutations of a valid experiment config: wrong
types, huge, negative and non-finite numbers, random strings, nested junk, unknown keys, random
`--set` overrides and random YAML text.
"""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groktune.errors import ConfigError, UserError
from groktune.yamlio import load_yaml_text
from orchestrator.config.experiment import ExperimentConfig, config_from_dict, config_to_dict
from orchestrator.config.tree import parse_override
from tests.conftest import TINY, deep_merge

VALID = deep_merge(TINY, {"search": {"space": {"optim.lr": {"loguniform": [1e-4, 1e-2]},
                                               "train.batch_size": {"choice": [8, 16]}},
                                     "num_samples": 2}})
FULL = config_to_dict(config_from_dict(VALID))  # every key, with its default


def _paths(data: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in data.items():
        out.append(prefix + (key,))
        if isinstance(value, dict):
            out.extend(_paths(value, prefix + (key,)))
    return out


PATHS = _paths(FULL) + [("search", "space", "optim.lr", "loguniform"), ("nonsense",), ("task", "bogus")]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**12, 1e9, 1e30, -1e30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "..", "../../x", "a/b", "x\n", "\x00", "nan", "inf", "1e-3", "cuda", "fp16", "lm"]),
)
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=8)


def _set(data: dict, path: tuple, value) -> None:
    node = data
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def _accepts_or_refuses_cleanly(build) -> None:
    try:
        cfg = build()
    except UserError as err:  # what the CLI prints as one line
        message = str(err)
        assert message and "\n" not in message and "Traceback" not in message, message
        return
    assert isinstance(cfg, ExperimentConfig)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), junk), min_size=1, max_size=4))
def test_mutated_configs_validate_or_fail_in_one_line(mutations):
    data = copy.deepcopy(FULL)
    for path, value in mutations:
        _set(data, path, value)
    _accepts_or_refuses_cleanly(lambda: config_from_dict(data))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.text(max_size=30)), min_size=1, max_size=3))
def test_random_set_overrides_validate_or_fail_in_one_line(overrides):
    argv = [".".join(map(str, path)) + "=" + text for path, text in overrides]
    _accepts_or_refuses_cleanly(lambda: config_from_dict(copy.deepcopy(VALID), argv))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_random_yaml_text_loads_or_fails_in_one_line(text):
    try:
        value = load_yaml_text(text, "fuzz.yaml")
    except UserError as err:
        assert "\n" not in str(err)
        return
    if isinstance(value, dict):
        _accepts_or_refuses_cleanly(lambda: config_from_dict(value))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(PATHS), junk)
def test_mutated_yaml_files_round_trip_through_the_loader(path, value):
    data = copy.deepcopy(FULL)
    _set(data, path, value)
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    _accepts_or_refuses_cleanly(lambda: config_from_dict(load_yaml_text(text, "x.yaml", ConfigError) or {}))


def test_non_finite_override_is_refused_not_run():
    for text in ("optim.lr=.nan", "optim.lr=.inf", "optim.lr=nan", "optim.lr=inf"):
        try:
            config_from_dict(copy.deepcopy(VALID), [text])
        except ConfigError as err:
            assert "optim.lr" in str(err)
        else:
            raise AssertionError(f"{text} accepted")
    assert parse_override("optim.lr=1e-3") == (["optim", "lr"], 1e-3)


def _leaf_keys(data: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.extend(_leaf_keys(value, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}")
    return out


LEAF_KEYS = _leaf_keys({k: v for k, v in FULL.items() if k != "search"})
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**40), 10**40),
                    st.sampled_from([0, 1e-300, 1e-12, 1e300, -1e300, 2**63]))
dists = st.one_of(
    st.builds(lambda k, a: {k: a}, st.sampled_from(["loguniform", "uniform", "randint"]),
              st.lists(numbers, min_size=0, max_size=3)),
    st.builds(lambda k, a: {k: a}, st.sampled_from(["quniform", "qloguniform"]), st.lists(numbers, min_size=3, max_size=3)),
    st.builds(lambda k, a: {k: a}, st.sampled_from(["choice", "grid"]), st.lists(scalars, max_size=4)),
    junk,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(LEAF_KEYS + ["nonsense.key"]), dists, min_size=1, max_size=3),
       st.sampled_from(["tpe", "random", "grid"]))
def test_random_search_spaces_validate_or_fail_in_one_line(space, algorithm):
    from groktune.space import snap

    data = deep_merge(VALID, {"search": {"space": space, "algorithm": algorithm}})
    data["search"]["space"] = space
    cfg = None

    def build():
        nonlocal cfg
        cfg = config_from_dict(data)
        return cfg

    _accepts_or_refuses_cleanly(build)
    if cfg is not None:  # a valid space: quantising any in-range sample must work (the trainable does it)
        for dist in cfg.search.params.values():
            for value in (dist.low, dist.high, (dist.low + dist.high) / 2):
                snap(dist, value)
