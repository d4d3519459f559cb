"""A finished sweep folder written with the sweep's own writers, without running Ray Tune.

    write_sweep(tmp_path / "fs", n_trials=100, n_evals=40)   # for `groktune status` / `collect`

Each trial has Tune's params.json and result.json (one JSON line per eval), a ledger record
(orchestrator.sweep.ledger.write_record) and the folder the driver's Heartbeat callback marks
finished: what `groktune status` and `groktune collect` read after a real sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

from groktune.layout import EXPERIMENT
from orchestrator.config.experiment import config_from_dict, dump_config
from orchestrator.sweep.ledger import write_record


def config(n_trials: int) -> dict:
    lrs = [round(1e-3 * (1 + i), 6) for i in range(n_trials)]
    return {
        "name": "fake",
        "task": {"name": "modular", "op": "x+y", "p": 13},
        "train": {"steps": 1000},
        "search": {"space": {"optim.lr": {"grid": lrs}}, "algorithm": "grid", "scheduler": "fifo"},
    }


def write_sweep(exp: Path, n_trials: int = 3, n_evals: int = 10) -> Path:
    """Write a finished grid sweep of `n_trials` trials with `n_evals` evals each into `exp`."""
    from orchestrator.sweep.callbacks import Heartbeat  # deferred: Ray; the driver's own writer

    cfg = config(n_trials)
    exp.mkdir(parents=True)
    (exp / EXPERIMENT).write_text(dump_config(config_from_dict(cfg)))
    for i, lr in enumerate(cfg["search"]["space"]["optim.lr"]["grid"]):
        tid, point = f"t{i:05d}", {"optim.lr": lr}
        grokked = i % 2 == 0
        rows = []
        for k in range(1, n_evals + 1):
            step = k * 1000 // n_evals
            val = min(1.0, k / n_evals * (1.2 if grokked else 0.5))
            rows.append({"trial_id": tid, "step": step, "val_acc": val, "train_acc": 1.0, "train_loss": 0.1,
                         "val_loss": 1.0 - val, "grok_score": 1000.0 - step * val, "config": point,
                         "node_ip": "127.0.0.1", "hostname": "h", "node_id": "f00dcafe1234",
                         "training_iteration": k})
        rows[-1].update(status="grokked" if grokked else "budget", steps_to_target=800 if grokked else None)
        folder = exp / f"trial_{tid}"
        folder.mkdir()
        (folder / "params.json").write_text(json.dumps(point))
        (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        write_record(exp, tid, rows[-1]["status"], point, rows[-1])
    Heartbeat(str(exp)).write([], finished=True)
    return exp
