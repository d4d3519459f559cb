"""Does the replay of once-trained curves predict what a real sweep's ASHA does?

    groktune sweep configs/demo_sweep.yaml --storage /tmp/res --set search.verify.top=0
    python benchmarks/replay_vs_sweep.py /tmp/res/demo_sweep --workers 2

The replay benchmarks (score_vs_valacc, rung_frontier, search_efficiency) train each config once
to its end and then run Ray's ASHA over the recorded curves. This checks that shortcut against a
real end-to-end sweep (single-seed trials, one sweep folder):

1. Every trial of the sweep is trained again, alone, with the trainer a sweep trial runs (its
   resolved config from the sweep's experiment.yaml, its sampled values and seed, one thread),
   to its own end: the event's streak or the budget, never stopped by a scheduler.
2. The retrained curve is compared with the curve the sweep logged up to where the sweep
   stopped it (the replay assumes a trial's curve does not depend on who else runs).
3. The retrained curves are replayed through Ray's AsyncHyperBandScheduler with the sweep's own
   settings (grace period, reduction factor, the sweep's metric), trials started in the order
   the real sweep started them, as many at a time as it ran, one step per time unit; and in R
   random start orders (what the benchmarks do).
4. Printed per trial: the real outcome (pruned / grokked / budget, last step) beside the
   replay's; then the agreement, would-be grokkers stopped (real vs replay) and the answer (the
   fastest grokker found). The replay's clock is steps; a real sweep's is wall time, and a step's
   cost differs between configs (batch size), so trials can meet a rung in another company.
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing as mp
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from groktune.events import EventTracker  # noqa: E402
from orchestrator.config.experiment import load_config, with_values  # noqa: E402
from orchestrator.sweep.objective import scores_for_curve  # noqa: E402

KEYS = ("step", "train_acc", "val_acc", "train_loss", "val_loss", "param_norm")


def retrain(args: tuple[str, str, dict]) -> list[dict]:
    """One sweep trial trained again, alone, to its own end (event streak or budget)."""
    from trials.train import train  # deferred: torch loads only in the worker processes

    experiment, trial_id, values = args
    cfg = with_values(load_config(experiment, ["train.num_threads=1"]), values)
    cfg.search = None
    records: list[dict] = []
    train(cfg, lambda r, save=None: records.append(r))
    return [{"trial_id": trial_id, **{k: r[k] for k in KEYS}} for r in records]


def outcome(curve: pd.DataFrame, target: float, patience: int) -> tuple[int | None, int]:
    """(event step or None, the step the curve ends at)."""
    tracker = EventTracker(target, patience)
    for s, v in zip(curve["step"], curve["val_acc"]):
        tracker.update(int(s), float(v))
        if tracker.event is not None:
            return tracker.event, int(s)
    return None, int(curve["step"].iloc[-1])


def started_at(sweep: Path, trial_id: str) -> float:
    """When the sweep first started a trial: the first line of its ledger's .starts file ("pid time")."""
    starts = sweep / "ledger" / f"{trial_id}.starts"
    return float(starts.read_text().split("\n")[0].split()[1]) if starts.is_file() else float("inf")


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def replay(curves: dict, order: list[str], k: int, budget: int, grace: int, rf: int) -> dict[str, int]:
    """Ray's ASHA over the curves (column "score", minimised); trial -> last step reached."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler  # deferred: Ray imports slowly

    sched = AsyncHyperBandScheduler(time_attr="step", metric="score", mode="min", max_t=budget,
                                    grace_period=grace, reduction_factor=rf, stop_last_trials=False)
    queue, events, reached = list(order), [], {}

    def start(now: float) -> None:
        if queue:
            t = queue.pop(0)
            sched.on_trial_add(None, _Trial(t))
            heapq.heappush(events, (now + curves[t]["step"][0], t, 0))

    for _ in range(min(k, len(queue))):
        start(0.0)
    while events:
        now, t, i = heapq.heappop(events)
        steps, score = curves[t]["step"], curves[t]["score"]
        reached[t] = int(steps[i])
        result = {"step": int(steps[i]), "score": float(score[i])}
        if i == len(steps) - 1:
            sched.on_trial_complete(None, _Trial(t), result)
            start(now)
        elif sched.on_trial_result(None, _Trial(t), result) == TrialScheduler.STOP:
            start(now)
        else:
            heapq.heappush(events, (now + steps[i + 1] - steps[i], t, i + 1))
    return reached


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("sweep", type=Path, help="a finished sweep folder (curves.parquet, trials.parquet, experiment.yaml)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=100, help="random start orders")
    p.add_argument("--concurrency", type=int, default=2, help="trials the real sweep ran at a time")
    p.add_argument("--curves", type=Path, help="retrained curves (default SWEEP/retrained.parquet; reused if present)")
    args = p.parse_args(argv)
    experiment = args.sweep / "experiment.yaml"
    if not experiment.is_file() or not (args.sweep / "trials.parquet").is_file():
        print(f"error: {args.sweep} is not a finished sweep folder (experiment.yaml, trials.parquet)", file=sys.stderr)
        return 2
    cfg = load_config(experiment)
    tc, sc = cfg.train, cfg.search
    trials = pd.read_parquet(args.sweep / "trials.parquet")
    logged = pd.read_parquet(args.sweep / "curves.parquet")
    keys = list(sc.space) + ["seed"]
    args.curves = args.curves or args.sweep / "retrained.parquet"
    if not args.curves.exists():
        jobs = [(str(experiment), row["trial_id"], {k: (row[k].item() if hasattr(row[k], "item") else row[k])
                                                    for k in keys}) for _, row in trials.iterrows()]
        with mp.get_context("spawn").Pool(args.workers) as pool:
            rows = [r for recs in pool.imap_unordered(retrain, jobs) for r in recs]
        pd.DataFrame(rows).to_parquet(args.curves, index=False)
    again = pd.read_parquet(args.curves)

    # 2. Same curve as the sweep logged, up to where the sweep stopped it?
    diffs = []
    for t, c in logged.groupby("trial_id"):
        m = c[["step", "val_acc", "val_loss"]].merge(again[again.trial_id == t][["step", "val_acc", "val_loss"]],
                                                     on="step", suffixes=("_sweep", "_again"))
        diffs.append(float(np.abs(m["val_loss_sweep"] - m["val_loss_again"]).max()))
    print(f"retrained vs logged curves: {len(diffs)} trials, largest |val loss difference| {max(diffs):.2e}")

    # 3. Replay in the sweep's own start order and in random orders.
    curves, grok, ends = {}, {}, {}
    for t, c in again.groupby("trial_id"):
        c = c.sort_values("step").reset_index(drop=True)
        chance = 1.0 / cfg.task.p if cfg.task.name == "modular" else None
        grok[t], ends[t] = outcome(c, tc.target_val_acc, tc.target_patience)
        c = c[c["step"] <= ends[t]]
        curves[t] = {"step": c["step"].to_numpy(), "score": np.asarray(
            scores_for_curve(c.to_dict("records"), tc.target_val_acc, tc.steps, chance=chance,
                             patience=tc.target_patience))}
    real_order = sorted(curves, key=lambda t: started_at(args.sweep, t))
    reached = replay(curves, real_order, args.concurrency, tc.steps, sc.grace_period, sc.reduction_factor)
    rows = []
    for _, r in trials.set_index("trial_id").loc[real_order].reset_index().iterrows():
        t = r["trial_id"]
        rows.append({"trial": t, "sweep": f"{r['status']} @ {int(r['final_step'])}",
                     "replay": f"{'stopped' if reached[t] < ends[t] else ('grokked' if grok[t] else 'budget')} @ {reached[t]}",
                     "would grok at": grok[t], "agree": (r["status"] == "pruned") == (reached[t] < ends[t]),
                     "same step": int(r["final_step"]) == reached[t]})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    grokkers = [t for t in curves if grok[t] is not None]
    real_stopped = trials[trials.trial_id.isin(grokkers) & (trials.status == "pruned")]
    print(f"agree on stop/keep: {int(table['agree'].sum())} / {len(table)}, on the step too: "
          f"{int(table['same step'].sum())}; would-be grokkers stopped: sweep "
          f"{len(real_stopped)} / {len(grokkers)}, replay (same order) {sum(reached[t] < ends[t] for t in grokkers)}"
          f" / {len(grokkers)}")
    found = trials[trials.status == "grokked"].sort_values("steps_to_target")
    replay_best = min((t for t in grokkers if reached[t] >= ends[t]), key=lambda t: grok[t], default=None)
    print(f"answer: sweep {found.iloc[0]['trial_id']} ({found.iloc[0]['steps_to_target']} steps), replay "
          f"{replay_best} ({grok.get(replay_best)} steps); fastest of all {min(grokkers, key=lambda t: grok[t])} "
          f"({min(grok[t] for t in grokkers)} steps)")
    rng, stats = random.Random(0), []
    for _ in range(args.repeats):
        order = list(curves)
        rng.shuffle(order)
        got = replay(curves, order, args.concurrency, tc.steps, sc.grace_period, sc.reduction_factor)
        stats.append((np.mean([got[t] < ends[t] for t in grokkers]), np.mean([got[t] < ends[t] for t in curves])))
    stats = np.array(stats)
    print(f"replay over {args.repeats} random orders: would-be grokkers stopped {stats[:, 0].mean():.3f} "
          f"(5-95 %: {np.quantile(stats[:, 0], 0.05):.2f}-{np.quantile(stats[:, 0], 0.95):.2f}), trials stopped "
          f"{stats[:, 1].mean():.3f}; the sweep: {len(real_stopped) / len(grokkers):.3f}, "
          f"{(trials.status == 'pruned').mean():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
