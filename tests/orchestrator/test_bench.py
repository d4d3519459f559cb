"""`groktune bench` end to end on a tiny test-only index, and its bad input.

The tiny settings really train (x+y mod 11, a small MLP, a few hundred full-batch steps); the
table's numbers are checked against the runs' own metrics.jsonl with an independent reading of
the event rule (3 evals in a row at the threshold), not against hard-coded values.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest
import yaml

from orchestrator.bench import INDEX, load_index
from orchestrator.cli.main import main

TINY = {  # x+y mod 23: with ⊥Grad seed 0 generalises at ~200 full-batch steps, seed 1 not within 300
    "name": "tiny", "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 23, "train_fraction": 0.6},
    "model": {"arch": "mlp", "n_layers": 2, "d_model": 24, "d_ff": 128, "n_heads": 1, "activation": "relu",
              "norm": "none"},
    "optim": {"name": "adamw", "lr": 1.0e-2, "weight_decay": 0.0, "beta2": 0.99, "eps": 1.0e-25, "warmup_steps": 0,
              "orthogonal_grad": True},
    "train": {"steps": 300, "batch_size": 0, "num_threads": 1, "target_val_acc": 0.99, "eval_dense_until": 0,
              "eval_every": 10, "per_class_metrics": False, "checkpoint_every": 300},
}


def tiny_index(folder: Path, paper_steps=150) -> Path:
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    index = {"settings": {
        "tiny": {"config": "tiny.yaml", "paper": "Test 2026", "claim": "tiny groks", "paper_steps": paper_steps,
                 "threshold": 0.95, "check": "steps"},
        "tiny_wd": {"config": "tiny.yaml", "paper": "Test 2026", "claim": "wd helps", "paper_steps": None,
                    "threshold": 0.95, "check": "wd_trend", "max_seeds": 1,
                    "grid": {"optim.weight_decay": [0.01, 0.1]}},
    }}
    path = folder / "index.yaml"
    path.write_text(yaml.safe_dump(index, sort_keys=False))
    return path


def first_streak(records: list[dict], threshold: float, patience: int = 3):
    """Independent reading of the event rule: first step of `patience` evals in a row at the threshold."""
    records = sorted(records, key=lambda r: r["step"])
    for i in range(len(records) - patience + 1):
        if all(r["val_acc"] >= threshold for r in records[i:i + patience]):
            return records[i]["step"]
    return None


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_bench_end_to_end(tmp_path, capsys):
    index = tiny_index(tmp_path)
    out = tmp_path / "bench"
    assert main(["bench", "tiny", "tiny_wd", "--seeds", "2", "--out", str(out), "--index", str(index)]) == 0
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert list(rows[0]) == ["setting", "point", "paper", "claim", "paper_steps", "threshold", "seeds", "budget",
                             "median_95", "spread_95", "median_99", "spread_99", "failed", "phase",
                             "wall_s_per_run", "ratio", "verdict"]
    tiny = next(r for r in rows if r["setting"] == "tiny")
    runs = [out / "runs" / "tiny" / f"seed{k}" for k in (0, 1)]
    steps95 = [first_streak(metrics(d), 0.95) for d in runs]
    steps99 = [first_streak(metrics(d), 0.99) for d in runs]
    assert tiny["seeds"] == "2" and tiny["budget"] == "300"
    reached = [s for s in steps95 if s is not None]
    assert reached, "the tiny setting no longer generalises in its budget"  # seed 0 does, at ~200
    # A seed that never reached counts as +inf: the median is "> budget" once half the seeds failed.
    median = statistics.median([math.inf if s is None else s for s in steps95])
    assert tiny["median_95"] == (f"> 300" if math.isinf(median) else f"{median:g}")
    assert tiny["spread_95"] == f"{min(reached)}–{max(reached)}"
    assert tiny["failed"] == f"{len(steps95) - len(reached)}/2"
    median99 = statistics.median([math.inf if s is None else s for s in steps99])
    assert tiny["median_99"] == (f"> 300" if math.isinf(median99) else f"{median99:g}")
    if math.isinf(median):
        assert tiny["ratio"] == "–" and tiny["verdict"].startswith("does not reproduce (not reached in 300 steps")
    else:
        assert tiny["ratio"] == f"{median / 150:.2f}×"
        assert tiny["verdict"].startswith("reproduces within 2×" if 0.5 <= median / 150 <= 2 else "does not reproduce")
    walls = [json.loads((d / "result.json").read_text())["wall_time"] for d in runs]
    assert tiny["wall_s_per_run"] == f"{statistics.median(walls):.1f}"
    # The grid setting: one row per weight decay (max_seeds caps it at one seed) and a verdict row.
    wd_rows = [r for r in rows if r["setting"] == "tiny_wd"]
    assert [r["point"] for r in wd_rows] == ["weight_decay=0.01", "weight_decay=0.1", "all"]
    assert all(r["seeds"] == "1" for r in wd_rows[:2]) and wd_rows[2]["verdict"]
    assert (out / "table.md").read_text().startswith("| setting | point |")
    assert "groktune bench tiny tiny_wd --seeds 2" in (out / "table.md").read_text()
    for name in ("tiny_val.png", "tiny_wd_val.png", "tiny_wd_wd.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    # Never overwrites: the same --out again is refused; --table-only rewrites the table from the runs.
    before = (runs[0] / "metrics.jsonl").read_text()
    assert main(["bench", "tiny", "--seeds", "2", "--out", str(out), "--index", str(index)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["bench", "tiny", "--seeds", "2", "--out", str(out), "--index", str(index), "--table-only"]) == 0
    assert (runs[0] / "metrics.jsonl").read_text() == before
    again = next(r for r in csv.DictReader((out / "table.csv").open()) if r["setting"] == "tiny")
    assert again["median_95"] == tiny["median_95"]


@pytest.mark.slow  # trains 30 steps: ~3 s of CPU; the default suite and CI run it
def test_steps_scale_runs_a_tiny_setting_and_marks_the_unrun_ones(tmp_path):
    """`groktune bench --steps-scale` on a tiny setting (the CI check of the bench): the budget is cut,
    the table is written from the run it made, and a --table-only over settings it never ran gives
    those rows their reason (the GPU command where the index marks one), never a verdict."""
    index = tiny_index(tmp_path)
    data = yaml.safe_load(index.read_text())
    data["settings"]["tiny_gpu"] = {**data["settings"]["tiny"], "gpu_command": "groktune bench tiny_gpu --seeds 5"}
    index.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "bench"
    assert main(["bench", "tiny", "--seeds", "1", "--steps-scale", "0.1", "--out", str(out), "--index", str(index)]) == 0
    (row,) = list(csv.DictReader((out / "table.csv").open()))
    records = metrics(out / "runs" / "tiny" / "seed0")
    assert row["budget"] == "30" and max(r["step"] for r in records) <= 30
    assert row["seeds"] == "1" and row["verdict"].startswith("does not reproduce (not reached in 30 steps")
    assert main(["bench", "tiny", "tiny_gpu", "--seeds", "1", "--steps-scale", "0.1", "--out", str(out),
                 "--index", str(index), "--table-only"]) == 0
    rows = {r["setting"]: r for r in csv.DictReader((out / "table.csv").open())}
    assert rows["tiny"]["budget"] == "30"
    assert rows["tiny_gpu"]["seeds"] == "0" and rows["tiny_gpu"]["verdict"] == (
        "not run: its budget does not fit a 2-core CPU; on a GPU: groktune bench tiny_gpu --seeds 5")


@pytest.mark.parametrize("argv, message", [
    (["nope"], "setting 'nope' is not in the bench index"),
    (["tiny", "--seeds", "0"], "--seeds: got 0"),
    (["tiny", "--steps-scale", "-1"], "--steps-scale: got -1.0"),
    (["tiny", "--steps-scale", "nan"], "--steps-scale: got nan"),
    (["tiny", "--seeds", "x"], "invalid int value"),
])
def test_bad_arguments(tmp_path, capsys, argv, message):
    index = tiny_index(tmp_path)
    out = tmp_path / "bench"
    assert main(["bench", *argv, "--out", str(out), "--index", str(index)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()  # nothing written on bad input


def test_bad_index_and_config(tmp_path, capsys):
    index = tiny_index(tmp_path)
    data = yaml.safe_load(index.read_text())
    data["settings"]["tiny"]["check"] = "vibes"
    index.write_text(yaml.safe_dump(data))
    assert main(["bench", "tiny", "--out", str(tmp_path / "b"), "--index", str(index)]) == 2
    assert "settings.tiny.check: got 'vibes'" in capsys.readouterr().err
    index = tiny_index(tmp_path)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "optim": {**TINY["optim"], "lr": -1}}))
    assert main(["bench", "tiny", "--out", str(tmp_path / "b"), "--index", str(index)]) == 2
    assert "optim.lr" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # validated before the folder is made
    assert main(["bench", "tiny", "--table-only", "--out", str(tmp_path / "none"), "--index", str(index)]) == 2
    assert "no such bench folder" in capsys.readouterr().err


def test_shipped_index_and_configs_validate():
    """Every shipped bench setting loads, and every planned run's config validates."""
    from orchestrator.bench import plan_runs, validate_plans

    settings = load_index(INDEX)
    assert {"grokfast_ema", "grokfast_ma", "grokfast_adam_baseline", "nanda_modadd113", "liu_phases",
            "wd_dependence", "prieto_stablemax", "prieto_perpgrad", "clip_to_grok"} <= set(settings)
    validate_plans(plan_runs(settings, [], 1, 1.0, Path("unused")))


