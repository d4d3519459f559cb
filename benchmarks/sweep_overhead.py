"""Sweep overhead on local Ray: the share of a trial's wall time spent outside train steps.

    python benchmarks/sweep_overhead.py --steps 300 --trials 4 --concurrency 2 --checkpoint-every 0,20 --reuse-actors 0,1

Runs small real sweeps through `orchestrator.sweep.driver.run_sweep` (what `groktune sweep` runs) on an
embedded local Ray started with num_cpus = concurrency (1 CPU and 1 torch thread per trial, no
dashboard): configs/modmul_grokfast.yaml with train.steps reduced, target_patience 0 (no early
stop), an empty search space (every trial is the same fixed point, so all do the same work) and
the FIFO scheduler (nothing pruned). One sweep per --checkpoint-every value (0 = the config's
train.checkpoint_every), to show what checkpoints cost, and per --reuse-actors value
(search.reuse_actors: a new worker process per trial, or the next trial in a finished one's).

Per trial, a Tune callback in the driver records when its actor was up (on_trial_start) and when
it completed (on_trial_complete); its slot opened when the sweep started (first `concurrency`
trials) or when the trial whose place it took completed, so "slot -> end" includes the previous
actor's teardown and this actor's start-up. Ray's own view is `time_total_s` of its last result;
the trainer's own clock is the `wall_time` of its last eval record.

Train-step and eval time are not timed inside the trials (no timing code in the training loop):
this process builds the same trial config with trials.setup.build_run (1 torch thread, as the
trials) and times `trials.train._train_step`, `_evaluate` and a checkpoint save call by call,
right before and right after the sweeps; the medians of both sets pooled are multiplied by the
trial's step count and its eval count (trials.evalplan.eval_steps). "Other" is the wall time
minus both. The trials run `concurrency` at a time on shared cores, this calibration alone, so
contention shows up as "other"; the in-sweep step cost fitted from the trials' own records
(wall_time against step between evals without a checkpoint) is printed beside it as a check.

CPU seconds from /proc (Linux) say where the cores went while Tuner.fit ran: each trial's worker
process (read when the trial completes; the adapter's cpu_time_s is the part inside the
trainable, the rest is actor start-up), this driver and Ray's services (raylet, gcs_server,
agents), and the rest of the machine (other users; on a quiet machine it should be near 0).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from orchestrator.config.experiment import ExperimentConfig, config_from_dict, config_to_dict, load_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proc_cpu import machine_busy, process_cpu, read_stat  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "modmul_grokfast.yaml"


# --- pure arithmetic (tests/benchmarks/test_sweep_overhead.py) -------------------------------


def train_step_seconds(steps: int, n_evals: int, step_s: float, step_at_eval_s: float) -> float:
    """Time of a trial's optimizer steps: steps at an eval also compute gradient norms."""
    return (steps - n_evals) * step_s + n_evals * step_at_eval_s


def split_wall(wall: float, train_s: float, evals_s: float) -> dict[str, float]:
    """Split a trial's wall time into train steps | evals | other; share outside train steps."""
    return {"wall": wall, "train": train_s, "evals": evals_s, "other": wall - train_s - evals_s,
            "outside": (wall - train_s) / wall if wall > 0 else float("nan")}


def slot_starts(fit_start: float, starts: dict[str, float], ends: dict[str, float],
                concurrency: int) -> dict[str, float]:
    """When each trial's slot opened: the sweep's start for the first `concurrency` trials to
    start, else the end of the trial whose place it took (the (i - concurrency)-th to end)."""
    order = sorted(starts, key=starts.get)
    done = sorted(ends.values())
    out = {}
    for i, tid in enumerate(order):
        opened = fit_start if i < concurrency or i - concurrency >= len(done) else done[i - concurrency]
        out[tid] = min(opened, starts[tid])
    return out


