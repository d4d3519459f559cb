"""MLflow and W&B trackers of a sweep (orchestrator/sweep/tracking.py), on the optimizer step.

Fast tier: which metrics a Tune result gives and that each step is logged once per trial.
Slow tier: a tiny real sweep with `search.tracking: [mlflow, wandb]` on the embedded Ray, into an
MLflow file store (file:// in tmp_path) and W&B in offline mode (WANDB_DIR in tmp_path). The MLflow
store is read back with mlflow's own client; the offline W&B run files are read record by record
(wandb's protobuf records in its LevelDB-style log, parsed here). Both must hold, for every trial,
the trial's curve from curves.parquet at its optimizer steps, not at Tune's training_iteration.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from groktune.errors import UserError
from orchestrator.sweep.tracking import StepOnce, step_metrics, tracking_callbacks

ROOT = Path(__file__).resolve().parents[2]


def test_step_metrics_keep_finite_numbers_without_tune_bookkeeping():
    step, metrics = step_metrics({"step": 300, "val_acc": 0.5, "train_loss": float("nan"), "done": False,
                                  "training_iteration": 7, "config": {"optim.lr": 1e-3}, "hostname": "h",
                                  "member_val_acc": [0.1, 0.2], "steps_to_target": 280})
    assert step == 300 and metrics == {"val_acc": 0.5, "steps_to_target": 280.0}
    assert step_metrics({"val_acc": 0.5})[0] is None  # no optimizer step: nothing to log at


def test_each_step_is_logged_once_per_trial():
    once = StepOnce()
    assert once.new("a", 100, {"val_acc": 0.1}) == {"val_acc": 0.1}
    assert once.new("a", 200, {"val_acc": 0.5}) == {"val_acc": 0.5}
    assert once.new("a", 200, {"val_acc": 0.5, "steps_to_target": 180.0}) == {"steps_to_target": 180.0}  # closing
    assert once.new("a", 150, {"val_acc": 0.3}) == {}  # a retry replaying steps already logged
    assert once.new("b", 150, {"val_acc": 0.3}) == {"val_acc": 0.3}  # another trial has its own steps
    assert once.new("a", 300, {"val_acc": 0.9}) == {"val_acc": 0.9}


def test_a_tracking_store_mlflow_refuses_is_one_line_and_creates_nothing(tmp_path, monkeypatch):
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())  # MLflow 3: a file store only on request
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(UserError) as err:
        tracking_callbacks(["mlflow"], "trk")
    message = str(err.value)
    assert message.startswith(f"search.tracking mlflow: MLFLOW_TRACKING_URI={store.as_uri()}: ") and "\n" not in message
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    (callback,) = tracking_callbacks(["mlflow"], "trk")  # the same store, allowed: accepted
    assert type(callback).__name__ == "StepMLflow"


# --- slow: a real sweep into both trackers ---------------------------------------------------

SWEEP = {
    "name": "trk",
    "seed": 0,
    "task": {"name": "modular", "op": "x+y", "p": 13, "train_fraction": 0.5},
    "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32},
    "optim": {"lr": 3e-3, "weight_decay": 1.0},
    "train": {"steps": 120, "batch_size": 32, "eval_every": 20, "checkpoint_every": 60, "per_class_metrics": False},
    "search": {"space": {"optim.lr": {"loguniform": [1e-3, 1e-2]}}, "algorithm": "random", "scheduler": "fifo",
               "num_samples": 2, "max_failures": 0, "tracking": ["mlflow", "wandb"],
               "verify": {"top": 0}},
}


def wandb_records(path: Path) -> list:
    """Every protobuf Record of an offline W&B run file (`run-ID.wandb`).

    The file is a 7-byte header (b":W&B", a 2-byte magic, a version byte) followed by the LevelDB
    log format: 32 KiB blocks of chunks, each with a 7-byte header (crc32, little-endian length,
    type: 1 full, 2 first, 3 middle, 4 last); a block's tail shorter than a header is padding.
    """
    from wandb.proto import wandb_internal_pb2  # deferred: only the slow test reads W&B files

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:8]
    pos, block, parts, out = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # zero fill after the last record
            break
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            out.append(record)
    return out


def wandb_history(path: Path) -> list[tuple[int, dict]]:
    """(W&B step, {key: value}) of every history row of an offline run file."""
    rows = []
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            rows.append((record.history.step.num, items))
    return rows


@pytest.mark.slow
def test_mlflow_and_wandb_log_every_trial_at_its_optimizer_steps(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient  # deferred: only this test needs the MLflow client

    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump(SWEEP))
    store, wandb_dir = tmp_path / "mlruns", tmp_path / "wandb"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_TRACKING_URI": store.as_uri(),
           # MLflow 3 keeps its file store only on request (a database is its default backend)
           "MLFLOW_ALLOW_FILE_STORE": "true", "WANDB_MODE": "offline", "WANDB_DIR": str(wandb_dir),
           "WANDB_SILENT": "true"}
    env.pop("WANDB_API_KEY", None)
    ran = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "sweep", str(cfg), "--storage", str(tmp_path / "res")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    curves = pd.read_parquet(tmp_path / "res" / "trk" / "curves.parquet")
    trials = sorted(curves["trial_id"].unique())
    assert len(trials) == 2
    expected = {t: curves[curves["trial_id"] == t].sort_values("step") for t in trials}
    for t, curve in expected.items():  # log-spaced evals: the steps are not 1, 2, 3, ... (Tune's iterations)
        assert curve["step"].max() == 120 and len(curve) < 120, curve["step"].tolist()

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # this process reads the same file store
    client = MlflowClient(store.as_uri())
    experiment = client.get_experiment_by_name("trk")
    runs = {r.info.run_name.removeprefix("trial_"): r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == trials
    for t, curve in expected.items():
        run = runs[t]
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
        assert [s for s, _ in history] == curve["step"].tolist()
        assert [v for _, v in history] == pytest.approx(curve["val_acc"].tolist())
        assert float(run.data.params["optim.lr"]) > 0 and run.info.status == "FINISHED"
        assert "training_iteration" not in run.data.metrics and "step" not in run.data.metrics

    files = {p.stem.removeprefix("run-"): p for p in wandb_dir.glob("wandb/offline-run-*/run-*.wandb")}
    assert sorted(files) == trials
    for t, curve in expected.items():
        rows = wandb_history(files[t])
        assert [step for step, _ in rows] == curve["step"].tolist()
        assert [row["val_acc"] for _, row in rows] == pytest.approx(curve["val_acc"].tolist())
        assert all(row["_step"] == step and "training_iteration" not in row for step, row in rows)
