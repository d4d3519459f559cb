"""How much of a sweep's CPU time trains? groktune's sweeps against their floor and plain Ray Tune.

    python benchmarks/sweep_throughput.py                       # the full run (~25 min on an idle 2-core machine)
    python benchmarks/sweep_throughput.py --trials 10 --demo-set search.num_samples=2   # a smoke run

One run, side by side, every sweep a subprocess (its own Ray, started and stopped in it):

1. the demo sweep: `groktune sweep configs/demo_sweep.yaml` (ASHA + TPE, 16 trials). Efficiency =
   Σ trial wall time / (the whole process's wall time × CPUs), Ray's start included; a trial's
   wall time is its trainer's own clock (`wall_time` of its last record).
2. N tiny trials (x+y mod 23, one-layer d=32 transformer, --steps optimizer steps, about 1 s
   each on a 2-core CPU; TPE over lr and weight decay; FIFO; the sweep defaults otherwise, so
   max_failures 2 and checkpoints as groktune decides) through `groktune sweep`. Floor = Σ trial
   compute / CPUs, a trial's compute being its trainer's clock; also the floor from the same
   trial timed alone in this process (no Ray, no neighbour), and the driver's peak RSS
   (psutil, sampled every 0.1 s).
3. the same N trials through plain Ray Tune + OptunaSearch as Ray's docs write it
   (benchmarks/plain_tune.py), with the same trainer: wall time and the ratio to groktune's.
   With --demo-packs 4,16 the demo also runs with search.pack K (TPE asks K points at a time, split
   into packs by structure: the demo's space holds batch size and train fraction, so most packs
   hold one point); its efficiency is then Σ pack wall time / (wall × CPUs), a pack's wall time
   being its trainer's clock at its last point's last record.
4. with --packs 1,4,16: the same N trials through `groktune sweep` with random search and
   search.pack K (K points trained as one population per Ray trial, orchestrator.sweep.packing), each
   against the true floor N × (one trial alone) / CPUs (a packed point's wall_time is its pack's
   clock, so Σ trial wall would count a pack K times); with --pack-vectorize loop,vmap each K
   runs in both of the population's modes.

Prints a Markdown table (and writes it with the raw numbers as JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo_sweep.yaml"


def tiny_experiment(trials: int, steps: int) -> dict:
    """The many-small-trials sweep: ~1 s trials of x+y mod 23 (configs/demo_sweep.yaml's model)."""
    return {
        "name": "throughput",
        "seed": 0,
        "task": {"name": "modular", "op": "x+y", "p": 23, "train_fraction": 0.5},
        "model": {"n_layers": 1, "d_model": 32, "n_heads": 4, "d_ff": 128},
        "optim": {"name": "adamw", "lr": 3e-3, "weight_decay": 1.0, "schedule": "constant", "warmup_steps": 10},
        "train": {"steps": steps, "batch_size": 128, "target_val_acc": 0.99, "target_patience": 3},
        "search": {
            "space": {"optim.lr": {"loguniform": [1e-3, 2e-2]}, "optim.weight_decay": {"uniform": [0.0, 2.0]}},
            "algorithm": "tpe", "scheduler": "fifo", "metric": "val_acc", "mode": "max",
            "num_samples": trials, "cpus_per_trial": 1,
        },
    }


def run_driver(cmd: list[str], log: Path) -> tuple[float, float, int, float]:
    """Run a sweep driver to its end; (wall s, peak RSS of the driver process in MB, exit code,
    the driver process's own CPU seconds, last sampled before it exits)."""
    peak, cpu = [0.0], [float("nan")]
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            ps = psutil.Process(proc.pid)
            while not done.wait(0.1):
                try:
                    peak[0] = max(peak[0], ps.memory_info().rss / 2**20)
                    times = ps.cpu_times()
                    cpu[0] = times.user + times.system
                except psutil.Error:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    return wall, peak[0], code, cpu[0]


def groktune_trial_seconds(path: Path) -> list[float]:
    """Each trial's trainer clock at its last record, from the sweep's trials.parquet."""
    import pandas as pd

    trials = pd.read_parquet(path / "trials.parquet")
    return [float(w) for w in trials["wall_time"].dropna()]


def pack_seconds(path: Path) -> list[float]:
    """Each pack's trainer clock at its end: the largest wall_time among its points (a point's
    trial id is "<pack trial id>_p<member>", orchestrator.sweep.packing.point_trial_id)."""
    import pandas as pd

    trials = pd.read_parquet(path / "trials.parquet").dropna(subset=["wall_time"])
    return [float(w) for w in trials.groupby(trials["trial_id"].str.rsplit("_p", n=1).str[0])["wall_time"].max()]


def plain_trial_seconds(path: Path) -> list[float]:
    """Each trial's trainer clock at its last record, from Ray's result.json files."""
    out = []
    for result in path.glob("*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        walls = [r["wall_time"] for r in lines if "wall_time" in r]
        if walls:
            out.append(float(walls[-1]))
    return out


def alone_seconds(config: Path, repeats: int) -> float:
    """Median seconds of one trial's train() in this process, 1 thread, after a warm-up run."""
    import dataclasses

    import torch

    from orchestrator.config.experiment import load_config, with_values
    from trials.train import train

    torch.set_num_threads(1)
    cfg = with_values(dataclasses.replace(load_config(config), search=None), {"train.num_threads": 1})
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        train(cfg)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def groktune_cmd(config: Path, storage: Path, name: str, overrides: list[str]) -> list[str]:
    sets = [arg for kv in overrides for arg in ("--set", kv)]
    return [sys.executable, "-m", "orchestrator.cli.main", "sweep", str(config), "--storage", str(storage),
            "--name", name, *sets]


def measure(args, work: Path) -> dict:
    """Run the three sweeps (as asked) and return their numbers."""
    cpus = os.cpu_count() or 1
    out: dict = {"cpus": cpus, "load_before": os.getloadavg()}
    if not args.no_demo:
        wall, rss, code, cpu_s = run_driver(groktune_cmd(DEMO, work, "demo", args.demo_set), work / "demo.log")
        trial_s = groktune_trial_seconds(work / "demo")
        out["demo"] = {"wall": wall, "rss_mb": rss, "exit": code, "driver_cpu_s": cpu_s, "trials": len(trial_s), "trial_s": sum(trial_s),
                       "efficiency": sum(trial_s) / (wall * cpus)}
    for k in args.demo_packs:
        name = f"demo_pack{k}"
        wall, rss, code, cpu_s = run_driver(groktune_cmd(DEMO, work, name, [*args.demo_set, f"search.pack={k}"]),
                                            work / f"{name}.log")
        done = (work / name / "trials.parquet").exists()
        pack_s = pack_seconds(work / name) if done else []
        out.setdefault("demo_packs", {})[k] = {
            "wall": wall, "rss_mb": rss, "exit": code, "driver_cpu_s": cpu_s, "packs": len(pack_s),
            "trials": len(groktune_trial_seconds(work / name)) if done else 0, "trial_s": sum(pack_s),
            "efficiency": sum(pack_s) / (wall * cpus)}
    config = work / "throughput.yaml"
    config.write_text(yaml.safe_dump(tiny_experiment(args.trials, args.steps), sort_keys=False))
    out["alone_s"] = alone_seconds(config, args.repeats)
    wall, rss, code, cpu_s = run_driver(groktune_cmd(config, work, "throughput", args.set), work / "throughput.log")
    trial_s = groktune_trial_seconds(work / "throughput")
    floor = sum(trial_s) / cpus
    out["groktune"] = {"wall": wall, "rss_mb": rss, "exit": code, "driver_cpu_s": cpu_s, "trials": len(trial_s), "trial_s": sum(trial_s),
                       "floor": floor, "floor_alone": out["alone_s"] * args.trials / cpus, "over_floor": wall / floor}
    if not args.no_plain:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "plain_tune.py"), str(config), str(work), "plain"]
        wall, rss, code, cpu_s = run_driver(cmd, work / "plain.log")
        trial_s = plain_trial_seconds(work / "plain")
        out["plain"] = {"wall": wall, "rss_mb": rss, "exit": code, "driver_cpu_s": cpu_s, "trials": len(trial_s), "trial_s": sum(trial_s),
                        "floor": sum(trial_s) / cpus, "over_floor": wall / (sum(trial_s) / cpus),
                        "vs_groktune": wall / out["groktune"]["wall"]}
    for k in args.packs:
        for mode in args.pack_vectorize:
            key = k if mode == "auto" else f"{k}-{mode}"
            name = f"pack{key}"
            sets = [*args.set, "search.algorithm=random", f"search.pack={k}", f"search.population_vectorize={mode}"]
            wall, rss, code, cpu_s = run_driver(groktune_cmd(config, work, name, sets), work / f"{name}.log")
            rows = len(groktune_trial_seconds(work / name)) if (work / name / "trials.parquet").exists() else 0
            floor = out["alone_s"] * args.trials / cpus
            out.setdefault("packs", {})[key] = {"wall": wall, "rss_mb": rss, "exit": code, "driver_cpu_s": cpu_s,
                                                "trials": rows, "floor_alone": floor, "over_floor": wall / floor}
    out["load_after"] = os.getloadavg()
    return out


