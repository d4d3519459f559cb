"""The measurements behind benchmarks/gpu_check.sh, one subcommand per table section.

    python3 benchmarks/gpu_check.py detect --device cuda
    python3 benchmarks/gpu_check.py syncs CONFIG --device cuda --modes fp32,bf16,fp16,compile
    python3 benchmarks/gpu_check.py population CONFIG --device cuda --ks 1,16,64,256 --separate-max 16
    python3 benchmarks/gpu_check.py resume CONFIG --device cuda

Each subcommand prints markdown table rows (`| section | case | result |`) on stdout and
everything else on stderr. It needs PyTorch and the project on PYTHONPATH, never Ray or Optuna
(the GPU machine has neither). With --device cpu every path runs on the CPU with small budgets
(a dry run of the script on a machine without a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.config.experiment import load_config  # noqa: E402
from trials.train import train_population  # noqa: E402
from trials.train import train  # noqa: E402

MODES = {
    "fp32": ["train.precision=fp32"],
    "tf32": ["train.precision=fp32", "train.tf32=true"],
    "bf16": ["train.precision=bf16"],
    "fp16": ["train.precision=fp16"],
    "compile": ["train.precision=fp32", "train.compile=true"],
}
"""The trainer settings each table row runs (gpu_check.sh passes the same as --set)."""


def row(section: str, case: str, result: str) -> None:
    print(f"| {section} | {case} | {result} |", flush=True)


def minimal_evals(steps: int) -> list[str]:
    """Overrides for a run of `steps` steps that evaluates only at step 1 and the last step and
    never stops early (a fixed amount of work)."""
    return [f"train.steps={steps}", "train.eval_dense_until=0", "train.eval_log_ratio=1e6",
            f"train.eval_every={steps}", "train.target_patience=0", "train.early_stop_patience=0",
            "train.checkpoint_every=1000000"]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def detect(args) -> int:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU visible (torch {torch.__version__}, torch.cuda.is_available() is False); "
              "nothing measured", file=sys.stderr)
        return 1
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu (dry run)"
    total = (f", {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB"
             if args.device.startswith("cuda") else "")
    row("machine", "device", f"{name}{total}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    return 0


def count_syncs(cfg_path: str, overrides: list[str], device: str) -> tuple[int, float]:
    """(host syncs, peak GPU MiB) of one train() run, counted with torch.cuda.set_sync_debug_mode."""
    cfg = load_config(cfg_path, overrides)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if cuda:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            train(cfg)
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
    n = sum("synchronizing" in str(w.message) for w in caught)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    return n, peak


def syncs(args) -> int:
    """Host syncs per non-eval step: (syncs of a 2N-step run - syncs of an N-step run) / N, both
    evaluating at step 1 and their last step only, so evals, set-up and the final checkpoint cancel."""
    failed = 0
    name = Path(args.config).stem
    warm = False
    for mode in args.modes.split(","):
        base = [f"train.device={args.device}", *MODES[mode]]
        try:
            if not warm and mode != "compile":  # once: CUDA context, cuBLAS handles, kernels
                count_syncs(args.config, base + minimal_evals(3), args.device)
                warm = True
            n1, _ = count_syncs(args.config, base + minimal_evals(args.steps), args.device)
            n2, peak = count_syncs(args.config, base + minimal_evals(2 * args.steps), args.device)
            per_step = (n2 - n1) / args.steps
            what = f"{per_step:.2f} host syncs per non-eval step ({n1} in {args.steps} steps, {n2} in {2 * args.steps})"
            if args.device.startswith("cuda"):
                what += f"; peak GPU memory {peak:.0f} MiB"
            else:
                what = "not counted on cpu (set_sync_debug_mode is CUDA's); the run path works"
            row("syncs", f"{name} {mode}", what)
        except Exception as err:  # a row per failure; the other modes still run
            failed += 1
            row("syncs", f"{name} {mode}", f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
    return 1 if failed else 0


def population_configs(cfg_path: str, k: int, steps: int, device: str, seed0: int = 0) -> list:
    base = load_config(cfg_path)
    over = [f"train.device={device}", "train.num_threads=1", *minimal_evals(steps)]
    return [load_config(cfg_path, [*over, f"seed={base.seed + seed0 + i}"]) for i in range(k)]


def time_population(cfgs, device: str, vectorize: str) -> float:
    """Seconds of the training loop (evals included; building the K members is not: at K=256 it
    would weigh as much as a short run's steps)."""
    return train_population(cfgs, vectorize=vectorize).wall_time


def time_separate_processes(args, p: int) -> float:
    """Wall time of p one-member processes sharing the device (as Ray packs trials with
    num_gpus=1/p), started together once each has warmed up."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "worker", args.config, "--device", args.device, "--steps", str(args.steps),
               "--dir", tmp]
        procs = [subprocess.Popen([*cmd, "--seed", str(i)], stdout=subprocess.PIPE, text=True) for i in range(p)]
        try:
            while len(list(Path(tmp).glob("ready-*"))) < p:
                if any(proc.poll() not in (None, 0) for proc in procs):
                    raise RuntimeError("a separate worker process failed (see the log)")
                time.sleep(0.05)
            Path(tmp, "go").touch()
            outs = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
    return max(o["end"] for o in outs) - min(o["start"] for o in outs)


def worker(args) -> int:
    """One separate member: warm up, say ready, wait for go, train, print start and end times."""
    torch.set_num_threads(1)
    cfg = population_configs(args.config, 1, args.steps, args.device, seed0=args.seed)[0]
    train(population_configs(args.config, 1, 3, args.device, seed0=args.seed)[0])  # context, kernels
    Path(args.dir, f"ready-{os.getpid()}").touch()
    while not Path(args.dir, "go").exists():
        time.sleep(0.001)
    result = train(cfg)
    end = time.time()
    print(json.dumps({"start": end - result.wall_time, "end": end}))  # the loop's span, as time_population
    return 0


def population(args) -> int:
    """Member-steps/s of K members in one process (vectorised) against K separate processes.

    The one-process runs get the first 60 % of --seconds; the separate processes (capped at
    --separate-max, the largest count first) the rest. What did not fit is a SKIPPED row."""
    name = Path(args.config).stem
    ks = [int(x) for x in args.ks.split(",")]
    failed = 0
    time_population(population_configs(args.config, 2, 3, args.device), args.device, args.vectorize)  # warm-up
    rates = {}
    one_process_until = time.time() + 0.6 * (args.deadline - time.time())
    for k in ks:
        case = f"{name} K={k} one process ({args.vectorize})"
        if time.time() > one_process_until:
            row("population", case, "SKIPPED: out of this section's time")
            failed += 1
            continue
        try:
            cfgs = population_configs(args.config, k, args.steps, args.device)
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            t = time_population(cfgs, args.device, args.vectorize)
            rates[k] = k * args.steps / t
            peak = (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
                    if args.device.startswith("cuda") else "")
            row("population", case, f"{rates[k]:.4g} member-steps/s ({args.steps} steps in {t:.2f} s, two evals "
                f"included, set-up not{peak})")
        except Exception as err:
            failed += 1
            row("population", case, f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
    if 1 in rates and len(rates) > 1:
        k_max = max(rates)
        ratio = rates[k_max] / rates[1]
        row("population", f"{name} K={k_max} / K=1 (one process)", f"{ratio:.1f}x member-steps/s (goal: >= 20x at "
            f"K=256): {'met' if ratio >= 20 else 'NOT met'}")
    separate = {}
    for p in sorted({min(k, args.separate_max) for k in ks}, reverse=True):
        case = f"{name} {p} separate process{'es' if p > 1 else ''} sharing the device"
        if time.time() > args.deadline:
            row("population", case, "SKIPPED: out of this section's time")
            failed += 1
            continue
        try:
            t = time_separate_processes(args, p)
            separate[p] = p * args.steps / t
            row("population", case, f"{separate[p]:.4g} member-steps/s ({args.steps} steps each, {t:.2f} s wall)")
        except Exception as err:
            failed += 1
            row("population", case, f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
    for k in ks:
        p = min(k, args.separate_max)
        if k in rates and p in separate:
            capped = f" ({p} processes: capped at {args.separate_max})" if p < k else ""
            row("population", f"{name} K={k}: one process / separate processes{capped}",
                f"{rates[k] / separate[p]:.1f}x member-steps/s")
    return 1 if failed else 0


def resume(args) -> int:
    """CPU -> device -> CPU: a run checkpointed on one device and continued on the other, twice,
    with gradient noise and Grokfast on (their state travels), against the uninterrupted CPU run."""
    name = Path(args.config).stem
    s = args.steps
    common = ["optim.noise.eta=0.01", f"train.checkpoint_every={s}", "train.target_patience=0",
              "train.early_stop_patience=0", "train.num_threads=1", "model.dropout_resid=0.1"]
    legs = [("cpu", s), (args.device, 2 * s), ("cpu", 3 * s)]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, resume_from, result = Path(tmp, "ckpt"), None, None
        for device, steps in legs:
            cfg = load_config(args.config, [*common, f"train.device={device}", f"train.steps={steps}"])

            def keep(record, save=None):
                if save is not None:
                    save(ckpt)

            result = train(cfg, keep, resume_from=resume_from)
            resume_from = ckpt
        straight = train(load_config(args.config, [*common, "train.device=cpu", f"train.steps={3 * s}"]))
    a, b = result.final, straight.final
    diff = max(abs(a[k] - b[k]) for k in ("val_acc", "train_loss", "val_loss"))
    path = " -> ".join(f"{d} to step {n}" for d, n in legs)
    ok = result.final_step == 3 * s
    row("resume", f"{name} {path}", f"{'ok' if ok else 'FAILED: wrong final step'}: final step {result.final_step}, "
        f"val_acc {a['val_acc']:.4f} (uninterrupted CPU run {b['val_acc']:.4f}, largest difference {diff:.2g}; devices "
        "differ in rounding and dropout masks, so close rather than equal)")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("detect")
    p.add_argument("--device", default="cuda")
    p = sub.add_parser("syncs")
    p.add_argument("config")
    p.add_argument("--device", default="cuda")
    p.add_argument("--modes", default="fp32,bf16,fp16,compile")
    p.add_argument("--steps", type=int, default=10)
    p = sub.add_parser("population")
    p.add_argument("config")
    p.add_argument("--device", default="cuda")
    p.add_argument("--ks", default="1,16,64,256")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--vectorize", default="vmap")
    p.add_argument("--separate-max", type=int, default=16)
    p.add_argument("--seconds", type=float, default=120.0, help="start nothing new after this many seconds")
    p = sub.add_parser("worker")
    p.add_argument("config")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", required=True)
    p = sub.add_parser("resume")
    p.add_argument("config")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    if getattr(args, "seconds", None):
        args.deadline = time.time() + args.seconds
    return {"detect": detect, "syncs": syncs, "population": population, "worker": worker, "resume": resume}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
