"""The run directory of `groktune train`: config.yaml, metrics.jsonl, checkpoints/, result.json, tensorboard/.

Every file is plain and readable without groktune. config.yaml and result.json are written
atomically; metrics.jsonl is appended and flushed one record per eval.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from groktune.layout import write_atomic  # noqa: F401  (re-exported: older imports)
from orchestrator.errors import UserError

CHECKPOINT_DIR = "checkpoints"


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e308 if value > 0 else -1e308)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def to_json_line(record: dict) -> str:
    """One strict-JSON line (NaN becomes null, so every JSON reader accepts the file)."""
    return json.dumps(_json_safe(record), separators=(",", ":"))


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only records up to `last_step` (the checkpoint a resumed run continues from)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            break  # a torn last line from a killed run
    write_atomic(path, "".join(k + "\n" for k in kept))


class RunDirReporter:
    """A `report(record, save)` for train(): appends metrics.jsonl, saves checkpoints, logs TensorBoard."""

    def __init__(self, out: Path, on_record=None):
        self.out = out
        self.metrics = open(out / "metrics.jsonl", "a")
        self.on_record = on_record
        self.tb = _tensorboard_writer(out / "tensorboard")

    def __call__(self, record: dict, save=None) -> None:
        self.metrics.write(to_json_line(record) + "\n")
        self.metrics.flush()
        if self.tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.tb.add_scalar(key, value, record["step"])
            self.tb.flush()
        if save is not None:
            save(self.out / CHECKPOINT_DIR)
        if self.on_record is not None:
            self.on_record(record)

    def close(self) -> None:
        self.metrics.close()
        if self.tb is not None:
            self.tb.close()


def _tensorboard_writer(path: Path):
    """A SummaryWriter when tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(path))


def prepare_run_dir(out: Path, resume: bool) -> None:
    """Create the run dir, refusing to overwrite a run unless resuming (one-line errors)."""
    if resume:
        if not (out / CHECKPOINT_DIR / "checkpoint.pt").is_file():
            raise UserError(f"--resume: {out / CHECKPOINT_DIR / 'checkpoint.pt'} not found; nothing to resume")
        return
    if (out / "metrics.jsonl").exists() or (out / CHECKPOINT_DIR).exists():
        raise UserError(f"--out {out}: already holds a run; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
