"""Which rung score stops the fewest would-be grokkers for the compute it spends?

    python benchmarks/rung_frontier.py                      # the four plateau pools, grace 300
    python benchmarks/rung_frontier.py --grace 100 150 300 450 --repeats 30

Replays the committed pools of real curves (benchmarks/pools/plateau-S.parquet, see
benchmarks/curve_pool.py) through Ray's own AsyncHyperBandScheduler exactly as
benchmarks/score_vs_valacc.py does (time in steps, reduction factor 3, stop_last_trials=False,
2 trials at a time, R random start orders; a finished trial reports its last result through
on_trial_complete as Tune does), once per candidate rung score, and prints per pool: the share
of would-be grokkers stopped, the compute (steps spent / steps of running every trial to its
own end) and how often the fastest grokker was kept.

Every candidate is a tie-tier score of grok_score's form: the event step once a trial has
generalised, else B * (2 - promise), promise = max(val-accuracy progress, 0.5 if the candidate's
rule says "coming" else 0). The rules read one eval and the curve before it: the val-loss trend
(log val loss at half the steps / now) against a threshold, val loss against the chance log loss
ln(classes), val loss against its own peak, train accuracy (still memorising); and one graded
score (the val-loss trend itself, no ties). Two oracles bound
what any rule could do: `oracle tier <= X` knows which trials generalise by step X (a perfect
binary rule), `oracle rank` scores every trial by its final steps to target (a perfect ranking).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from groktune.events import EventTracker  # noqa: E402
from orchestrator.sweep.objective import loss_trend, progress, scores_for_curve  # noqa: E402

POOLS = ROOT / "benchmarks" / "pools"
TARGET, PATIENCE, BUDGET, CHANCE = 0.99, 3, 4000, 1 / 97
LN_CHANCE = math.log(97)  # the log loss of a uniform guess over the 97 answers


def _trend_above(x):
    return lambda rec, hist, trend: trend is not None and trend > x


RULES = {  # name -> rule(record, records so far, val-loss trend) -> "coming"
    "trend > -0.10": _trend_above(-0.10),
    "trend > -0.05": _trend_above(-0.05),
    "trend > -0.03": _trend_above(-0.03),
    "trend > -0.01": _trend_above(-0.01),
    "trend > 0.10": _trend_above(0.10),
    "val loss < 1.05 ln(p)": lambda rec, hist, trend: rec["val_loss"] < 1.05 * LN_CHANCE,
    "val loss < 0.99 peak": lambda rec, hist, trend: rec["val_loss"] < 0.99 * max(h["val_loss"] for h in hist),
    "trend > 0.03 or train acc < 0.5": lambda rec, hist, trend: (trend is not None and trend > 0.03)
    or rec["train_acc"] < 0.5,
}


def tier_scores(records: list[dict], rule) -> list[float]:
    """grok_score's form with `rule` as the "coming" tier (module docstring)."""
    tracker, out = EventTracker(TARGET, PATIENCE), []
    for i, rec in enumerate(records):
        tracker.update(int(rec["step"]), float(rec["val_acc"]))
        if tracker.event is not None:
            out.append(float(min(tracker.event, BUDGET)))
            continue
        hist = records[: i + 1]
        trend = loss_trend([[h["step"], h["val_loss"]] for h in hist], int(rec["step"]), rec["val_loss"])
        promise = max(progress(rec["val_acc"], target=TARGET, chance=CHANCE), 0.5 if rule(rec, hist, trend) else 0.0)
        out.append(BUDGET * (2.0 - promise))
    return out


def graded_scores(records: list[dict]) -> list[float]:
    """grok_score's form with a graded promise from the val-loss trend, 0.25 + trend / 4 in [0, 0.9]:
    every trial at chance ranked strictly, no ties."""
    tracker, out = EventTracker(TARGET, PATIENCE), []
    for i, rec in enumerate(records):
        tracker.update(int(rec["step"]), float(rec["val_acc"]))
        if tracker.event is not None:
            out.append(float(min(tracker.event, BUDGET)))
            continue
        trend = loss_trend([[h["step"], h["val_loss"]] for h in records[: i + 1]], int(rec["step"]), rec["val_loss"])
        graded = 0.0 if trend is None else min(max(0.25 + trend / 4, 0.0), 0.9)
        out.append(BUDGET * (2.0 - max(progress(rec["val_acc"], target=TARGET, chance=CHANCE), graded)))
    return out


def outcome(records: list[dict]) -> tuple[int | None, int]:
    """(event step or None, the step a sweep trial ends at: its event's streak, else the budget)."""
    tracker = EventTracker(TARGET, PATIENCE)
    for rec in records:
        tracker.update(int(rec["step"]), float(rec["val_acc"]))
        if tracker.event is not None:
            return tracker.event, int(rec["step"])
    return None, int(records[-1]["step"])


