"""A/B of `train()` between two source trees (say, a commit before a trainer change and after).

    git archive <old commit> | tar -x -C /tmp/old
    python benchmarks/ab_train.py /tmp/old . --steps 60 --pairs 10

Each tree gets one long-lived worker process (its own imports, one warm-up run) that times a
`train()` of configs/modmul_grokfast.yaml (1 thread, no checkpoints) per request; the driver
asks them in turn, the order alternating per pair, so slow minutes on a shared machine hit both
sides alike. Prints the medians and the median of the per-pair ratios, in wall and CPU time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

WORKER = """
import dataclasses, sys, time
import torch
torch.set_num_threads(1)
try:
    from orchestrator.config.experiment import load_config, with_values
except ImportError:  # a tree from before orchestrator/ had subpackages
    from orchestrator.config import load_config, with_values
from trials.train import train
cfg = load_config("configs/modmul_grokfast.yaml")
cfg = with_values(dataclasses.replace(cfg, search=None), {"train.steps": int(sys.argv[1]), "train.num_threads": 1,
                  "train.target_patience": 0, "train.checkpoint_every": 10**6})
train(cfg)  # warm-up
for _ in sys.stdin:
    wall, cpu = time.perf_counter(), time.process_time()
    train(cfg)
    print(f"{time.perf_counter() - wall:.4f} {time.process_time() - cpu:.4f}", flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pairs", type=int, default=10)
    args = ap.parse_args()
    roots = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    workers = {k: subprocess.Popen([sys.executable, "-c", WORKER, str(args.steps)], cwd=root, text=True,
                                   env={**os.environ, "PYTHONPATH": root}, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE) for k, root in roots.items()}
    times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    for i in range(args.pairs):
        for side in ("old", "new") if i % 2 == 0 else ("new", "old"):
            workers[side].stdin.write("run\n")
            workers[side].stdin.flush()
            times[side].append(tuple(map(float, workers[side].stdout.readline().split())))
    for w in workers.values():
        w.stdin.close()
        w.wait()
    print(f"command: python benchmarks/ab_train.py {' '.join(sys.argv[1:])}; load average {os.getloadavg()[0]:.1f}")
    for j, name in ((0, "wall"), (1, "cpu")):
        old, new = [t[j] for t in times["old"]], [t[j] for t in times["new"]]
        ratio = statistics.median(b / a for a, b in zip(old, new))
        print(f"{name}: old median {statistics.median(old):.3f} s, new median {statistics.median(new):.3f} s, "
              f"new/old median of pair ratios {ratio:.3f}")


if __name__ == "__main__":
    main()
