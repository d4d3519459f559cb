"""The verification stage: a sweep's top configs re-trained on fresh seeds before a headline names them.

A search ranks configs by the seeds it saw, and the best of many noisy configs is, on those seeds,
luckier than it will be again (the winner's curse): the hand-found configs/modmul97_fastest.yaml,
tuned on seeds 0-4 (median 90 steps), gives a median of 100 on seeds 10-14. So after a sweep whose
objective is speed (metric grok_score) the `search.verify.top` fastest configs are each trained
`search.verify.seeds` times more, with seeds the search never used, to the same budget and
stopping rule, and the sweep folder gets two plain files:

    verification.csv   one row per run: rank, config, seed, status, steps_to_target, cpu_time_s
    verified.csv       one row per config: rank, config, the searched values, search_median
                       (over the search's seeds), verified_median, verified_min, verified_max,
                       verified_grokked ("3/3"), holds

A config `holds` when every fresh seed reached the target and the verified median is at most
HOLD_RATIO x its search median (rounded up to the eval grid); else the report says it did not
repeat. Runs are local processes on the driver's machine (trials.train, one torch thread per
cpus_per_trial), after Ray has stopped; a folder that already has verified.csv is not verified
again (a resumed sweep).
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pandas as pd

from groktune.layout import VERIFICATION, VERIFIED, write_atomic
from orchestrator.config.experiment import ExperimentConfig, with_values
from orchestrator.config.trial import MEMBER_SEED_STRIDE

RUNS_FILE = VERIFICATION
CONFIGS_FILE = VERIFIED
HOLD_RATIO = 1.25
"""A verified median up to 25 % above the search's still holds (seed noise at 3-5 seeds)."""
SPEED_METRIC = "grok_score"


def verify_counts(search) -> tuple[int, int]:
    """(configs, seeds per config) the stage runs: search.verify.top (-1: 3 when the objective
    is speed, i.e. metric grok_score alone, else 0) and search.verify.seeds."""
    top = search.verify.top
    if top < 0:
        top = 3 if search.metric == SPEED_METRIC else 0
    return top, search.verify.seeds if top else 0


def fresh_seeds(search, n: int) -> list[int]:
    """n seeds the search never trained: above every seed it used (population members included)."""
    used = [s + MEMBER_SEED_STRIDE * i for s in search.seeds for i in range(search.seeds_per_trial)]
    start = max(used) + 1
    return list(range(start, start + n))