def table(m: dict, trials: int, steps: int) -> str:
    """The Markdown table of benchmarks/README.md from measure()'s numbers."""
    rows = ["| sweep | trials | process wall (s) | Σ trial wall (s) | floor: Σ trial / CPUs (s) | result | goal | driver peak RSS (MB) | driver CPU (s) |",
            "|---|---|---|---|---|---|---|---|---|"]
    if "demo" in m:
        d = m["demo"]
        rows.append(f"| demo (configs/demo_sweep.yaml, `groktune sweep`) | {d['trials']} | {d['wall']:.1f} | "
                    f"{d['trial_s']:.1f} | {d['trial_s'] / m['cpus']:.1f} | Σ trial / (wall × CPUs) = "
                    f"**{d['efficiency']:.2f}** | ≥ 0.85 | {d['rss_mb']:.0f} | {d['driver_cpu_s']:.0f} |")
    for k, d in m.get("demo_packs", {}).items():
        rows.append(f"| demo, search.pack {k} ({d['packs']} packs) | {d['trials']} | {d['wall']:.1f} | "
                    f"{d['trial_s']:.1f} (packs) | {d['trial_s'] / m['cpus']:.1f} | Σ pack / (wall × CPUs) = "
                    f"**{d['efficiency']:.2f}** | ≥ 0.85 | {d['rss_mb']:.0f} | {d['driver_cpu_s']:.0f} |")
    g = m["groktune"]
    rows.append(f"| {trials} × {steps} steps, `groktune sweep` (TPE, FIFO) | {g['trials']} | {g['wall']:.1f} | "
                f"{g['trial_s']:.1f} | {g['floor']:.1f} (alone: {g['floor_alone']:.1f}) | wall / floor = "
                f"**{g['over_floor']:.2f}** | ≤ 1.10; RSS ≤ 1536 MB | {g['rss_mb']:.0f} | {g['driver_cpu_s']:.0f} |")
    if "plain" in m:
        p = m["plain"]
        rows.append(f"| same, plain Ray Tune + OptunaSearch | {p['trials']} | {p['wall']:.1f} | {p['trial_s']:.1f} | "
                    f"{p['floor']:.1f} | wall / floor = {p['over_floor']:.2f}; plain / groktune = "
                    f"**{p['vs_groktune']:.2f}** | > 1 | {p['rss_mb']:.0f} | {p['driver_cpu_s']:.0f} |")
    for k, p in m.get("packs", {}).items():
        k, _, mode = str(k).partition("-")
        label = f"search.pack {k}" + (f", population_vectorize {mode}" if mode else "")
        rows.append(f"| same, `groktune sweep` (random, FIFO), {label} | {p['trials']} | {p['wall']:.1f} | - | "
                    f"{p['floor_alone']:.1f} (N × alone / CPUs) | wall / floor = **{p['over_floor']:.2f}** | ≤ 1.3 | "
                    f"{p['rss_mb']:.0f} | {p['driver_cpu_s']:.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=500, help="trials of the many-small-trials sweep")
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps per small trial")
    parser.add_argument("--repeats", type=int, default=5, help="timings of one trial alone (the floor's check)")
    parser.add_argument("--demo-set", action="append", default=[], metavar="K=V",
                        help="override the demo config (--set of groktune sweep), e.g. search.num_samples=2")
    parser.add_argument("--set", action="append", default=[], metavar="K=V",
                        help="override the small-trials sweep's config on the groktune side (A/B runs)")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--packs", type=lambda s: [int(x) for x in s.split(",") if x], default=[],
                        help="also run the small trials packed, e.g. 1,4,16 (random search, search.pack K)")
    parser.add_argument("--pack-vectorize", type=lambda s: [x for x in s.split(",") if x], default=["auto"],
                        help="run each --packs K in these search.population_vectorize modes, e.g. loop,vmap "
                             "(auto: loop on a CPU)")
    parser.add_argument("--demo-packs", type=lambda s: [int(x) for x in s.split(",") if x], default=[],
                        help="also run the demo packed, e.g. 4,16 (search.pack K; the demo's own TPE + ASHA)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--keep", type=Path, help="keep the sweep folders here (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="groktune-throughput-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        m = measure(args, work)
    m["runtime_s"] = time.perf_counter() - started
    import ray
    import torch

    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {m['cpus']} CPUs, torch {torch.__version__}, "
          f"ray {ray.__version__}; load average (1 min) {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} "
          f"after; one trial alone: {m['alone_s']:.2f} s; benchmark runtime {m['runtime_s']:.0f} s\n")
    print(table(m, args.trials, args.steps))
    if args.json:
        args.json.write_text(json.dumps(m, indent=1))
    return m


if __name__ == "__main__":
    main()
