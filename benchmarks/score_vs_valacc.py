"""How often does ASHA prune a config that would have grokked within budget: grok_score vs val_acc?

    python benchmarks/score_vs_valacc.py                      # train the curves, then replay
    python benchmarks/score_vs_valacc.py --curves FILE        # replay saved curves only

1. Sample N configs (x+y and x*y; lr, weight decay, batch size, train fraction; a one-layer
   transformer; two regimes, see PRESETS) and train each to the full budget B once,
   never stopping early, recording every eval (the same eval schedule a sweep uses).
2. Replay those curves through Ray's own AsyncHyperBandScheduler (grace period, reduction
   factor and stop_last_trials=False as `groktune sweep` builds it), once with
   metric=grok_score/mode=min and once with metric=val_acc/mode=max. Trials run K at a time at
   one step per time unit and are started in a random order; each replay is repeated over R
   orders, because asynchronous rungs depend on who arrives first.
3. Report, per metric: of the configs that grokked within budget (the trainer's StopRule:
   val acc >= target for target_patience evals in a row), the share ASHA stopped first;
   the share of all trials pruned; the steps spent as a share of running everything; how often
   the earliest grokker survived; and the regret: steps_to_target of the fastest grokker that
   survived minus that of the fastest overall.
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from groktune.layout import losses_finite  # noqa: E402
from orchestrator.config.experiment import load_config, with_values  # noqa: E402
from orchestrator.sweep.objective import scores_for_curve  # noqa: E402
from trials.evalplan import StopRule  # noqa: E402

CONFIG = ROOT / "configs" / "demo_sweep.yaml"


# Two regimes. "demo": the demo sweep's own setting (p=23, where val accuracy climbs together
# with train accuracy). "plateau": p=97 with a small train fraction, where train accuracy reaches
# ~1 long before val accuracy leaves chance — the memorisation plateau of Power et al. 2022.
PRESETS = {
    "demo": {"overrides": [], "lr": (3e-4, 2e-2), "fraction": (0.3, 0.8), "batch": [64, 128, 0]},
    "plateau": {"overrides": ["task.p=97", "model.d_model=64", "model.d_ff=256"],
                "lr": (3e-4, 3e-3), "fraction": (0.25, 0.5), "batch": [256, 512]},
}


def sample_points(n: int, seed: int, preset: str) -> list[dict]:
    rng, p = random.Random(seed), PRESETS[preset]
    return [{
        "task.op": rng.choice(["x+y", "x*y"]),
        "optim.lr": float(np.exp(rng.uniform(np.log(p["lr"][0]), np.log(p["lr"][1])))),
        "optim.weight_decay": rng.uniform(0.0, 2.0),
        "train.batch_size": rng.choice(p["batch"]),
        "task.train_fraction": round(rng.uniform(*p["fraction"]) / 0.05) * 0.05,
    } for _ in range(n)]


def train_curve(args: tuple[int, dict, int, str]) -> list[dict]:
    """Train one config to the full budget (no early stop) and return its eval records."""
    from trials.train import train

    index, point, steps, preset = args
    cfg = load_config(CONFIG, [f"train.steps={steps}", "train.target_patience=0", "train.num_threads=1",
                               "train.per_class_metrics=false", *PRESETS[preset]["overrides"]])
    cfg = with_values(cfg, {**point, "seed": index})
    cfg.search = None
    records: list[dict] = []
    train(cfg, lambda r, save=None: records.append(r))
    return [{"trial": index, **point, **{k: r[k] for k in ("step", "train_acc", "val_acc", "train_loss", "val_loss",
                                                           "param_norm")}} for r in records]


def outcome(curve: pd.DataFrame, target: float, patience: int) -> tuple[int | None, int]:
    """(steps_to_target or None, the step the trial ends at) under the trainer's own StopRule:
    grokked once val acc >= target for `patience` evals in a row (groktune.events); otherwise it
    runs to the budget."""
    rule = StopRule(target, patience)
    for row in curve.itertuples():
        finite = losses_finite(row._asdict())
        stop = rule.update(int(row.step), float(row.val_acc), float(row.val_loss), finite)
        if stop is not None:
            return (rule.event if stop == "grokked" else None), int(row.step)
    last = int(curve["step"].iloc[-1])
    return (rule.event if rule.final_status(None) == "grokked" else None), last


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def replay(curves: dict[int, pd.DataFrame], metric: str, mode: str, order: list[int], k: int,
           budget: int, grace: int, rf: int, ends: dict[int, int]) -> dict[int, int]:
    """Run ASHA over the recorded curves; return trial -> last step it reached."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

    sched = AsyncHyperBandScheduler(time_attr="step", metric=metric, mode=mode, max_t=budget,
                                    grace_period=grace, reduction_factor=rf, stop_last_trials=False)
    queue = list(order)
    events: list[tuple[float, int, int]] = []  # (time, trial, row index)
    reached: dict[int, int] = {}

    def start(now: float) -> None:
        if queue:
            t = queue.pop(0)
            sched.on_trial_add(None, _Trial(str(t)))
            heapq.heappush(events, (now + curves[t]["step"].iloc[0], t, 0))

    for _ in range(min(k, len(queue))):
        start(0.0)
    while events:
        now, t, i = heapq.heappop(events)
        row = curves[t].iloc[i]
        reached[t] = int(row["step"])
        result = {"step": int(row["step"]), metric: float(row[metric])}
        last = int(row["step"]) >= ends[t]
        if last:
            sched.on_trial_complete(None, _Trial(str(t)), result)
            start(now)
        elif sched.on_trial_result(None, _Trial(str(t)), result) == TrialScheduler.STOP:
            start(now)
        else:
            nxt = curves[t]["step"].iloc[i + 1]
            heapq.heappush(events, (now + nxt - row["step"], t, i + 1))
    return reached