def fit_step_cost(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares (seconds per step, fixed seconds per interval) of (steps, seconds) pairs."""
    n = len(points)
    if n < 2:
        return float("nan"), float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return float("nan"), float("nan")
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return slope, my - slope * mx


# --- in-process cost of steps, evals and checkpoint saves ------------------------------------


KINDS = ("build", "step", "step_at_eval", "eval", "save")


@dataclass
class Costs:
    """Seconds per call: build_run, train steps (plain / at an eval), evals, checkpoint saves."""

    build: list[float] = field(default_factory=list)
    step: list[float] = field(default_factory=list)
    step_at_eval: list[float] = field(default_factory=list)
    eval: list[float] = field(default_factory=list)
    save: list[float] = field(default_factory=list)

    def extend(self, other: "Costs") -> "Costs":
        return Costs(*(getattr(self, k) + getattr(other, k) for k in KINDS))

    def medians(self) -> dict[str, float]:
        return {k: statistics.median(getattr(self, k)) for k in KINDS}


def measure_costs(cfg: ExperimentConfig, n_steps: int, eval_every: int) -> Costs:
    """Time _train_step / _evaluate / checkpoint save on the trial's own config (1 thread)."""
    from trials.checkpoint import save_checkpoint
    from trials.evalplan import StopRule
    from trials.optim import lr_multiplier
    from trials.setup import build_run
    from trials.train import Progress, _batch_size, _evaluate, _state, _train_step

    t = time.perf_counter()
    run = build_run(cfg)  # sets torch threads to train.num_threads, as in the trial
    tc = cfg.train
    rule, prog, costs = StopRule(tc.target_val_acc, tc.target_patience), Progress(), Costs([time.perf_counter() - t])
    sync = torch.cuda.synchronize if run.device.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as tmp:
        for i in range(eval_every + n_steps):  # the first eval_every steps (one eval) warm up
            keep, at_eval = i >= eval_every, (i + 1) % eval_every == 0
            lr = cfg.optim.lr * lr_multiplier(prog.step, cfg.optim, tc.steps)
            run.optimizer.set_lr(lr)
            t = time.perf_counter()
            stats = _train_step(run, prog.step, want_norms=at_eval)
            sync()
            dt = time.perf_counter() - t
            prog.step, prog.examples = prog.step + 1, prog.examples + _batch_size(run)
            if keep:
                (costs.step_at_eval if at_eval else costs.step).append(dt)
            if not at_eval:
                continue
            t = time.perf_counter()
            _evaluate(run, prog, lr, stats, float(run.data.n_train), 0.0)
            t2 = time.perf_counter()
            save_checkpoint(_state(run, rule, prog), tmp)
            t3 = time.perf_counter()
            if keep:
                costs.eval.append(t2 - t)
                costs.save.append(t3 - t2)
    return costs


# --- the sweep config -----------------------------------------------------------------------


def sweep_config(path: Path, steps: int, trials: int, concurrency: int, checkpoint_every: int,
                 reuse_actors: bool = False) -> ExperimentConfig:
    data = config_to_dict(load_config(path))
    data["name"] = f"sweep_overhead_ckpt{checkpoint_every}" + ("_reuse" if reuse_actors else "")
    data["train"].update(steps=steps, target_patience=0, early_stop_patience=0)
    data["search"] = {"space": {}, "algorithm": "random", "scheduler": "fifo", "num_samples": trials,
                      "max_concurrent": concurrency, "cpus_per_trial": 1, "seeds": [data["seed"]],
                      "max_failures": 0, "checkpoint_every": checkpoint_every, "reuse_actors": reuse_actors}
    return config_from_dict(data)


def trial_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """Exactly what the trainable builds for the (empty) sampled point."""
    from orchestrator.search.algos import checkpoint_every
    from orchestrator.config.trial import maker_for

    return maker_for(cfg, {"train.checkpoint_every": checkpoint_every(cfg.search, cfg.train.checkpoint_every)})({})


def sweep_label(cfg: ExperimentConfig) -> str:
    """The tables' first column: checkpoint_every, and whether trials reuse workers."""
    every = trial_config(cfg).train.checkpoint_every
    return f"{every}, reused workers" if cfg.search.reuse_actors else f"{every}"


# --- the sweep ------------------------------------------------------------------------------


def make_clock():
    from ray.tune import Callback

    class TrialClock(Callback):
        """Driver-side timestamps (perf_counter): sweep start/end, each trial's actor up and end;
        CPU seconds of each trial's worker process (at its end), of the driver and Ray's services
        during the sweep, and of the whole machine."""

        def __init__(self):
            self.fit_start = self.fit_end = self.busy = float("nan")
            self.starts: dict[str, float] = {}
            self.ends: dict[str, float] = {}
            self.workers: dict[str, tuple[int, float]] = {}  # trial -> (pid, CPU s of its process)
            self.services: dict[str, float] = {}

        def setup(self, **info):
            self.fit_start, self.cpu0, self.busy0 = time.perf_counter(), time.process_time(), machine_busy()
            self.procs0 = process_cpu(os.getpid())

        def on_trial_start(self, iteration, trials, trial, **info):
            self.starts.setdefault(trial.trial_id, time.perf_counter())

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.ends[trial.trial_id] = time.perf_counter()
            pid = int(trial.last_result.get("pid", -1))
            self.workers[trial.trial_id] = (pid, read_stat(pid)[2])  # before Ray tears the actor down

        def on_experiment_end(self, trials, **info):
            self.fit_end, self.busy = time.perf_counter(), machine_busy() - self.busy0
            workers = {pid for pid, _ in self.workers.values()}
            self.services = {"driver": time.process_time() - self.cpu0}
            for pid, (name, cpu) in process_cpu(os.getpid()).items():
                if pid not in workers:
                    key = "idle workers" if name.startswith("ray::IDLE") else name
                    self.services[key] = self.services.get(key, 0.0) + cpu - self.procs0.get(pid, (name, 0.0))[1]

    return TrialClock()


def run_one_sweep(cfg: ExperimentConfig, storage: Path, concurrency: int) -> dict:
    from orchestrator.session.start import start_ray
    from orchestrator.sweep.driver import run_sweep

    clock = make_clock()
    t = time.perf_counter()
    start_ray(num_cpus=concurrency * int(cfg.search.cpus_per_trial))  # run_sweep then finds Ray up
    ray_start = time.perf_counter() - t
    outcome = run_sweep(cfg, storage, cfg.name, callbacks=[clock])
    return {"clock": clock, "path": outcome.path, "ray_start": ray_start, "sweep": outcome.wall_time,
            "fit_start": clock.fit_start, "fit_end": clock.fit_end, "busy": clock.busy,
            "services": clock.services, "workers": {tid: cpu for tid, (_, cpu) in clock.workers.items()}}


def trial_facts(path: Path, trial_id: str) -> dict:
    """From the trial's result.json: Ray's clock, the trainer's clock, checkpoints, the step fit."""
    from orchestrator.sweep.results import read_results

    rows = read_results(path / f"trial_{trial_id}")
    evals = [r for r in rows if "status" not in r]  # the closing report repeats the last eval
    # (steps, seconds) from one eval record to the next: report a, steps, eval b; no checkpoint at a
    clean = [(b["step"] - a["step"], b["wall_time"] - a["wall_time"])
             for a, b in zip(evals, evals[1:]) if not a.get("checkpoint_dir_name")]
    slope, fixed = fit_step_cost(clean)
    return {"ray_total": max(r["time_total_s"] for r in rows), "trainer": evals[-1]["wall_time"],
            "final_step": evals[-1]["step"], "reports": len(rows), "cpu": rows[-1]["cpu_time_s"],
            "checkpoints": sum(1 for r in rows if r.get("checkpoint_dir_name")),
            "fit_step": slope, "fit_fixed": fixed}


# --- tables ---------------------------------------------------------------------------------


def trial_rows(sweep: dict, tcfg: ExperimentConfig, med: dict[str, float], concurrency: int) -> list[dict]:
    """One dict per trial (in order of completion) with the wall-time split and its parts."""
    from trials.evalplan import eval_steps

    clock = sweep["clock"]
    slots = slot_starts(clock.fit_start, clock.starts, clock.ends, concurrency)
    rows = []
    for tid in sorted(clock.ends, key=clock.ends.get):
        facts = trial_facts(sweep["path"], tid)
        steps = facts["final_step"]
        n_evals = len(eval_steps(tcfg.train, steps))
        train_s = train_step_seconds(steps, n_evals, med["step"], med["step_at_eval"])
        split = split_wall(clock.ends[tid] - slots[tid], train_s, n_evals * med["eval"])
        rows.append({"trial": tid, **facts, **split, "evals_n": n_evals,
                     "startup_cpu": sweep["workers"].get(tid, float("nan")) - facts["cpu"],
                     "up_wall": clock.ends[tid] - clock.starts[tid],
                     "startup": clock.starts[tid] - slots[tid],
                     "in_loop": facts["trainer"] - split["train"] - split["evals"],
                     "saves_s": facts["checkpoints"] * med["save"]})
    return rows


def median_row(rows: list[dict]) -> dict:
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float))]
    return {"trial": f"median of {len(rows)}", **{k: statistics.median(r[k] for r in rows) for k in keys}}


