"""Train pools of real curves once, for the replay benchmarks (early_signals, search_efficiency).

    python benchmarks/curve_pool.py --pools plateau grid fastest --workers 16 --deadline 480

Each pool is a list of runs of the project's own trainer (trials.train), one row per eval, saved
as a compact Parquet file under benchmarks/pools/ (committed: the replays then need no training):

* plateau-S: score_vs_valacc's "plateau" sample (p=97 transformer, lr / weight decay / batch /
  train fraction / op), 32 configs drawn with seed S, one training seed each, run to the full
  budget of 4000 steps (no stop at the target) so every signal can be read at every rung.
* grid: a tabular benchmark on the space of configs/fastest_modmul97_methods.yaml's base point: every
  config of GRID (4 x 3 x 2 x 2 = 48) with training seeds 0-9 (0-2 for searching, 3-4 for the
  verification stage, 5-9 to judge a search's answer), stopping at the target like a sweep trial.
* fastest: N configs sampled from configs/fastest_modmul97_methods.yaml's own space, seeds 0-2 and 10-14.

Runs go to a process pool in that order; at --deadline seconds the pool stops and what finished
is written (a pool file says how many runs it holds). CPU seconds per run are recorded (the
machine that trained the pool is named in benchmarks/README.md next to any number that uses them).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.config.experiment import load_config, with_values  # noqa: E402
from groktune.space import PER_VALUE, Dist, snap_values  # noqa: E402

POOLS = ROOT / "benchmarks" / "pools"
FASTEST = ROOT / "configs" / "fastest_modmul97_methods.yaml"
KEYS = ("step", "train_acc", "val_acc", "train_loss", "val_loss", "param_norm")
GRID = {
    "optim.lr": [1.0e-2, 2.0e-2, 5.0e-2, 1.0e-1],
    "optim.weight_decay": [0.3, 1.0, 3.0],
    "optim.warmup_steps": [0, 20],
    "train.batch_size": [512, 1024],
}
GRID_SEEDS = list(range(10))
FASTEST_SEEDS = [0, 1, 2, 10, 11, 12, 13, 14]


def grid_points() -> list[dict]:
    keys = list(GRID)
    return [dict(zip(keys, values)) for values in itertools.product(*(GRID[k] for k in keys))]


def sample_space(dists: dict[str, Dist], n: int, seed: int) -> list[dict]:
    """n points drawn uniformly (log-uniformly) from a parsed search space (SearchConfig.params),
    per-value ranges resolved."""
    rng, out = random.Random(seed), []
    for _ in range(n):
        point = {}
        for key, d in dists.items():
            if d.kind in ("choice", "grid"):
                point[key] = rng.choice(list(d.values))
            elif d.kind == "loguniform":
                point[key] = float(np.exp(rng.uniform(np.log(d.low), np.log(d.high))))
            elif d.kind in PER_VALUE or d.kind == "uniform":
                point[key] = rng.uniform(0.0, 1.0) if d.kind in PER_VALUE else rng.uniform(d.low, d.high)
            else:
                raise ValueError(f"{key}: {d.kind} not handled by the pool sampler")
        out.append(snap_values(dists, point))
    return out


def _run(job: tuple) -> list[dict]:
    """Train one (pool, config index, point, seed); return its slim eval records."""
    from trials.train import train  # deferred: torch loads in the worker processes only

    pool, index, point, seed = job
    started = time.process_time()
    if pool.startswith("plateau"):
        from benchmarks.score_vs_valacc import CONFIG, PRESETS  # deferred: sibling benchmark

        cfg = load_config(CONFIG, ["train.steps=4000", "train.target_patience=0", "train.num_threads=1",
                                   "train.per_class_metrics=false", *PRESETS["plateau"]["overrides"]])
    else:
        cfg = load_config(FASTEST, ["train.num_threads=1"])
    cfg = with_values(cfg, {**point, "seed": seed})
    cfg.search = None
    records: list[dict] = []
    train(cfg, lambda r, save=None: records.append(r))
    cpu = time.process_time() - started
    return [{"pool": pool, "config": index, "seed": seed, **{f"p:{k}": v for k, v in point.items()},
             **{k: r[k] for k in KEYS}, "cpu_s": cpu} for r in records]


def jobs_for(pools: list[str], n_fastest: int) -> list[tuple]:
    from benchmarks.score_vs_valacc import sample_points  # deferred: sibling benchmark

    jobs = []
    for pool in pools:
        if pool.startswith("plateau"):
            s = int(pool.split("-")[1])
            jobs += [(pool, i, pt, i) for i, pt in enumerate(sample_points(32, s, "plateau"))]
        elif pool == "grid":
            jobs += [(pool, i, pt, s) for s in GRID_SEEDS for i, pt in enumerate(grid_points())]
        elif pool.startswith("fastest"):  # "fastest" (points drawn with seed 0) or "fastest-S"
            s = int(pool.split("-")[1]) if "-" in pool else 0
            pts = sample_space(load_config(FASTEST).search.params, n_fastest, seed=s)
            jobs += [(pool, i, pt, s) for s in FASTEST_SEEDS for i, pt in enumerate(pts)]
    return jobs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pools", nargs="+", default=["plateau-0", "plateau-1", "grid", "fastest"])
    p.add_argument("--n-fastest", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--deadline", type=float, default=1e9, help="seconds; then write what finished")
    p.add_argument("--out", type=Path, default=POOLS)
    args = p.parse_args(argv)
    started = time.monotonic()
    jobs = jobs_for(args.pools, args.n_fastest)
    done: dict[str, list] = {pool: [] for pool in args.pools}
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(args.workers)
    pending = [pool.apply_async(_run, (job,)) for job in jobs]
    try:
        while time.monotonic() - started < args.deadline and not all(r.ready() for r in pending):
            time.sleep(1.0)
        for job, res in zip(jobs, pending):
            if res.ready() and res.successful():
                done[job[0]].extend(res.get())
    finally:
        pool.terminate()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in done.items():
        if rows:
            frame = pd.DataFrame(rows)
            for col in ("train_acc", "val_acc", "train_loss", "val_loss", "param_norm"):
                frame[col] = frame[col].astype("float32")
            frame.to_parquet(args.out / f"{name}.parquet", index=False, compression="zstd")
            runs = frame.groupby(["config", "seed"]).ngroups
            print(f"{name}: {runs} runs, {frame['cpu_s'].groupby([frame['config'], frame['seed']]).first().sum():.0f} cpu-s")
    print(f"total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
