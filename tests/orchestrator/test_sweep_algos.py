"""The searcher and scheduler registries (orchestrator.search.algos): names come from the tables,
an unknown name is refused (never FIFO), and each name builds the Ray class it stands for."""

import pytest

from groktune.errors import UserError
from orchestrator.search.algos import (
    SCHEDULERS,
    SEARCHERS,
    SchedulerSpec,
    build_scheduler,
    build_searcher,
    checkpoint_every,
    clones_checkpoints,
)
from orchestrator.search.config import SearchConfig

SPACE = {"optim.lr": {"loguniform": [1e-3, 1e-2]}}


def search(**kw) -> SearchConfig:
    kw.setdefault("space", SPACE)
    return SearchConfig(**kw)


def test_validation_takes_its_names_from_the_tables():
    for name in SCHEDULERS:
        search(scheduler=name, algorithm="pbt" if name == "pbt" else "random").validate()
    for name in SEARCHERS:
        search(algorithm=name, scheduler="pbt" if name == "pbt" else "fifo",
               space={"optim.lr": {"choice": [1e-3, 3e-3]}}).validate()  # every searcher takes a choice
    with pytest.raises(ValueError, match=r"scheduler: got 'median', allowed: " + ", ".join(SCHEDULERS)):
        search(scheduler="median").validate()
    with pytest.raises(ValueError, match=r"algorithm: got 'bohb', allowed: " + ", ".join(SEARCHERS)):
        search(algorithm="bohb").validate()


def test_an_unknown_name_is_never_built_as_fifo():
    with pytest.raises(UserError, match="search.scheduler: got 'ashaa'"):
        build_scheduler(search(scheduler="ashaa"), budget=100)
    with pytest.raises(UserError, match="search.algorithm: got 'tpee'"):
        build_searcher(search(algorithm="tpee"), seed=0, study_name="s")


def test_a_new_scheduler_is_one_builder_and_one_table_line(monkeypatch):
    built = []
    monkeypatch.setitem(SCHEDULERS, "median", SchedulerSpec(lambda s, budget, state_dir: built.append(budget) or "M"))
    cfg = search(scheduler="median")
    cfg.validate()
    assert build_scheduler(cfg, budget=300) == "M" and built == [300]
    assert not clones_checkpoints(cfg)


def test_each_name_builds_its_ray_scheduler(tmp_path):
    from ray.tune.schedulers import (  # deferred: Ray is required (no importorskip) but slow to import
        AsyncHyperBandScheduler,
        FIFOScheduler,
        HyperBandScheduler,
        PopulationBasedTraining,
    )

    from orchestrator.search.durable_asha import DurableASHA

    expected = {"asha": AsyncHyperBandScheduler, "hyperband": HyperBandScheduler, "fifo": FIFOScheduler,
                "pbt": PopulationBasedTraining}
    assert set(expected) == set(SCHEDULERS)
    for name, cls in expected.items():
        made = build_scheduler(search(scheduler=name), budget=100)
        assert type(made) is cls, name
    assert isinstance(build_scheduler(search(scheduler="asha"), budget=100, state_dir=tmp_path), DurableASHA)


def test_only_a_cloning_scheduler_tightens_the_checkpoint_spacing():
    pbt = search(algorithm="pbt", scheduler="pbt", perturbation_interval=50)
    assert clones_checkpoints(pbt) and checkpoint_every(pbt, 200) == 50
    for name in set(SCHEDULERS) - {"pbt"}:
        assert checkpoint_every(search(scheduler=name, perturbation_interval=50), 200) == 200