def print_tables(sweeps: list[dict], all_rows: list[list[dict]], med: dict[str, float], concurrency: int) -> None:
    print("| checkpoint_every, workers | trial | wall, slot → end (s) | wall, actor up → end (s) | Ray time_total_s "
          "| trainer's clock (s) | train steps (s) | evals, trainer (s) | other (s) | outside train steps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for sweep, rows in zip(sweeps, all_rows):
        for r in rows + [median_row(rows)]:
            print(f"| {sweep['every']} | {r['trial']} | {r['wall']:.1f} | {r['up_wall']:.1f} | {r['ray_total']:.1f} "
                  f"| {r['trainer']:.1f} | {r['train']:.1f} | {r['evals']:.1f} | {r['other']:.1f} "
                  f"| {100 * r['outside']:.1f} % |")
    print("\nWhere \"other\" goes (medians over trials, seconds unless noted):\n")
    print("| checkpoint_every, workers | other | slot → actor up (actor start, imports; previous actor's teardown) "
          "| actor up → end beyond Ray's time_total_s | Ray's clock beyond the trainer's (config, data, model, "
          "last reports) | trainer's clock beyond steps + evals (reports, checkpoints, waiting for a core) "
          "| reports / checkpoints | checkpoint saves, in-process estimate | trial CPU in the trainable (share of "
          "Ray's clock) | trial CPU before the trainable (actor start-up) | step, fitted in the sweep (ms) "
          "| fixed per eval interval, fitted (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for sweep, rows in zip(sweeps, all_rows):
        m = median_row(rows)
        print(f"| {sweep['every']} | {m['other']:.1f} | {m['startup']:.1f} | {m['up_wall'] - m['ray_total']:.1f} "
              f"| {m['ray_total'] - m['trainer']:.1f} | {m['in_loop']:.1f} "
              f"| {m['reports']:.0f} / {m['checkpoints']:.0f} | {m['saves_s']:.2f} "
              f"| {m['cpu']:.1f} ({100 * m['cpu'] / m['ray_total']:.0f} %) | {m['startup_cpu']:.1f} "
              f"| {1e3 * m['fit_step']:.1f} | {1e3 * m['fit_fixed']:.0f} |")
    print("\nThe sweep as a whole. CPU seconds during Tuner.fit: the whole machine (share of cores × time); the "
          "trials' worker processes at their end (in brackets: inside the trainable, the adapter's cpu_time_s; the "
          "rest is actor start-up); this driver and Ray's services; the rest (other users of the machine, actor "
          "teardown):\n")
    print("| checkpoint_every, workers | trials × steps | concurrency | Ray start (s) | Tuner.fit (s) | run_sweep (s) "
          "| sweep wall (s) | ideal: Σ train steps / concurrency (s) | ideal / wall | machine CPU "
          "| trial workers' CPU (in the trainable) | driver + Ray services' CPU (largest) | rest |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for sweep, rows in zip(sweeps, all_rows):
        wall, fit, busy = sweep["ray_start"] + sweep["sweep"], sweep["fit_end"] - sweep["fit_start"], sweep["busy"]
        ideal = sum(r["train"] for r in rows) / concurrency
        workers, trainables = sum(sweep["workers"].values()), sum(r["cpu"] for r in rows)
        services = sum(sweep["services"].values())
        top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(sweep["services"].items(), key=lambda kv: -kv[1])[:3])
        print(f"| {sweep['every']} | {len(rows)} × {rows[0]['final_step']} | {concurrency} "
              f"| {sweep['ray_start']:.1f} | {fit:.1f} | {sweep['sweep']:.1f} | {wall:.1f} | {ideal:.1f} "
              f"| {100 * ideal / wall:.1f} % | {busy:.1f} ({100 * busy / (fit * (os.cpu_count() or 1)):.0f} %) "
              f"| {workers:.1f} ({trainables:.1f}) | {services:.1f} ({top}) | {busy - workers - services:.1f} |")


def print_header(tcfg: ExperimentConfig, before: Costs, after: Costs, loads: tuple[float, float]) -> None:
    b, a, pooled = before.medians(), after.medians(), before.extend(after).medians()
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {tcfg.train.num_threads} torch thread per trial and in the calibration; "
          f"load average (1 min) {loads[0]:.2f} before, {loads[1]:.2f} after")
    print(f"build_run (data, model, optimizer): {b['build']:.2f} s before the sweeps (its first call in this "
          f"process, as in a trial), {a['build']:.2f} s after")
    print("in-process medians (ms), before / after the sweeps / pooled (used): " + "; ".join(
        f"{k} {1e3 * b[k]:.1f} / {1e3 * a[k]:.1f} / {1e3 * pooled[k]:.1f}" for k in KINDS[1:]) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--steps", type=int, default=300, help="train.steps of every trial")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=2, help="Ray num_cpus (1 CPU per trial)")
    ap.add_argument("--checkpoint-every", default="0",
                    help="comma list, one sweep each; 0 = the config's train.checkpoint_every")
    ap.add_argument("--reuse-actors", default="0",
                    help="comma list of 0/1, one sweep each: search.reuse_actors (1: the next trial runs in a "
                         "finished trial's worker; the per-worker CPU columns then add up over its trials)")
    ap.add_argument("--calib-steps", type=int, default=40, help="timed train steps before and after the sweeps")
    ap.add_argument("--calib-eval-every", type=int, default=8, help="an eval and a checkpoint save every N of them")
    ap.add_argument("--storage", type=Path, help="keep the experiment folders here (default: a temp dir, removed)")
    args = ap.parse_args()
    cfgs = [sweep_config(args.config, args.steps, args.trials, args.concurrency, int(ck), reuse == "1")
            for reuse in args.reuse_actors.split(",") for ck in args.checkpoint_every.split(",")]
    tcfg = trial_config(cfgs[0])
    storage = args.storage or Path(tempfile.mkdtemp(prefix="sweep-overhead-"))
    try:
        load_before = os.getloadavg()[0]
        before = measure_costs(tcfg, args.calib_steps, args.calib_eval_every)
        sweeps = [{**run_one_sweep(cfg, storage, args.concurrency), "every": sweep_label(cfg)} for cfg in cfgs]
        after = measure_costs(tcfg, args.calib_steps, args.calib_eval_every)
        loads = (load_before, os.getloadavg()[0])
        med = before.extend(after).medians()
        all_rows = [trial_rows(s, tcfg, med, args.concurrency) for s in sweeps]
    finally:
        if args.storage is None:
            shutil.rmtree(storage, ignore_errors=True)
    print_header(tcfg, before, after, loads)
    print_tables(sweeps, all_rows, med, args.concurrency)


if __name__ == "__main__":
    main()
