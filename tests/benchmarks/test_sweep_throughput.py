"""benchmarks/sweep_throughput.py: its sweep config is valid, and a tiny run of the whole benchmark
(slow: five real sweeps, each its own Ray: the demo, packed too, the small trials through
groktune, plain Tune and packed) produces every number of its table."""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PATH = ROOT / "benchmarks" / "sweep_throughput.py"
spec = importlib.util.spec_from_file_location("sweep_throughput", PATH)
st = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = st
spec.loader.exec_module(st)


def test_the_small_trials_sweep_is_a_valid_experiment(tmp_path):
    from orchestrator.config.experiment import load_config

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(st.tiny_experiment(trials=37, steps=150)))
    cfg = load_config(path)
    assert cfg.search.num_samples == 37 and cfg.train.steps == 150
    assert cfg.search.scheduler == "fifo" and cfg.search.algorithm == "tpe" and cfg.search.cpus_per_trial == 1


@pytest.mark.slow
@pytest.mark.full
def test_a_tiny_run_fills_the_table(tmp_path):
    out = tmp_path / "m.json"
    proc = subprocess.run(
        [sys.executable, str(PATH), "--trials", "6", "--steps", "40", "--repeats", "1", "--json", str(out),
         "--demo-set", "search.num_samples=2", "--demo-set", "train.steps=200", "--keep", str(tmp_path / "runs"),
         "--demo-packs", "4", "--packs", "3", "--pack-vectorize", "auto,vmap"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads(out.read_text())
    assert m["demo"]["trials"] == 2 and m["groktune"]["trials"] == 6 and m["plain"]["trials"] == 6
    for part in ("demo", "groktune", "plain"):
        assert m[part]["exit"] == 0 and m[part]["rss_mb"] > 50 and m[part]["driver_cpu_s"] > 0
        assert 0 < m[part]["trial_s"] < m[part]["wall"] * m["cpus"]  # trials ran inside the sweep's wall time
    assert 0 < m["demo"]["efficiency"] < 1
    assert m["groktune"]["over_floor"] > 1 and math.isfinite(m["plain"]["vs_groktune"])
    assert "| 6 × 40 steps, `groktune sweep`" in proc.stdout and "plain Ray Tune + OptunaSearch" in proc.stdout
    packed_demo, packed = m["demo_packs"]["4"], m["packs"]["3"]
    assert packed_demo["exit"] == 0 and packed_demo["trials"] == 2 and 1 <= packed_demo["packs"] <= 2
    assert 0 < packed_demo["efficiency"] < 1 and "| demo, search.pack 4" in proc.stdout
    assert packed["exit"] == 0 and packed["trials"] == 6 and packed["over_floor"] > 0
    vmapped = m["packs"]["3-vmap"]
    assert vmapped["exit"] == 0 and vmapped["trials"] == 6 and "search.pack 3, population_vectorize vmap" in proc.stdout