def evaluate(frame: pd.DataFrame, repeats: int, k: int, seed: int) -> pd.DataFrame:
    cfg = load_config(CONFIG)
    tc, s = cfg.train, cfg.search
    budget = tc.steps if frame["step"].max() == tc.steps else int(frame["step"].max())
    curves = {}
    for t, c in frame.groupby("trial"):
        c = c.sort_values("step").reset_index(drop=True)
        c["grok_score"] = scores_for_curve(c.to_dict("records"), tc.target_val_acc, budget)
        curves[int(t)] = c
    outcomes = {t: outcome(c, tc.target_val_acc, tc.target_patience) for t, c in curves.items()}
    grok = {t: g for t, (g, _) in outcomes.items()}
    ends = {t: end for t, (_, end) in outcomes.items()}
    grokkers = [t for t, g in grok.items() if g is not None]
    best = min(grokkers, key=lambda t: grok[t]) if grokkers else None
    total = sum(ends.values())
    rng = random.Random(seed)
    rows = []
    for rep in range(repeats):
        order = list(curves)
        rng.shuffle(order)
        for metric, mode in (("grok_score", "min"), ("val_acc", "max")):
            reached = replay(curves, metric, mode, order, k, budget, s.grace_period, s.reduction_factor, ends)
            lost = [t for t in grokkers if reached[t] < ends[t]]  # stopped before its streak completed
            rows.append({
                "repeat": rep, "metric": metric,
                "grokkers_pruned": len(lost) / max(len(grokkers), 1),
                "trials_pruned": sum(reached[t] < ends[t] for t in curves) / len(curves),
                "compute": sum(reached.values()) / total,
                "best_survived": best is not None and reached[best] >= ends[best],
                # steps_to_target of the fastest grokker the sweep still found, minus the fastest overall
                "regret_steps": min((grok[t] for t in grokkers if reached[t] >= ends[t]), default=budget)
                - (grok[best] if best is not None else budget),
            })
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=40, help="configs to train")
    p.add_argument("--steps", type=int, default=3000, help="budget per config (the demo's train.steps)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    p.add_argument("--curves", type=Path, help="curves file (default benchmarks/results/score_vs_valacc_PRESET.parquet)")
    p.add_argument("--retrain", action="store_true", help="train the curves even if --curves exists")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--concurrency", type=int, nargs="+", default=[2, 4])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.curves = args.curves or ROOT / "benchmarks" / "results" / f"score_vs_valacc_{args.preset}.parquet"
    if args.retrain or not args.curves.exists():
        started = time.perf_counter()
        jobs = [(i, pt, args.steps, args.preset) for i, pt in enumerate(sample_points(args.n, args.seed, args.preset))]
        with mp.get_context("spawn").Pool(args.workers) as pool:
            curves = [r for rows in pool.imap_unordered(train_curve, jobs) for r in rows]
        args.curves.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(curves).to_parquet(args.curves, index=False)
        print(f"trained {args.n} configs x {args.steps} steps in {time.perf_counter() - started:.0f}s -> {args.curves}")
    frame = pd.read_parquet(args.curves)
    tc = load_config(CONFIG).train
    n_grok = sum(outcome(c.sort_values("step"), tc.target_val_acc, tc.target_patience)[0] is not None
                 for _, c in frame.groupby("trial"))
    print(f"{frame['trial'].nunique()} configs, {n_grok} grokked within {frame['step'].max()} steps")
    out = {}
    for k in args.concurrency:
        res = evaluate(frame, args.repeats, k, args.seed)
        table = res.groupby("metric")[["grokkers_pruned", "trials_pruned", "compute", "best_survived",
                                        "regret_steps"]].mean()
        print(f"\nASHA, {k} trials at a time, {args.repeats} random start orders (means):")
        print(table.round(3).to_string())
        out[k] = table.round(4).to_dict("index")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
