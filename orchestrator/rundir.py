"""The run directory of `groktune train`: config.yaml, metrics.jsonl, checkpoints/, result.json, tensorboard/.

Every file is plain and readable without groktune. config.yaml and result.json are written
atomically; metrics.jsonl is appended and flushed one record per eval.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from groktune.layout import CHECKPOINT_DIR, CHECKPOINT_FILE, CONFIG, METRICS, RESULT, write_atomic
from orchestrator.errors import UserError


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
    text = path.read_text()
    for line in text.splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            break  # a torn last line from a killed run
    new = "".join(k + "\n" for k in kept)
    if new != text:  # unchanged files are left alone (a refused resume changes nothing)
        write_atomic(path, new)


class RunDirReporter:
    """A `report(record, save)` for train(): appends metrics.jsonl, saves checkpoints, logs TensorBoard."""

    def __init__(self, out: Path, on_record=None):
        self.out = out
        self.metrics = open(out / METRICS, "a")
        self.on_record = on_record
        self.tb = None  # made at the first record: a run refused on restore leaves no events file
        self._tb_tried = False

    def __call__(self, record: dict, save=None) -> None:
        self.metrics.write(to_json_line(record) + "\n")
        self.metrics.flush()
        if not self._tb_tried:
            self._tb_tried = True
            self.tb = _tensorboard_writer(self.out / "tensorboard")
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
        # deferred: tensorboard is optional (a test extra)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(path))


# What `plan_run_dir` found in --out, and so what `groktune train` does with it.
FRESH = "fresh"          # no folder, or an empty one (or --force on a foreign one): start
RESTART = "restart"      # our run, interrupted before its first checkpoint: start it again
RESUME = "resume"        # our run with a checkpoint, and --resume: continue it
FINISHED = "finished"    # our run with result.json, and --resume: nothing to do
# Config keys that fix a run's data and model (the data split follows the seed and task.*); a
# resumed run must match its saved config.yaml on all of them.
SETUP_KEYS = ("seed", "task.", "model.")


def plan_run_dir(out: Path, resume: bool, force: bool = False) -> str:
    """Decide what `groktune train --out OUT` may do, creating and changing nothing.

    A folder is ours when it holds metrics.jsonl or a checkpoint (groktune writes metrics.jsonl
    first, so a config.yaml alone is the user's). Existing user files are never overwritten.

    Args:
        out: the run folder.
        resume: --resume was given.
        force: --force was given (allow a non-empty folder that is not a run folder).
    Returns:
        FRESH, RESTART, RESUME or FINISHED.
    Raises:
        UserError: one line saying why the folder cannot be used.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, expected a run folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"--out {out}: {parent} is a file, not a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    ours = (out / METRICS).is_file() or (out / CHECKPOINT_DIR / CHECKPOINT_FILE).is_file()
    finished = ours and (out / RESULT).exists()
    resumable = ours and (out / CHECKPOINT_DIR / CHECKPOINT_FILE).is_file()
    if resume:
        if not out.is_dir():
            raise UserError(f"--resume: {out}: no such run folder")
        if not ours:
            raise UserError(f"--resume: {out}: holds no groktune run (no {METRICS}); nothing to resume")
        return FINISHED if finished else RESUME if resumable else RESTART
    if finished:
        raise UserError(f"--out {out}: already holds a run, finished ({RESULT}); choose another --out")
    if resumable:
        raise UserError(f"--out {out}: already holds a run; pass --resume to continue it or choose another --out")
    if ours:
        return RESTART
    if entries and not force:
        raise UserError(f"--out {out}: not empty and not a groktune run folder ({len(entries)} entries); "
                        f"pass --force to write into it")
    for name in (CONFIG, RESULT, CHECKPOINT_DIR):
        if name in entries:
            raise UserError(f"--out {out}: already holds its own {name}; groktune will not overwrite it")
    return FRESH


def create_run_dir(out: Path, config_text: str) -> None:
    """Make the run folder: metrics.jsonl (empty) first, then config.yaml, atomically each.

    Called only once the config and the environment are known good, so a failed start leaves
    nothing behind. RESTART truncates the interrupted run's metrics.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / METRICS, "")
        write_atomic(out / CONFIG, config_text)
    except OSError as err:
        raise UserError(f"--out {out}: cannot write the run folder ({err.strerror or type(err).__name__})") from None


def setup_differences(saved: dict, current: dict) -> list[str]:
    """Dotted keys of SETUP_KEYS whose values differ between two config dicts, sorted.

    Args:
        saved: the run folder's config.yaml as a dict.
        current: the config being resumed with, as a dict.
    Returns:
        ["seed: 0 -> 1", "task.p: 97 -> 113", ...]; empty when the run can be resumed.
    """
    a, b = _flatten(saved), _flatten(current)
    keys = sorted(k for k in set(a) | set(b) if k == "seed" or k.startswith(SETUP_KEYS[1:]))
    return [f"{k}: {a.get(k, '(missing)')!r} -> {b.get(k, '(missing)')!r}" for k in keys if a.get(k) != b.get(k)]


def _flatten(data, prefix: str = "") -> dict:
    out = {}
    for key, value in (data or {}).items() if isinstance(data, dict) else ():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out
