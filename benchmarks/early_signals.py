"""Which signal, read at an ASHA rung, says how soon a trial still short of the target will grok?

    python benchmarks/early_signals.py                        # the committed plateau pools
    python benchmarks/early_signals.py --select 0 2 --held-out 1 3

Reads pools of real curves (benchmarks/curve_pool.py: plateau-S, p=97 transformers trained once
to 4000 steps with no early stop) and, at each rung of the sweep's ASHA (grace 300, reduction
factor 3: steps 300, 900, 2700), takes every trial that has not generalised by then (the one
event rule, groktune.events) and reads each candidate signal at its last eval at or before the
rung. Each signal is oriented so that lower means "sooner" and rank-correlated (Spearman) with
the trial's final steps to target (a trial that never grokked ranks last, tied with the others
that never did). Printed per rung and per signal, separately for the selection pools and the
held-out pools; the held-out table is the evidence (a signal picked on pools it was not chosen
on). Also printed: the same for the trials still at chance (val acc below 2 x chance).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from groktune.events import EventTracker  # noqa: E402
from orchestrator.sweep.objective import rung_signals  # noqa: E402

POOLS = ROOT / "benchmarks" / "pools"
RUNGS = (300, 900, 2700)
TARGET, PATIENCE, BUDGET, CHANCE = 0.99, 3, 4000, 1 / 97


def _signals_at(curve: pd.DataFrame, rung: int) -> dict | None:
    """The candidate signals of one curve at a rung (None if it generalised by then)."""
    upto = curve[curve["step"] <= rung]
    tracker = EventTracker(TARGET, PATIENCE)
    for s, v in zip(upto["step"], upto["val_acc"]):
        tracker.update(int(s), float(v))
    if tracker.event is not None:
        return None
    rows = upto.to_dict("records")
    half = [r for r in rows if r["step"] <= rung / 2] or rows[:1]
    last = rows[-1]
    peak_norm = max(r["param_norm"] for r in rows)
    out = {
        "val_acc": -last["val_acc"],
        "val_acc_quantised": -np.floor((last["val_acc"] - CHANCE) / (TARGET - CHANCE) / 0.05),
        "val_loss": last["val_loss"],
        "train_acc": -last["train_acc"],
        "train_loss": last["train_loss"],
        "param_norm": last["param_norm"],
        "param_norm_vs_peak": last["param_norm"] / peak_norm,
        "param_norm_trend": np.log(last["param_norm"] / half[-1]["param_norm"]),
        "val_loss_vs_peak": last["val_loss"] / max(r["val_loss"] for r in rows),
        "val_acc_trend": -(last["val_acc"] - half[-1]["val_acc"]),
        "gap_loss": last["val_loss"] - last["train_loss"],
    }
    # The candidates the score module defines itself (one implementation for score and benchmark).
    for name, value in rung_signals(rows, chance=CHANCE, target=TARGET).items():
        out[name] = value
    return out


def table(frames: list[pd.DataFrame], at_chance_only: bool = False) -> pd.DataFrame:
    """Spearman rho (signal, final steps to target) per rung and signal, with the trial count."""
    rows = []
    for rung in RUNGS:
        samples = []
        for frame in frames:
            for _, c in frame.groupby("config"):
                c = c.sort_values("step")
                sig = _signals_at(c, rung)
                if sig is None:
                    continue
                if at_chance_only and -sig["val_acc"] >= 2 * CHANCE:
                    continue
                tracker = EventTracker(TARGET, PATIENCE)
                for s, v in zip(c["step"], c["val_acc"]):
                    tracker.update(int(s), float(v))
                sig["_final"] = tracker.event if tracker.event is not None else 2 * BUDGET
                samples.append(sig)
        data = pd.DataFrame(samples)
        if len(data) < 4:
            continue
        ranks = data.rank()
        for name in [c for c in data.columns if c != "_final"]:
            rho = float(np.corrcoef(ranks[name], ranks["_final"])[0, 1]) if ranks[name].std() > 0 else 0.0
            rows.append({"rung": rung, "signal": name, "rho": rho, "n": len(data),
                         "grokked": int((data["_final"] < 2 * BUDGET).sum())})
    return pd.DataFrame(rows)


def load(seeds: list[int], pools: Path = POOLS) -> list[pd.DataFrame]:
    return [pd.read_parquet(pools / f"plateau-{s}.parquet") for s in seeds]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--select", type=int, nargs="+", default=[0, 2], help="plateau pools the signal was chosen on")
    p.add_argument("--held-out", type=int, nargs="+", default=[1, 3], help="plateau pools kept out of the choice")
    p.add_argument("--pools", type=Path, default=POOLS)
    args = p.parse_args(argv)
    pd.set_option("display.width", 200)
    for label, seeds in (("selection", args.select), ("held out", args.held_out)):
        frames = load(seeds, args.pools)
        for chance_only in (False, True):
            t = table(frames, chance_only)
            wide = t.pivot(index="signal", columns="rung", values="rho").round(2)
            counts = t.groupby("rung")[["n", "grokked"]].first()
            which = "trials at chance (val acc < 2/p)" if chance_only else "trials not generalised yet"
            print(f"\n{label} pools {seeds}, {which}: Spearman rho with final steps to target "
                  f"(positive: the signal ranks sooner grokkers better)")
            print(wide.sort_values(wide.columns[0], ascending=False).to_string())
            print("trials (grokked later):", {int(r): (int(n), int(g)) for r, (n, g) in counts.iterrows()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