def top_configs(trials: pd.DataFrame, searched: list[str], top: int) -> pd.DataFrame:
    """The `top` configs by the search's own evidence: the median over their seeds of steps to
    target (a seed that did not reach it counts as never), then the best final grok_score.

    Returns:
        Columns rank (1 = best), the searched keys, search_median (NaN when half or more of its
        seeds never reached the target), search_seeds, search_grokked.
    """
    keys = [k for k in searched if k in trials]
    if not keys or not len(trials):
        return pd.DataFrame()
    frame = trials.copy()
    frame["_steps"] = frame["steps_to_target"].astype("float") if "steps_to_target" in frame else np.nan
    frame["_score"] = frame["final_grok_score"].astype("float") if "final_grok_score" in frame else np.nan
    rows = []
    for values, g in frame.groupby(keys, dropna=False, sort=False):
        steps = g["_steps"].fillna(np.inf).to_numpy()
        median = float(np.median(steps))
        rows.append({**dict(zip(keys, values if isinstance(values, tuple) else (values,))),
                     "search_median": median if math.isfinite(median) else np.nan,
                     "search_seeds": len(g), "search_grokked": int(np.isfinite(steps).sum()),
                     "_median": median,
                     "_score": float(np.nanmin(g["_score"])) if g["_score"].notna().any() else np.inf})
    out = pd.DataFrame(rows).sort_values(["_median", "_score"], kind="stable").head(top)
    out = out.drop(columns=["_median", "_score"])
    out.insert(0, "rank", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def _train_one(job: tuple) -> dict:
    """One verification run in a worker process: (rank, values, seed, config) -> its row."""
    import time  # deferred: a worker-only clock

    from trials.train import train  # deferred: torch loads in the worker processes only

    rank, values, seed, cfg = job
    started = time.process_time()
    result = train(cfg, lambda record, save=None: None)
    return {"rank": rank, "seed": seed, "status": result.status, "steps_to_target": result.steps_to_target,
            "cpu_time_s": round(time.process_time() - started, 2)}


def verify(cfg: ExperimentConfig, trials: pd.DataFrame, path: Path, workers: int | None = None) -> pd.DataFrame | None:
    """Run the verification stage of a finished sweep and write its files into `path`.

    Args:
        cfg: the sweep's experiment config (search included).
        trials: its trials table (orchestrator.sweep.results).
        path: the sweep folder.
        workers: processes at once (default: the machine's CPUs / cpus_per_trial).
    Returns:
        The per-config table (also written as verified.csv), or None when the stage is off,
        already done, or no trial has a result.
    """
    search = cfg.search
    top, n_seeds = verify_counts(search)
    if not top or (path / CONFIGS_FILE).exists():
        return None
    searched = list(search.params)
    best = top_configs(trials, searched, top)
    if best.empty:
        return None
    seeds = fresh_seeds(search, n_seeds)
    threads = max(1, int(search.cpus_per_trial))
    base = with_values(cfg, {"train.num_threads": threads})
    base.search = None
    keys = [k for k in searched if k in best]
    jobs = []
    for _, row in best.iterrows():
        values = {k: _plain(row[k]) for k in keys}
        for seed in seeds:
            jobs.append((int(row["rank"]), values, seed, with_values(base, {**values, "seed": seed})))
    workers = workers or max(1, min(len(jobs), int((os.cpu_count() or 1) // max(search.cpus_per_trial, 1))))
    print(f"groktune: verifying the top {len(best)} config(s) on {n_seeds} fresh seed(s) {seeds} "
          f"({len(jobs)} runs, {workers} at a time)", flush=True)
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        runs = pd.DataFrame(list(pool.map(_train_one, jobs)))
    runs.insert(1, "config", runs["rank"].map(lambda r: _label(best, keys, r)))
    table = summarise(best, runs, keys, cfg.train.eval_every)
    write_atomic(path / RUNS_FILE, runs.to_csv(index=False))
    write_atomic(path / CONFIGS_FILE, table.to_csv(index=False))
    return table


def summarise(best: pd.DataFrame, runs: pd.DataFrame, keys: list[str], grid: int = 1) -> pd.DataFrame:
    """Per config: verified median (a run that did not reach the target counts as never), min,
    max, how many grokked, and whether the search's result holds (module docstring)."""
    rows = []
    for _, row in best.iterrows():
        mine = runs[runs["rank"] == row["rank"]]
        steps = mine["steps_to_target"].astype("float").fillna(np.inf).to_numpy()
        median = float(np.median(steps)) if len(steps) else np.inf
        done = steps[np.isfinite(steps)]
        search = float(row["search_median"])
        allowed = math.ceil(search * HOLD_RATIO / max(grid, 1)) * max(grid, 1) if math.isfinite(search) else -1
        rows.append({"rank": int(row["rank"]), "config": _label(best, keys, row["rank"]),
                     **{k: row[k] for k in keys}, "search_median": row["search_median"],
                     "verified_median": median if math.isfinite(median) else np.nan,
                     "verified_min": float(done.min()) if len(done) else np.nan,
                     "verified_max": float(done.max()) if len(done) else np.nan,
                     "verified_grokked": f"{len(done)}/{len(steps)}",
                     "holds": bool(len(done) == len(steps) and len(steps) and median <= allowed)})
    return pd.DataFrame(rows)


def read_verified(path: Path) -> pd.DataFrame | None:
    """verified.csv of a sweep folder, or None when it has none."""
    file = Path(path) / CONFIGS_FILE
    return pd.read_csv(file) if file.exists() else None


def describe(table: pd.DataFrame) -> str:
    """One line per verified config: 'verified #1 ...: median 100 (90-110, 3/3) on fresh seeds;
    search 90: holds' (or 'does not repeat')."""
    lines = []
    for _, r in table.iterrows():
        med = "never" if pd.isna(r["verified_median"]) else f"{r['verified_median']:g}"
        spread = "" if pd.isna(r["verified_min"]) else f"{r['verified_min']:g}-{r['verified_max']:g}, "
        search = "never" if pd.isna(r["search_median"]) else f"{r['search_median']:g}"
        verdict = "holds" if bool(r["holds"]) else "does not repeat"
        lines.append(f"verified #{int(r['rank'])} {r['config']}: median {med} steps ({spread}"
                     f"{r['verified_grokked']} reached the target) on fresh seeds; search median {search}: {verdict}")
    return "\n".join(lines)


def _label(best: pd.DataFrame, keys: list[str], rank) -> str:
    row = best[best["rank"] == rank].iloc[0]
    return ", ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], (float, np.floating)) else f"{k}={row[k]}"
                     for k in keys)


def _plain(value):
    """numpy scalars as Python ones (config values are validated by type)."""
    return value.item() if isinstance(value, np.generic) else value


__all__ = ["CONFIGS_FILE", "HOLD_RATIO", "RUNS_FILE", "describe", "fresh_seeds", "read_verified", "summarise",
           "top_configs", "verify", "verify_counts"]
