"""Population (vectorised seeds) throughput against K separate runs, side by side in one process.

    python benchmarks/population.py --ks 1,4,16 --steps 100                       # CPU
    python benchmarks/population.py --device cuda --ks 1,4,16,64,128 --pack 4,8   # GPU

For each K, K seeds of the config train for --steps optimizer steps: as one
trials.population.train_population call per --vectorize mode (vmap: batched kernels; loop: one
functional_call per member, bitwise equal to separate runs) and as K sequential
trials.train.train calls (the order rotates between repeats; the table shows medians). Throughput is member-steps per
second (K x steps / wall time), including the evals each does. With --evals minimal (the
default) the eval plan is only step 1 and the last step, so the numbers are training
throughput; --evals config keeps the config's dense early plan. On CUDA, --pack P also runs P
separate processes of one trial each on the GPU at once (fractional-GPU packing, as Ray Tune
packs trials with num_gpus=1/P), started together after each has warmed up.
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
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.config.experiment import load_config, with_values  # noqa: E402
from trials.population import train_population  # noqa: E402
from trials.train import train  # noqa: E402


def member_configs(cfg, k: int, steps: int, device: str, threads: int, evals: str, precision: str) -> list:
    """K seeds of cfg with a fixed step budget (no stopping on the target)."""
    values = {"train.steps": steps, "train.target_patience": 0, "train.early_stop_patience": 0,
              "train.device": device, "train.num_threads": threads, "train.checkpoint_every": 10**9}
    if precision:
        values["train.precision"] = precision
    if evals == "minimal":  # evals at step 1 and the last step only
        values.update({"train.eval_dense_until": 0, "train.eval_log_ratio": 1e9, "train.eval_every": steps})
    return [with_values(cfg, {**values, "seed": cfg.seed + i}) for i in range(k)]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_population(cfgs, device: str, vectorize: str, attention: str) -> float:
    sync(device)
    t = time.perf_counter()
    train_population(cfgs, vectorize=vectorize, attention=attention)
    sync(device)
    return time.perf_counter() - t


def time_separate(cfgs, device: str, limit: int) -> float:
    """Wall time of len(cfgs) sequential runs; beyond `limit` runs, extrapolated per run."""
    sync(device)
    t = time.perf_counter()
    for cfg in cfgs[:limit]:
        train(cfg)
    sync(device)
    return (time.perf_counter() - t) * len(cfgs) / min(len(cfgs), limit)


def time_packed(config: str, p: int, args) -> float:
    """Wall time of p one-trial processes sharing the device, started together after warm-up."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--worker", tmp, "--config", config, "--steps", str(args.steps),
               "--device", args.device, "--threads", str(args.threads), "--evals", args.evals,
               "--precision", args.precision]
        procs = [subprocess.Popen([*cmd, "--seed-offset", str(i)], stdout=subprocess.PIPE, text=True)
                 for i in range(p)]
        while len(list(Path(tmp).glob("ready-*"))) < p:
            if any(proc.poll() not in (None, 0) for proc in procs):
                raise RuntimeError("a packed worker failed")
            time.sleep(0.05)
        Path(tmp, "go").touch()
        outs = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    return max(o["end"] for o in outs) - min(o["start"] for o in outs)


def worker(args) -> None:
    """One packed trial: warm up, say ready, wait for go, train, print start/end times."""
    cfg = load_config(args.config)
    cfg = member_configs(with_values(cfg, {"seed": cfg.seed + args.seed_offset}), 1, args.steps, args.device,
                         args.threads, args.evals, args.precision)[0]
    train(with_values(cfg, {"train.steps": 3}))  # CUDA context, kernels, allocator
    Path(args.worker, f"ready-{os.getpid()}").touch()
    while not Path(args.worker, "go").exists():
        time.sleep(0.001)
    start = time.time()
    train(cfg)
    sync(args.device)
    print(json.dumps({"start": start, "end": time.time()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", help="config YAML (repeatable); default modadd_quick")
    ap.add_argument("--ks", default="1,4,16")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--evals", choices=("minimal", "config"), default="minimal")
    ap.add_argument("--precision", default="", help="override train.precision (fp32 | bf16)")
    ap.add_argument("--vectorize", default="vmap,loop", help="population modes to time: vmap, loop")
    ap.add_argument("--attention", default="auto", help="vmap attention: auto | math | native")
    ap.add_argument("--separate-max", type=int, default=0, help="time at most this many separate runs per K "
                    "and extrapolate (0: all)")
    ap.add_argument("--pack", default="", help="CUDA: comma-separated process counts for packed separate trials")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--seed-offset", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    torch.set_num_threads(args.threads)
    configs = args.config or [str(ROOT / "configs" / "modadd_quick.yaml")]
    ks = [int(k) for k in args.ks.split(",")]
    print(f"command: python benchmarks/population.py {' '.join(sys.argv[1:])}")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    print(f"machine: {device_name or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch threads, "
          f"torch {torch.__version__}; steps {args.steps}, evals {args.evals}, repeats {args.repeats}\n")
    modes = args.vectorize.split(",")
    print("| config | K | population mode | population s | population member-steps/s | separate s "
          "| separate member-steps/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for config in configs:
        cfg = load_config(config)
        warm = member_configs(cfg, 2, 3, args.device, args.threads, args.evals, args.precision)
        for mode in modes:  # first-call costs (imports, CUDA context, kernels)
            train_population(warm, vectorize=mode, attention=args.attention)
        train(warm[0])
        for k in ks:
            cfgs = member_configs(cfg, k, args.steps, args.device, args.threads, args.evals, args.precision)
            times: dict[str, list[float]] = {name: [] for name in ["separate", *modes]}
            for r in range(args.repeats):
                names = list(times)
                for name in names[r % len(names):] + names[: r % len(names)]:
                    if name == "separate":
                        times[name].append(time_separate(cfgs, args.device, args.separate_max or k))
                    else:
                        times[name].append(time_population(cfgs, args.device, name, args.attention))
            sep = statistics.median(times["separate"])
            work = k * args.steps
            for mode in modes:
                pop = statistics.median(times[mode])
                print(f"| {Path(config).stem} | {k} | {mode} | {pop:.2f} | {work / pop:.1f} | {sep:.2f} "
                      f"| {work / sep:.1f} | {sep / pop:.2f}x |", flush=True)
        if args.pack and args.device.startswith("cuda"):
            for p in (int(x) for x in args.pack.split(",")):
                t = time_packed(config, p, args)
                print(f"| {Path(config).stem} | {p} | packed: {p} processes x 1 trial | | | {t:.2f} "
                      f"| {p * args.steps / t:.1f} | |", flush=True)


if __name__ == "__main__":
    main()
