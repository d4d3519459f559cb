"""Search efficiency: which strategy finds a config that really is fast, for how much compute?

    python benchmarks/search_efficiency.py --quick          # the grid space, 10 search seeds, ~1-3 min
    python benchmarks/search_efficiency.py --space fastest --figure benchmarks/figures/search_efficiency_fastest.png

A tabular replay (as NAS-Bench does): benchmarks/pools/grid.parquet holds every config of a
48-point space around configs/fastest_modmul97_methods.yaml's base point (lr x weight decay x warmup x
batch size; x*y mod 97, the one-hidden-layer MLP, B = 300 steps, 95 % val for 3 evals) trained
once per seed 0-9 with the real trainer (benchmarks/curve_pool.py). A search "trains" a
(config, seed) by reading that run's curve eval by eval, so a scheduler can stop it at any eval,
exactly as it would have stopped the real run. Seeds 0-2 are the search seeds, 3-4 the
verification stage's fresh seeds, 5-9 judge a search's answer: the median over those five of
steps to target (a seed that never reached it counts as never, capped at 2B for the regret).

--space fastest replays the space of configs/fastest_modmul97_methods.yaml itself (14 keys, a learning-rate
range per optimizer) on the 100 configs drawn from it at random (pools fastest and fastest-1,
seeds 0-2 and 10-14): a searcher's point is run as the nearest pool config (a differing choice
costs 1, a range its distance in [0, 1], log ranges on a log scale). Those pools have no spare
seeds, so groktune's verification stage is left out there; seeds 10-14 judge.

Strategies (one trial at a time, each with the same compute budget in summed optimizer steps):

    random+fifo   random configs, seeds 0-2 each, run to the end; answer: best median over seeds
    tpe+fifo      Optuna TPE (seeded) told the mean grok_score over seeds 0-2; no early stopping
    plain-tune    as Ray's docs show it: OptunaSearch (TPE), ASHAScheduler(metric="val_acc",
                  mode="max") with its defaults (time_attr training_iteration: one report per
                  eval, grace 1, reduction 4, max_t 100), one seed per trial; answer:
                  get_best_result(metric="val_acc", mode="max") (the last reported val_acc)
    groktune      the default sweep: TPE told the mean grok_score over seeds 0-2, ASHA on
                  grok_score (grace 60, reduction 3, time in steps, rungs kept past max_t), then
                  the verification stage (top 3 configs on seeds 3-4, its compute counted);
                  answer: the best verified config that holds, else the best verified one

Compute is summed optimizer steps (CPU seconds too: each run's recorded CPU time, pro rata to the
steps a search used; the pool was trained on a 16-core machine, so they are that machine's). The
target is a judged median within 10 % of the best config's in the space; "compute to target" is
the median over search seeds of the compute at which a strategy's answer first met it (a search
that never did counts as its whole budget x 2, and is counted in the "reached" column).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from groktune.events import first_event  # noqa: E402
from orchestrator.config.experiment import load_config  # noqa: E402
from groktune.space import PER_VALUE, Dist  # noqa: E402
from orchestrator.sweep.objective import scores_for_curve  # noqa: E402

POOLS = ROOT / "benchmarks" / "pools"
POOL = POOLS / "grid.parquet"
KEYS = ["p:optim.lr", "p:optim.weight_decay", "p:optim.warmup_steps", "p:train.batch_size"]
SEARCH_SEEDS, VERIFY_SEEDS, JUDGE_SEEDS = [0, 1, 2], [3, 4], [5, 6, 7, 8, 9]
FASTEST_JUDGE = [10, 11, 12, 13, 14]  # the fastest pools have no spare seeds for verification
BUDGET, TARGET, PATIENCE, CHANCE = 300, 0.95, 3, 1 / 97
STRATEGIES = ("random+fifo", "tpe+fifo", "plain-tune", "groktune")


@dataclass
class Run:
    steps: np.ndarray
    val_acc: np.ndarray
    score: np.ndarray
    event: int | None
    end: int
    cpu_s: float


class Pool:
    """The tabular benchmark: (config, seed) -> the recorded run."""

    def __init__(self, frame: pd.DataFrame, keys: list[str] = KEYS, judge: list[int] = JUDGE_SEEDS,
                 verify: list[int] = VERIFY_SEEDS, space: dict[str, Dist] | None = None):
        self.keys, self.verify_seeds, self.space = keys, verify, space
        self.points = frame.groupby("config")[keys].first().sort_index()
        self.runs: dict[tuple[int, int], Run] = {}
        for (c, s), g in frame.groupby(["config", "seed"]):
            g = g.sort_values("step")
            records = g.to_dict("records")
            score = np.array(scores_for_curve(records, TARGET, BUDGET, chance=CHANCE, patience=PATIENCE))
            event = first_event(g["step"], g["val_acc"], threshold=TARGET, patience=PATIENCE)
            self.runs[(int(c), int(s))] = Run(g["step"].to_numpy(), g["val_acc"].to_numpy(), score, event,
                                              int(g["step"].iloc[-1]), float(g["cpu_s"].iloc[0]))
        self.judged = {c: self.median(c, judge) for c in self.points.index}
        self.coords = self._coords() if space else None

    def distributions(self) -> dict:
        """Optuna distributions: the grid's values, or the searched space's own ranges."""
        import optuna  # deferred: only the TPE strategies need it

        D = optuna.distributions
        if self.space is None:
            return {k: D.CategoricalDistribution(sorted(set(self.points[k].tolist()))) for k in self.keys}
        out = {}
        for key, d in self.space.items():
            if d.kind in ("choice", "grid"):
                out[key] = D.CategoricalDistribution(list(d.values))
            elif d.kind in PER_VALUE:
                out[key] = D.FloatDistribution(0.0, 1.0)
            else:
                out[key] = D.FloatDistribution(d.low, d.high, log=d.log)
        return out

    def _coords(self) -> pd.DataFrame:
        """Each pool config as the searcher sees it: choices as values, ranges in [0, 1]
        (log ranges on a log scale, per-value ranges as the position in their range)."""
        rows = {}
        for c, point in self.points.iterrows():
            row = {}
            for key, d in self.space.items():
                v = point[f"p:{key}"]
                if d.kind in ("choice", "grid"):
                    row[key] = v
                    continue
                low, high = d.range_for(point[f"p:{d.given}"]) if d.kind in PER_VALUE else (d.low, d.high)
                row[key] = (math.log(v / low) / math.log(high / low)) if d.log else (v - low) / (high - low)
            rows[c] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    def config_of(self, params: dict) -> int:
        """The pool config a searcher's point stands for: the grid point itself, or (a sampled
        pool) the nearest one: one per differing choice plus the distance in [0, 1] per range."""
        if self.space is None:
            match = self.points
            for k in self.keys:
                match = match[np.isclose(match[k].astype(float), float(params[k]))]
            return int(match.index[0])
        cost = pd.Series(0.0, index=self.coords.index)
        for key, d in self.space.items():
            col = self.coords[key]
            if d.kind in ("choice", "grid"):
                cost += (col != params[key]).astype(float)
            else:
                x = params[key]
                if d.kind not in PER_VALUE:
                    x = (math.log(x / d.low) / math.log(d.high / d.low)) if d.log else (x - d.low) / (d.high - d.low)
                cost += (col.astype(float) - x).abs()
        return int(cost.idxmin())

    def median(self, config: int, seeds: list[int]) -> float:
        steps = [self.runs[(config, s)].event for s in seeds]
        return float(np.median([math.inf if e is None else e for e in steps]))


class Ledger:
    """Compute spent so far and the answer after each trial: [(steps, cpu_s, judged answer)]."""

    def __init__(self, pool: Pool):
        self.pool, self.steps, self.cpu, self.trace = pool, 0, 0.0, []

    def spend(self, run: Run, reached: int) -> None:
        self.steps += reached
        self.cpu += run.cpu_s * reached / max(run.end, 1)

    def answer(self, config: int | None) -> None:
        judged = self.pool.judged[config] if config is not None else math.inf
        self.trace.append((self.steps, self.cpu, min(judged, 2 * BUDGET)))


def play(run: Run, scheduler, trial_id: str, metric: str, time_attr: str) -> int:
    """Feed one run's evals to a Ray scheduler until it stops it or the run ends; return the last
    step reached."""
    from ray.tune.schedulers import TrialScheduler  # deferred: Ray, only to replay

    if scheduler is None:
        return run.end
    trial = _Trial(trial_id)
    scheduler.on_trial_add(None, trial)
    values = {"grok_score": run.score, "val_acc": run.val_acc}[metric]
    for i, (step, value) in enumerate(zip(run.steps, values)):
        result = {"step": int(step), "training_iteration": i + 1, metric: float(value)}
        if step >= run.end:
            scheduler.on_trial_complete(None, trial, result)
            return int(step)
        if scheduler.on_trial_result(None, trial, result) == TrialScheduler.STOP:
            return int(step)
    return run.end


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def search(pool: Pool, strategy: str, seed: int, budget_steps: int) -> Ledger:
    """One search under `strategy` with `seed`, until budget_steps are spent."""
    import optuna  # deferred: as above
    from ray.tune.schedulers import AsyncHyperBandScheduler  # deferred: Ray, only to replay

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ledger, rng = Ledger(pool), random.Random(seed)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed)) if "tpe" in strategy \
        or strategy in ("plain-tune", "groktune") else None
    if strategy == "groktune":
        sched = AsyncHyperBandScheduler(time_attr="step", metric="grok_score", mode="min", max_t=BUDGET,
                                        grace_period=60, reduction_factor=3, stop_last_trials=False)
    elif strategy == "plain-tune":
        sched = AsyncHyperBandScheduler(metric="val_acc", mode="max")  # ASHAScheduler's defaults
    else:
        sched = None
    seen: dict[int, list] = {}  # config -> [(seed, steps to target or None, last val_acc)]
    n = 0
    while ledger.steps < budget_steps:
        if study is None:
            config = rng.choice(list(pool.points.index))
            trial = None
        else:
            trial = study.ask(pool.distributions())
            config = pool.config_of(trial.params)
        seeds = [0] if strategy == "plain-tune" else SEARCH_SEEDS
        scores = []
        for s in seeds:
            run = pool.runs[(config, s)]
            metric = "val_acc" if strategy == "plain-tune" else "grok_score"
            reached = play(run, sched, f"{n}-{s}", metric, "step")
            ledger.spend(run, reached)
            i = int(np.searchsorted(run.steps, reached))
            finished = reached >= run.end
            seen.setdefault(config, []).append((s, run.event if finished else None, float(run.val_acc[i]),
                                                float(run.score[i]), finished))
            scores.append(float(run.score[i]))
        n += 1
        if trial is not None:
            value = float(np.mean(scores)) if strategy != "plain-tune" else -seen[config][-1][2]
            study.tell(trial, value)
        ledger.answer(_best(seen, strategy))
    if strategy == "groktune" and pool.verify_seeds:
        _verify(pool, seen, ledger)
    return ledger


def _best(seen: dict, strategy: str) -> int | None:
    """The config the strategy would report now."""
    if not seen:
        return None
    if strategy == "plain-tune":  # get_best_result(metric="val_acc", mode="max"): last reported value
        return max(seen, key=lambda c: max(v for _, _, v, _, _ in seen[c]))
    return min(seen, key=lambda c: _search_median(seen[c]))


def _search_median(rows: list) -> tuple:
    steps = [math.inf if e is None else e for _, e, _, _, _ in rows]
    return float(np.median(steps)), float(np.mean([sc for *_, sc, _ in rows]))


def _verify(pool: Pool, seen: dict, ledger: Ledger, top: int = 3) -> None:
    """The verification stage: the top configs on the fresh seeds 3-4, compute counted."""
    ranked = sorted(seen, key=lambda c: _search_median(seen[c]))[:top]
    results = []
    for c in ranked:
        for s in pool.verify_seeds:
            run = pool.runs[(c, s)]
            ledger.spend(run, run.end)
        search = _search_median(seen[c])[0]
        verified = pool.median(c, pool.verify_seeds)
        holds = math.isfinite(verified) and verified <= math.ceil(search * 1.25 / 10) * 10
        results.append((not holds, verified, c))
    ledger.answer(min(results)[2] if results else None)


def run_all(pool: Pool, seeds: int, budget_steps: int) -> pd.DataFrame:
    rows = []
    for strategy in STRATEGIES:
        for seed in range(seeds):
            ledger = search(pool, strategy, seed, budget_steps)
            for steps, cpu, judged in ledger.trace:
                rows.append({"strategy": strategy, "seed": seed, "steps": steps, "cpu_s": cpu, "judged": judged})
    return pd.DataFrame(rows)


def to_target(trace: pd.DataFrame, target: float, budget_steps: int) -> pd.DataFrame:
    """Per strategy and seed: compute (steps, cpu) at which the answer first met the target."""
    rows = []
    for (strategy, seed), g in trace.groupby(["strategy", "seed"]):
        hit = g[g["judged"] <= target]
        rows.append({"strategy": strategy, "seed": seed, "reached": len(hit) > 0,
                     "steps": hit["steps"].iloc[0] if len(hit) else 2 * budget_steps,
                     "cpu_s": hit["cpu_s"].iloc[0] if len(hit) else np.nan,
                     "final_judged": g["judged"].iloc[-1], "final_steps": g["steps"].iloc[-1]})
    return pd.DataFrame(rows)


def regret_figure(trace: pd.DataFrame, best: float, path: Path, budget_steps: int, title: str = "grid space") -> None:
    import matplotlib  # deferred: only when a figure is asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: as above

    grid = np.linspace(0, budget_steps * 1.1, 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, g in trace.groupby("strategy"):
        curves = []
        for _, s in g.groupby("seed"):
            idx = np.searchsorted(s["steps"].to_numpy(), grid, side="right") - 1
            vals = np.where(idx >= 0, s["judged"].to_numpy()[np.clip(idx, 0, None)], 2 * BUDGET)
            curves.append(vals - best)
        ax.plot(grid, np.median(curves, axis=0), label=strategy)
    ax.set_xlabel("compute spent (summed optimizer steps)")
    ax.set_ylabel("regret: judged median steps to 95 % - best in space")
    ax.set_title(f"Search efficiency, {title} (median over search seeds)")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def load_pool(space: str) -> Pool:
    """The grid pool, or the two pools sampled from configs/fastest_modmul97_methods.yaml's space."""
    if space == "grid":
        return Pool(pd.read_parquet(POOL))
    frames = []
    for offset, name in enumerate(("fastest", "fastest-1")):
        f = pd.read_parquet(POOLS / f"{name}.parquet")
        frames.append(f.assign(config=f["config"] + 1000 * offset))
    frame = pd.concat(frames, ignore_index=True)
    searched = load_config(ROOT / "configs" / "fastest_modmul97_methods.yaml").search.params
    keys = [f"p:{k}" for k in searched]
    return Pool(frame, keys, judge=FASTEST_JUDGE, verify=[], space=searched)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10 search seeds on the grid space")
    p.add_argument("--search-seeds", type=int, default=10, help="search seeds per strategy (--quick: 10)")
    p.add_argument("--budget", type=int, default=48 * BUDGET, help="summed optimizer steps per search")
    p.add_argument("--space", choices=["grid", "fastest"], default="grid",
                   help="grid: the 48-point tabular space; fastest: configs/fastest_modmul97_methods.yaml's space, "
                        "replayed on 100 configs sampled from it (nearest pool config to a searcher's point)")
    p.add_argument("--figure", type=Path, help="write the regret curves (PNG) here")
    args = p.parse_args(argv)
    if args.quick:
        args.search_seeds = min(args.search_seeds, 10)
    pool = load_pool(args.space)
    best = min(pool.judged.values())
    target = math.floor(best * 1.1)
    print(f"{args.space} space: {len(pool.points)} configs; best judged median {best:g} steps; target <= {target} "
          f"(judged on 5 fresh seeds); budget {args.budget} steps per search, {args.search_seeds} search seeds")
    trace = run_all(pool, args.search_seeds, args.budget)
    hits = to_target(trace, target, args.budget)
    table = hits.groupby("strategy").agg(
        reached=("reached", "mean"), steps_to_target=("steps", "median"), cpu_s_to_target=("cpu_s", "median"),
        final_judged=("final_judged", "median"), final_regret=("final_judged", lambda s: float(np.median(s - best))),
        compute_steps=("final_steps", "median")).reindex(list(STRATEGIES))
    pd.set_option("display.width", 200)
    print(table.round(2).to_string())
    if args.figure:
        regret_figure(trace, best, args.figure, args.budget, f"{args.space} space")
        print(f"regret curves -> {args.figure}")
    ct = table["steps_to_target"]
    print(f"compute to target: groktune {ct['groktune']:.0f}, random {ct['random+fifo']:.0f}, "
          f"plain-tune {ct['plain-tune']:.0f} (median optimizer steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
