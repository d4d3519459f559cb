"""configs/fastest_modmul97_methods.yaml (the broad search), configs/fastest_modmul97.yaml (the
search around its best region) and configs/modmul97_fastest.yaml (what it found).

Fast: the sweep configs validate with their spaces checked against the experiment, the broad one
also as the two-objective variant its comments give; the second stage packs its points. Slow (cheap): the found train config trains a few steps
through the real CLI. No test asserts the speed (README "Fastest x·y mod 97" measures it).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.config.experiment import load_config

ROOT = Path(__file__).resolve().parents[2]
SEARCH = ROOT / "configs" / "fastest_modmul97_methods.yaml"
REFINE = ROOT / "configs" / "fastest_modmul97.yaml"
FOUND = ROOT / "configs" / "modmul97_fastest.yaml"


def test_the_search_config_validates_against_its_experiment():
    cfg = load_config(SEARCH)
    cfg.search.check_against(cfg)  # every searched key exists
    assert {"optim.name", "optim.lr", "optim.weight_norm_clip", "optim.grokfast.lamb"} <= set(cfg.search.space)
    assert (cfg.task.op, cfg.task.p, cfg.task.train_fraction, cfg.train.target_val_acc) == ("x*y", 97, 0.5, 0.95)
    two = load_config(SEARCH, ["search.metric=[grok_score, cpu_time_s]", "search.mode=[min, min]",
                               "search.scheduler=fifo", "search.seeds=[0]"])
    assert two.search.metric == ["grok_score", "cpu_time_s"]


def test_the_second_stage_packs_per_member_scalars_around_the_found_region():
    from trials.config import is_structural

    cfg = load_config(REFINE)
    cfg.search.check_against(cfg)
    assert cfg.search.pack > 1 and not any(is_structural(k) for k in cfg.search.space)  # every pack one population
    assert (cfg.task.op, cfg.task.p, cfg.task.train_fraction, cfg.train.target_val_acc) == ("x*y", 97, 0.5, 0.95)
    assert len(cfg.search.seeds) >= 3 and cfg.search.verify.top > 0 and cfg.search.verify.seeds >= 5
    found = load_config(FOUND)
    for key, dist in cfg.search.params.items():  # what it found lies in its space
        section, name = key.split(".")
        value = getattr(getattr(found, section), name)
        assert (value in dist.values) if dist.values else dist.low <= value <= dist.high, key


def test_the_found_config_is_x_times_y_mod_97_at_half_train_to_95_percent():
    cfg = load_config(FOUND)
    assert cfg.search is None
    assert (cfg.task.op, cfg.task.p, cfg.task.train_fraction, cfg.train.target_val_acc) == ("x*y", 97, 0.5, 0.95)


@pytest.mark.slow
def test_the_found_config_trains_a_few_steps(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "train", str(FOUND), "--set", "train.steps=20",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())
    assert result["final_step"] == 20 and result["status"] in ("budget", "grokked")
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 10, 20]  # the first step, then every train.eval_every