@pytest.mark.slow
def test_resume_keeps_finished_runs_and_adds_seeds(tmp_path, capsys):
    index = tiny_index(tmp_path)
    out = tmp_path / "bench"
    assert main(["bench", "tiny", "--seeds", "1", "--out", str(out), "--index", str(index)]) == 0
    seed0 = out / "runs" / "tiny" / "seed0"
    before = {name: (seed0 / name).read_bytes() for name in ("metrics.jsonl", "result.json")}
    capsys.readouterr()
    assert main(["bench", "tiny", "--seeds", "2", "--out", str(out), "--index", str(index), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "[1/2] tiny seed=0 (kept)" in printed and "[2/2] tiny seed=1\n" in printed
    assert {name: (seed0 / name).read_bytes() for name in before} == before  # a finished run is never rewritten
    (row,) = [r for r in csv.DictReader((out / "table.csv").open()) if r["setting"] == "tiny"]
    assert row["seeds"] == "2" and (out / "runs" / "tiny" / "seed1" / "result.json").is_file()


def test_bench_summaries_copies_what_the_table_reads_and_refuses_a_clash(tmp_path, capsys):
    """scripts/bench_summaries.py: config, metrics and result of each run go to the committed folder;
    checkpoints stay behind; a differing file already there is refused before anything is copied."""
    import importlib.util  # deferred: loads a script by path, only in this test

    spec = importlib.util.spec_from_file_location("bench_summaries", INDEX.parents[2] / "scripts" / "bench_summaries.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run = tmp_path / "b1" / "runs" / "s" / "lr=1" / "seed0"
    (run / "checkpoints").mkdir(parents=True)
    for name, text in (("config.yaml", "seed: 0\n"), ("metrics.jsonl", "{}\n"), ("result.json", "{}"),
                       ("checkpoints/last.pt", "x")):
        (run / name).write_text(text)
    into = tmp_path / "committed"
    assert script.main([str(tmp_path / "b1"), "--into", str(into)]) == 0
    copied = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    assert copied == [f"runs/s/lr=1/seed0/{n}" for n in ("config.yaml", "metrics.jsonl", "result.json")]
    assert script.main([str(tmp_path / "b1"), "--into", str(into)]) == 0  # same contents: fine
    (run / "metrics.jsonl").write_text("{\"step\": 1}\n")
    (run / "config.yaml").write_text("seed: 1\n")
    assert script.main([str(tmp_path / "b1"), "--into", str(into)]) == 2
    assert "exists with other contents" in capsys.readouterr().err
    assert (into / "runs/s/lr=1/seed0/metrics.jsonl").read_text() == "{}\n"  # nothing copied
    assert script.main([str(tmp_path / "nope"), "--into", str(into)]) == 2


def test_the_committed_grokbench_table_is_rewritten_from_the_committed_run_summaries(tmp_path, capsys):
    """benchmarks/grokbench holds the run summaries its table is computed from: `groktune bench
    --seeds 3 --out <a copy> --table-only` (what scripts/docs_figures.py --only grokbench runs)
    gives the committed table.csv again, from a clean clone."""
    import shutil

    committed = Path(__file__).resolve().parents[2] / "benchmarks" / "grokbench"
    assert len(list((committed / "runs").rglob("metrics.jsonl"))) >= 60
    copy = tmp_path / "grokbench"
    shutil.copytree(committed / "runs", copy / "runs")
    assert main(["bench", "--seeds", "3", "--out", str(copy), "--table-only"]) == 0
    assert (copy / "table.csv").read_text() == (committed / "table.csv").read_text()
