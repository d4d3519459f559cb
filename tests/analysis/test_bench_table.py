"""analysis.bench_table: GrokBench's verdicts and medians on synthetic curves (fast, pure)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.bench_table import (BenchRun, BenchSetting, median_failures_as_inf, not_run_row, setting_rows,
                                  table_frame, to_csv, to_markdown)


def curve(mem: int | None, gen: int | None, end: int = 2000, every: int = 10) -> pd.DataFrame:
    """Train acc jumps to 1 at `mem`, val acc at `gen` (None: never), evals every `every` steps."""
    steps = np.arange(every, end + 1, every)
    train = np.where(steps >= (mem if mem is not None else end + 1), 1.0, 0.1)
    val = np.where(steps >= (gen if gen is not None else end + 1), 1.0, 0.05)
    return pd.DataFrame({"step": steps, "train_acc": train, "val_acc": val})


def run(gen, mem=50, point=None, seed=0, end=2000) -> BenchRun:
    return BenchRun(point=point or {}, seed=seed, curve=curve(mem, gen, end), budget=end, wall_time=1.0,
                    status="grokked" if gen else "budget")


def setting(check="steps", paper=(500.0, 500.0), **kw) -> BenchSetting:
    return BenchSetting(name="s", config="c.yaml", paper="P", claim="c", check=check, paper_steps=paper, **kw)


def test_the_bench_median_counts_failures_as_infinite():
    assert median_failures_as_inf([100, None, 300]) == 300
    assert math.isinf(median_failures_as_inf([None, None, 100]))
    assert median_failures_as_inf([100, 200]) == 150


def test_steps_verdict_within_and_beyond_twice_the_paper():
    rows = setting_rows(setting(), [run(400, seed=0), run(600, seed=1), run(None, seed=2)])
    (row,) = rows
    assert row["median_95"] == "600" and row["spread_95"] == "400–600" and row["failed"] == "1/3"
    assert row["ratio"] == "1.20×" and row["verdict"] == "reproduces within 2×"
    (slow,) = setting_rows(setting(), [run(1500)])
    assert slow["ratio"] == "3.00×" and slow["verdict"].startswith("does not reproduce (1500 vs 500")
    (never,) = setting_rows(setting(differs="smaller model"), [run(None)])
    assert never["median_95"] == "> 2000" and "not reached in 2000 steps; smaller model" in never["verdict"]


def test_a_range_counts_as_one_inside_it():
    (row,) = setting_rows(setting(paper=(100.0, 300.0)), [run(250)])
    assert row["ratio"] == "1.00×" and row["paper_steps"] == "100–300"


def test_censored_and_stalls_checks():
    (cens,) = setting_rows(setting("censored", (39890.0, 39890.0)), [run(None)])
    assert cens["verdict"].startswith("consistent, censored: not reached in 2000 < 39890")
    (stall,) = setting_rows(setting("stalls", None), [run(300)])
    assert stall["verdict"].startswith("does not reproduce (generalised at 300")


def test_phase_grid_needs_all_four_phases():
    s = setting("phases", None, grid={"optim.lr": [1, 2], "optim.weight_decay": [1, 2]}, delay_boundary=200)
    points = [{"optim.lr": a, "optim.weight_decay": b} for a in (1, 2) for b in (1, 2)]
    runs = [run(100, mem=50, point=points[0]),      # comprehension: generalised 50 steps after memorising
            run(900, mem=50, point=points[1]),      # grokking: 850 steps later
            run(None, mem=50, point=points[2]),     # memorization
            run(None, mem=None, point=points[3])]   # confusion
    rows = setting_rows(s, runs)
    assert [r["phase"] for r in rows[:4]] == ["comprehension", "grokking", "memorization", "confusion"]
    assert rows[4]["point"] == "all" and rows[4]["verdict"] == "reproduces: all four phases"
    rows = setting_rows(s, runs[:3] + [run(None, mem=50, point=points[3])])  # memorization instead of confusion
    assert rows[-1]["verdict"].startswith("does not reproduce") and "missing confusion" in rows[-1]["verdict"]


def test_wd_trend_needs_steps_to_fall_as_wd_rises():
    s = setting("wd_trend", None, grid={"optim.weight_decay": [0.3, 1.0, 3.0]})
    falling = [run(g, point={"optim.weight_decay": wd}) for wd, g in ((0.3, 1500), (1.0, 800), (3.0, 300))]
    assert setting_rows(s, falling)[-1]["verdict"] == "reproduces: steps fall as weight decay rises (1500 → 800 → 300)"
    rising = [run(g, point={"optim.weight_decay": wd}) for wd, g in ((0.3, 300), (1.0, 800), (3.0, None))]
    assert setting_rows(s, rising)[-1]["verdict"].startswith("does not reproduce")


def test_init_trend_needs_steps_to_rise_with_the_initial_scale():
    """Omnigrok: a larger initial weight norm delays generalisation; a censored seed counts as +inf."""
    s = setting("init_trend", None, grid={"model.init_scale": [0.5, 1.0, 2.0]})
    rising = [run(g, point={"model.init_scale": a}, seed=k) for a, gs in ((0.5, (300, 350)), (1.0, (700, 800)),
                                                                          (2.0, (None, None))) for k, g in enumerate(gs)]
    rows = setting_rows(s, rising)
    assert rows[-1]["verdict"] == "reproduces: steps rise as initial weight scale rises (325 → 750 → > 2000)"
    falling = [run(g, point={"model.init_scale": a}) for a, g in ((0.5, 900), (1.0, 500), (2.0, 500))]
    assert setting_rows(s, falling)[-1]["verdict"].startswith("does not reproduce (medians by rising initial weight "
                                                              "scale: 900 → 500 → 500")


def test_a_grid_with_points_not_run_is_incomplete_never_judged():
    s = setting("wd_trend", None, grid={"optim.weight_decay": [0.3, 1.0, 3.0]})
    part = [run(g, point={"optim.weight_decay": wd}) for wd, g in ((1.0, 800), (3.0, 300))]
    assert setting_rows(s, part)[-1]["verdict"] == "incomplete: 1 of 3 grid points not run (weight_decay=0.3)"
    phases = setting("phases", None, grid={"optim.lr": [1, 2], "optim.weight_decay": [1, 2]})
    three = [run(100, point={"optim.lr": a, "optim.weight_decay": b}) for a, b in ((1, 1), (1, 2), (2, 1))]
    assert setting_rows(phases, three)[-1]["verdict"].startswith("incomplete: 1 of 4 grid points not run (lr=2_")


def test_a_setting_without_runs_says_why_never_a_verdict():
    row = not_run_row(setting(gpu_command="groktune bench s --seeds 3"))
    assert row["seeds"] == 0 and row["verdict"] == ("not run: its budget does not fit a 2-core CPU; on a GPU: "
                                                    "groktune bench s --seeds 3")
    assert not_run_row(setting())["verdict"] == "not run in this bench folder"


def test_markdown_and_csv_are_escaped():
    frame = table_frame(setting_rows(BenchSetting(name="a|b", config="c", paper="=cmd()", claim="x", check="generalises"),
                                     [run(300)]))
    assert "a\\|b" in to_markdown(frame)
    assert "'=cmd()" in to_csv(frame)
