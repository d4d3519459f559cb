"""Train throughput of groktune against a plain-PyTorch baseline, side by side in one process.

    python benchmarks/train_throughput.py --steps 300 --repeats 2 [--to-target]

On configs/modmul_grokfast.yaml (x*y mod 97, 50 % train, 2x128x4 transformer, batch 512, Adam,
Grokfast EMA). Both trainers run the same number of optimizer steps including their own
evaluation (groktune: its eval schedule; baseline: a full validation pass every epoch), in
alternating order, `repeats` times; the table reports medians.

Two FLOP rates are reported against the measured fp32 matmul peak:
- model FLOPs: the standard count (6 x matmul parameters x tokens + attention per step), the same
  for both trainers; groktune skips work (prefix sharing, last-position-only final layer), so
  this rate can pass the peak;
- executed FLOPs: the matmul FLOPs each trainer really ran in the timed span, evals included,
  counted by torch.utils.flop_counter in one extra (untimed) run of each.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_grokfast import run_baseline  # noqa: E402

from orchestrator.config.experiment import load_config, with_values  # noqa: E402
from tasks import build_task  # noqa: E402
from trials.train import train  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "modmul_grokfast.yaml"


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best fp32 GFLOP/s of an n x n matmul with the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def model_flops(d: int, layers: int, d_ff: int, vocab: int, seq: int, batch: int) -> tuple[float, float]:
    """Standard training-step and forward FLOPs: 6 (resp. 2) x matmul params x tokens + attention."""
    matmul_params = layers * (4 * d * d + 2 * d * d_ff) + d * vocab
    tokens = batch * seq
    attn = layers * 2 * 2 * seq * seq * d * batch  # QK^T and AV
    fwd = 2 * matmul_params * tokens + attn
    return 3 * fwd, fwd


def executed_flops(fn) -> float:
    """Matmul-type FLOPs (mm, addmm, bmm, attention) that fn() runs, forward and backward."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def run_groktune(cfg, steps: int, precision: str) -> tuple[float, float]:
    cfg = with_values(cfg, {"train.steps": steps, "train.target_patience": 0, "train.precision": precision})
    result = train(cfg)
    return result.wall_time, result.final["val_acc"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--precisions", default="fp32,bf16", help="groktune precisions to run (bf16 = autocast)")
    ap.add_argument("--to-target", action="store_true", help="also time groktune to 95%% val acc")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = with_values(load_config(CONFIG), {"train.num_threads": args.threads})
    data = build_task(cfg.task, seed=cfg.seed)
    peak = matmul_peak()
    step_flops, fwd_flops = model_flops(cfg.model.d_model, cfg.model.n_layers, cfg.model.d_ff,
                                        data.vocab_size, data.seq_len, cfg.train.batch_size)
    precisions = args.precisions.split(",")
    base_t, ours_t = [], {p: [] for p in precisions}
    for _ in range(args.repeats):  # alternate so drifts in machine load hit both alike
        t, _, _ = run_baseline(data.train_x, data.train_y, data.val_x, data.val_y, data.vocab_size, args.steps)
        base_t.append(t)
        for p in precisions:
            ours_t[p].append(run_groktune(cfg, args.steps, p)[0])
    base = statistics.median(base_t)
    counted = {"baseline (plain PyTorch, fp32)": executed_flops(lambda: run_baseline(
        data.train_x, data.train_y, data.val_x, data.val_y, data.vocab_size, args.steps))}
    for p in precisions:
        counted[f"groktune {p}"] = executed_flops(lambda p=p: run_groktune(cfg, args.steps, p))
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads, "
          f"torch {torch.__version__}")
    print(f"measured fp32 matmul peak (2048^3): {peak:.1f} GFLOP/s")
    print(f"model FLOPs per train step: {step_flops / 1e9:.2f} G; full validation pass: "
          f"{fwd_flops * len(data.val_y) / cfg.train.batch_size / 1e9:.2f} G\n")
    print(f"| trainer | steps/s | seconds for {args.steps} steps | speed-up vs baseline "
          "| model FLOPs: share of fp32 peak | executed GFLOP per step (evals incl.) "
          "| executed FLOPs: share of fp32 peak |")
    print("|---|---|---|---|---|---|---|")
    rows = [("baseline (plain PyTorch, fp32)", base_t)] + [(f"groktune {p}", ours_t[p]) for p in precisions]
    for name, times in rows:
        t = statistics.median(times)
        sps = args.steps / t
        done = counted[name] / 1e9
        print(f"| {name} | {sps:.2f} | {t:.1f} | {base / t:.2f}x | {100 * sps * step_flops / 1e9 / peak:.1f} % "
              f"| {done / args.steps:.2f} | {100 * done / t / peak:.1f} % |")
    print("\nall runs (s): " + "; ".join(f"{n}: {[round(x, 1) for x in t]}" for n, t in rows))
    if args.to_target:
        for p in precisions:
            result = train(with_values(cfg, {"train.precision": p}))
            print(f"\n{p}: time to {cfg.train.target_val_acc:.0%} val acc: status {result.status}, "
                  f"steps_to_target {result.steps_to_target}, run stopped at step {result.final_step} "
                  f"after {result.wall_time:.1f} s")


if __name__ == "__main__":
    main()