def candidates(records: list[dict], event: int | None) -> dict[str, list[float]]:
    out = {"grok_score (the sweep's)": scores_for_curve(records, TARGET, BUDGET, chance=CHANCE)}
    out.update({name: tier_scores(records, rule) for name, rule in RULES.items()})
    out["val loss trend, graded"] = graded_scores(records)
    for x in (1500, 2500):
        out[f"oracle tier <= {x}"] = tier_scores(records, lambda *a, x=x: event is not None and event <= x)
    out["oracle rank"] = [BUDGET + (event if event is not None else BUDGET)] * len(records)
    return out


class _Trial:
    def __init__(self, trial_id):
        self.trial_id = trial_id


def replay(curves, name, order, k, ends, grace) -> dict:
    """Ray's ASHA over the curves; trial -> last step reached (as score_vs_valacc.replay)."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler  # deferred: Ray imports slowly

    sched = AsyncHyperBandScheduler(time_attr="step", metric="score", mode="min", max_t=BUDGET,
                                    grace_period=grace, reduction_factor=3, stop_last_trials=False)
    queue, events, reached = list(order), [], {}

    def start(now):
        if queue:
            t = queue.pop(0)
            sched.on_trial_add(None, _Trial(str(t)))
            heapq.heappush(events, (now + curves[t][0][0], t, 0))

    for _ in range(min(k, len(queue))):
        start(0.0)
    while events:
        now, t, i = heapq.heappop(events)
        steps, score = curves[t][0], curves[t][1][name]
        reached[t] = int(steps[i])
        result = {"step": int(steps[i]), "score": float(score[i])}
        if steps[i] >= ends[t]:
            sched.on_trial_complete(None, _Trial(str(t)), result)
            start(now)
        elif sched.on_trial_result(None, _Trial(str(t)), result) == TrialScheduler.STOP:
            start(now)
        else:
            heapq.heappush(events, (now + steps[i + 1] - steps[i], t, i + 1))
    return reached


def evaluate(pool: pd.DataFrame, repeats: int, k: int, grace: int, seed: int = 0) -> pd.DataFrame:
    curves, grok, ends = {}, {}, {}
    for t, c in pool.groupby("config"):
        recs = c.sort_values("step").to_dict("records")
        grok[t], ends[t] = outcome(recs)
        curves[t] = (np.array([r["step"] for r in recs]), {n: np.asarray(s) for n, s in candidates(recs, grok[t]).items()})
    grokkers = [t for t, g in grok.items() if g is not None]
    best, total = min(grokkers, key=lambda t: grok[t]), sum(ends.values())
    rng, rows = random.Random(seed), []
    for _ in range(repeats):
        order = list(curves)
        rng.shuffle(order)
        for name in curves[order[0]][1]:
            reached = replay(curves, name, order, k, ends, grace)
            rows.append({"score": name, "stopped": np.mean([reached[t] < ends[t] for t in grokkers]),
                         "compute": sum(reached.values()) / total, "kept": float(reached[best] >= ends[best])})
    return pd.DataFrame(rows).groupby("score", sort=False).mean()


def keep_fastest_bound(pool: pd.DataFrame, grace: int, share: float = 0.7) -> float:
    """The least compute of any rule that keeps the fastest `share` of the grokkers: those run to
    their end, every other trial is stopped at the first rung (no scheduler can stop sooner)."""
    outs = [outcome(c.sort_values("step").to_dict("records")) for _, c in pool.groupby("config")]
    ends = sorted(end for g, end in outs if g is not None)
    keep = math.ceil(share * len(ends))
    spent = sum(ends[:keep]) + sum(min(e, grace) for e in ends[keep:]) + grace * sum(g is None for g, _ in outs)
    return spent / sum(end for _, end in outs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pools", type=int, nargs="+", default=[0, 1, 2, 3], help="plateau pool seeds")
    p.add_argument("--grace", type=int, nargs="+", default=[300])
    p.add_argument("--repeats", type=int, default=60)
    p.add_argument("--concurrency", type=int, default=2)
    args = p.parse_args(argv)
    pd.set_option("display.width", 220)
    for grace in args.grace:
        per = {s: evaluate(pd.read_parquet(POOLS / f"plateau-{s}.parquet"), args.repeats, args.concurrency, grace)
               for s in args.pools}
        table = pd.concat({f"pool {s}": t for s, t in per.items()}, axis=1)
        mean = sum(per.values()) / len(per)
        table[("mean", "stopped")], table[("mean", "compute")], table[("mean", "kept")] = (
            mean["stopped"], mean["compute"], mean["kept"])
        print(f"\ngrace {grace}, {args.concurrency} at a time, {args.repeats} start orders: "
              "would-be grokkers stopped / compute / fastest grokker kept")
        print(table.round(3).to_string())
        bound = [keep_fastest_bound(pd.read_parquet(POOLS / f"plateau-{s}.parquet"), grace) for s in args.pools]
        print("least compute that keeps the fastest 70 % of grokkers (stopped 0.30):",
              " ".join(f"{b:.3f}" for b in bound), f"mean {np.mean(bound):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
