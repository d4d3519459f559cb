"""GrokBench: run published grokking settings over seeds and write the comparison.

    settings = load_index(INDEX)                       # configs/bench/index.yaml
    plans = plan_runs(settings, ["grokfast_ema"], seeds=5, steps_scale=1.0, out=Path("bench"))
    validate_plans(plans)                              # every run's config, before anything is written
    for plan in plans: run_one(plan, resume=False)     # = groktune train CONFIG --set ... --out DIR
    write_outputs(out, settings, collect(plans), meta)

Each run is exactly `groktune train <config> --set seed=K [--set <grid key>=<value>]
[--set train.steps=N] --out DIR/runs/<setting>[/<point>]/seed<K>` (orchestrator.run.train), so a
cell of the table can be rerun by hand and its folder read by `groktune report`. Runs are
separate processes' worth of work done one after another in this process: on a CPU a population
(trials.train.train_population) is not faster than separate runs (benchmarks/README.md, "Vectorised
populations": 0.89-1.0x). The table and figures are computed from the saved run folders
only (analysis.bench_table), never from in-memory results.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.bench_figures import liu_phase_diagram, val_curves, wd_dependence
from analysis.bench_table import (CHECKS, TRENDS, BenchRun, BenchSetting, grid_points, not_run_row, point_label, setting_rows,
                                  table_frame, to_csv, to_markdown)
from analysis.figures import to_png
from analysis.probe_figures import progress_measures
from analysis.probes import load_probes
from analysis.runs import load_run
from groktune.layout import (BENCH_FIGURES, BENCH_META, BENCH_RUNS, BENCH_TABLE_CSV, BENCH_TABLE_MD, RESULT,
                             write_atomic)
from groktune.errors import ConfigError, UserError
from groktune.names import check_name
from orchestrator.config.experiment import load_config, read_yaml

INDEX = Path(__file__).resolve().parent.parent / "configs" / "bench" / "index.yaml"
"""The published settings and their numbers (`groktune bench`'s default --index)."""

_KEYS = {"config", "paper", "claim", "check", "threshold", "paper_steps", "max_seeds", "grid",
         "delay_boundary", "differs", "gpu_command"}


@dataclass(frozen=True)
class RunPlan:
    """One run of the bench: a setting, its grid point and seed, and where it goes."""

    setting: str
    point: dict
    seed: int
    config: Path
    overrides: tuple[str, ...]
    out: Path


def _setting(name: str, entry, folder: Path) -> BenchSetting:
    """One index entry -> BenchSetting; UserError naming the key on anything malformed."""
    where = f"bench index: settings.{name}"
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}, allowed: {', '.join(sorted(_KEYS))}")
    for key in ("config", "paper", "claim", "check"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise UserError(f"{where}.{key}: required, a non-empty string")
    if entry["check"] not in CHECKS:
        raise UserError(f"{where}.check: got {entry['check']!r}, allowed: {', '.join(CHECKS)}")
    paper = entry.get("paper_steps")
    if isinstance(paper, (int, float)) and not isinstance(paper, bool):
        paper = (float(paper), float(paper))
    elif isinstance(paper, list) and len(paper) == 2 and all(isinstance(v, (int, float)) for v in paper):
        paper = (float(paper[0]), float(paper[1]))
    elif paper is not None:
        raise UserError(f"{where}.paper_steps: got {paper!r}, expected a number, [low, high] or null")
    if entry["check"] in ("steps", "censored") and paper is None:
        raise UserError(f"{where}.paper_steps: check {entry['check']!r} needs the paper's number")
    grid = entry.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise UserError(f"{where}.grid: expected {{dotted key: [values, ...]}}")
    if entry["check"] == "phases" and len(grid) != 2:
        raise UserError(f"{where}.grid: check 'phases' needs exactly two keys, got {len(grid)}")
    if entry["check"] in TRENDS and list(grid) != [TRENDS[entry["check"]][0]]:
        raise UserError(f"{where}.grid: check {entry['check']!r} needs exactly the key {TRENDS[entry['check']][0]}")
    if not isinstance(entry.get("gpu_command", ""), str):
        raise UserError(f"{where}.gpu_command: expected a command line (a string)")
    config = folder / entry["config"]
    if not config.is_file():
        raise UserError(f"{where}.config: {config}: no such file")
    threshold = entry.get("threshold", 0.95)
    if threshold not in (0.95, 0.99):
        raise UserError(f"{where}.threshold: got {threshold!r}, allowed: 0.95, 0.99")
    max_seeds = entry.get("max_seeds")
    if max_seeds is not None and (not isinstance(max_seeds, int) or max_seeds < 1):
        raise UserError(f"{where}.max_seeds: got {max_seeds!r}, must be an integer >= 1")
    return BenchSetting(name=name, config=str(config), paper=entry["paper"], claim=entry["claim"],
                        check=entry["check"], threshold=float(threshold), paper_steps=paper,
                        max_seeds=max_seeds, grid=dict(grid),
                        delay_boundary=float(entry.get("delay_boundary", 1000)), differs=str(entry.get("differs", "")),
                        gpu_command=entry.get("gpu_command", ""))


def load_index(path: str | Path = INDEX) -> dict[str, BenchSetting]:
    """Read the bench index (configs/bench/index.yaml format).

    Args:
        path: the index file; config paths in it are relative to its folder.
    Returns:
        {setting name: BenchSetting}, in the file's order.
    Raises:
        UserError: a missing or malformed index (one line naming the key).
    """
    path = Path(path)
    try:
        data = read_yaml(path)
    except ConfigError as err:
        raise UserError(str(err)) from None
    settings = data.get("settings")
    if not isinstance(settings, dict) or not settings:
        raise UserError(f"{path}: expected a non-empty 'settings' mapping")
    for name in settings:
        try:
            check_name(str(name))  # it names a folder under DIR/runs
        except ValueError as err:
            raise UserError(f"{path}: setting {name!r}: {err}") from None
    return {str(name): _setting(str(name), entry, path.parent) for name, entry in settings.items()}


def plan_runs(settings: dict[str, BenchSetting], chosen: list[str], seeds: int, steps_scale: float,
              out: Path) -> list[RunPlan]:
    """Every run of the chosen settings: grid points x seeds 0..n-1 (n = min(seeds, max_seeds)).

    Args:
        settings: the index.
        chosen: setting names (empty: all, in index order).
        seeds: seeds per setting and point, before each setting's max_seeds.
        steps_scale: train.steps multiplier (1: the config's budget).
        out: the bench folder.
    Returns:
        RunPlans in run order.
    Raises:
        UserError: an unknown setting name.
    """
    unknown = [name for name in chosen if name not in settings]
    if unknown:
        raise UserError(f"setting {unknown[0]!r} is not in the bench index; allowed: {', '.join(settings)}")
    plans = []
    for name in chosen or list(settings):
        s = settings[name]
        budget = int(read_yaml(s.config).get("train", {}).get("steps", 10_000))
        for point in grid_points(s.grid):
            label = point_label(point)
            for seed in range(min(seeds, s.max_seeds or seeds)):
                overrides = [f"seed={seed}"] + [f"{k}={v}" for k, v in point.items()]
                if steps_scale != 1.0:
                    overrides.append(f"train.steps={max(1, round(budget * steps_scale))}")
                folder = out / BENCH_RUNS / name / label if label else out / BENCH_RUNS / name
                plans.append(RunPlan(name, point, seed, Path(s.config), tuple(overrides), folder / f"seed{seed}"))
    return plans


def validate_plans(plans: list[RunPlan]) -> None:
    """Load and validate every run's config with its overrides (ConfigError on the first bad one)."""
    for plan in plans:
        load_config(plan.config, list(plan.overrides))


def run_one(plan: RunPlan, resume: bool) -> None:
    """`groktune train` of one plan (orchestrator.run.train.train_run); with `resume`, a finished run
    is kept and an interrupted one continued from its checkpoint."""
    from orchestrator.run.train import train_run  # deferred: torch, imported only when something trains

    resume = resume and plan.out.is_dir() and any(plan.out.iterdir())
    train_run(str(plan.config), list(plan.overrides), plan.out, resume, force=False)


def collect(plans: list[RunPlan]) -> dict[str, list[BenchRun]]:
    """Read every planned run folder back (analysis.runs.load_run): {setting: [BenchRun, ...]}."""
    runs: dict[str, list[BenchRun]] = {}
    for plan in plans:
        loaded = load_run(plan.out, str(plan.out))
        row = loaded.row
        budget = int((loaded.config.get("train") or {}).get("steps", row["final_step"]))
        if row["status"] == "incomplete":  # interrupted (no result.json): censored at its last eval
            budget = int(row["final_step"])
        wall = row.get("wall_time")
        runs.setdefault(plan.setting, []).append(BenchRun(
            point=plan.point, seed=plan.seed, curve=loaded.curves, budget=budget,
            wall_time=float(wall) if wall is not None else None, status=str(row["status"])))
    return runs


def write_outputs(out: Path, settings: dict[str, BenchSetting], runs: dict[str, list[BenchRun]],
                  plans: list[RunPlan], meta: dict, not_run: tuple[str, ...] = ()) -> list[Path]:
    """Write table.md, table.csv, bench.json and figures/*.png into `out`.

    Args:
        out: the bench folder.
        settings: the index.
        runs: collect()'s output.
        plans: the runs' plans (for the Nanda probes' folder).
        meta: provenance (command, dates, load average) stored in bench.json and under the table.
        not_run: settings chosen that have no run in `out`: a row each saying so (and, where the
            index marks one, the command that runs it on a GPU), never a verdict.
    Returns:
        The files written.
    """
    rows = []
    figures = out / BENCH_FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    written = []
    for name, setting_runs in runs.items():
        s = settings[name]
        these = setting_rows(s, setting_runs)
        rows += these
        png = figures / f"{name}_val.png"
        png.write_bytes(val_curves(s, setting_runs))
        written.append(png)
        if s.check == "phases":
            png = figures / f"{name}_phase_diagram.png"
            png.write_bytes(liu_phase_diagram(s, [r for r in these if r["point"] != "all"]))
            written.append(png)
        if s.check in TRENDS:
            png = figures / f"{name}_{'wd' if s.check == 'wd_trend' else 'init'}.png"
            png.write_bytes(wd_dependence(s, setting_runs))
            written.append(png)
        written += _progress_figures(name, setting_runs, [p for p in plans if p.setting == name], figures)
    order = list(settings)
    rows += [not_run_row(settings[name]) for name in not_run]
    rows.sort(key=lambda r: order.index(r["setting"]))  # index order, each setting's rows kept together
    frame = table_frame(rows)
    note = (f"\n{meta.get('command', '')}\n\nStarted {meta.get('started', '')}, finished {meta.get('finished', '')}; "
            f"load average at the end {meta.get('load_end', '')} on {meta.get('cpus', '')} CPUs.\n")
    write_atomic(out / BENCH_TABLE_MD, to_markdown(frame) + note)
    write_atomic(out / BENCH_TABLE_CSV, to_csv(frame))
    write_atomic(out / BENCH_META, json.dumps(meta, indent=2, default=str) + "\n")
    return [out / BENCH_TABLE_MD, out / BENCH_TABLE_CSV, out / BENCH_META] + written


def _progress_figures(name: str, runs: list[BenchRun], plans: list[RunPlan], figures: Path) -> list[Path]:
    """Nanda et al.'s progress measures for each run that saved Fourier probes."""
    written = []
    for run, plan in zip(runs, plans):
        fourier = load_probes(plan.out).get("fourier")
        if fourier is None:
            continue
        png = figures / f"{name}_seed{run.seed}_progress.png"
        png.write_bytes(to_png(progress_measures(run.curve, fourier)))
        written.append(png)
    return written


def machine_meta() -> dict:
    """Provenance stored with the table: time, CPUs and load average (the machine may be shared)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"time": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
            "load": " ".join(f"{v:.1f}" for v in load)}


def finished(plan: RunPlan) -> bool:
    """Whether the plan's run folder holds a finished run (result.json)."""
    return (plan.out / RESULT).is_file()
