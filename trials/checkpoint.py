"""Checkpoints: one file of plain tensors and numbers, written atomically, loaded safely.

The file holds model, optimizer, grad scaler, Grokfast and noise state, RNG states, the stop
rule, the step and the config it was written for (trials.member.member_state; a population's
checkpoint holds one such state per member, trials.train). It is written to a temp file in the same
folder and renamed over the old one, so a kill mid-write leaves the previous checkpoint intact.
It is read with torch.load(weights_only=True): no pickled code runs.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path

import torch

from groktune.errors import CheckpointError
from groktune.layout import CHECKPOINT_FILE, write_atomic_with

CHECKPOINT_NAME = CHECKPOINT_FILE  # the old name, kept for existing imports
FORMAT_VERSION = 1


def save_checkpoint(state: dict, directory: str | Path) -> Path:
    """Write `state` to directory/checkpoint.pt atomically; return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, **state}
    return write_atomic_with(directory / CHECKPOINT_FILE, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | Path, expected: dict | None = None) -> dict:
    """Load a checkpoint file (or a folder holding checkpoint.pt) onto the CPU.

    Args:
        expected: {"model": {...}, "task": {...}} config sections the checkpoint must match.
    Raises:
        CheckpointError with one line naming the file and the problem.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a readable groktune checkpoint ({first[:120]})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a groktune checkpoint (format_version {FORMAT_VERSION} expected)")
    config = state.get("config")
    config = config if isinstance(config, dict) else {}
    for section, want in (expected or {}).items():
        have = config.get(section)
        if have != want:
            key = _first_difference(have or {}, want or {})
            raise CheckpointError(
                f"{path}: written for a different {section} config ({section}.{key}: "
                f"checkpoint {_get(have, key)!r}, config {_get(want, key)!r})"
            )
    return state


def load_model_state(model: torch.nn.Module, state: dict, path: str | Path = "checkpoint") -> None:
    """Load state["model"] into `model`, refusing a missing or differently shaped tensor first.

    The config check in load_checkpoint cannot see everything that sets a shape (an LM task's
    vocabulary comes from its file), and torch's own error is a multi-line RuntimeError.

    Raises:
        CheckpointError: one line naming the first tensor that differs and both shapes.
    """
    saved = state.get("model") if isinstance(state, dict) else None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: holds no model weights")
    for name, tensor in model.state_dict().items():
        have = saved.get(name)
        if not isinstance(have, torch.Tensor):
            raise CheckpointError(f"{path}: no tensor {name} in the checkpoint (written for another model)")
        if tuple(have.shape) != tuple(tensor.shape):
            raise CheckpointError(f"{path}: {name} has shape {tuple(have.shape)} in the checkpoint, "
                                  f"{tuple(tensor.shape)} in this model (another vocabulary or model size)")
    extra = sorted(set(saved) - set(model.state_dict()))
    if extra:
        raise CheckpointError(f"{path}: tensor {extra[0]} is not in this model (written for another model)")
    model.load_state_dict(saved)


RUN_KEYS = ("model", "optimizer", "scaler", "grokfast", "noise", "sampler", "batch_generator", "torch_rng",
            "cuda_rng", "rule", "progress")
"""What a lone run's checkpoint always holds (a population's holds "members", one of these each)."""


def checkpoint_step(state: dict, path: str | Path = "checkpoint") -> int:
    """The step a single run's checkpoint was written at; CheckpointError if it is not one.

    Checks that every part trials.train restores is there, so a truncated or foreign state is
    one line here rather than a KeyError deep in the restore.
    """
    missing = [key for key in RUN_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a run checkpoint (no {', '.join(missing)})")
    try:
        return int(state["progress"]["step"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: not a run checkpoint (no progress.step)") from None


def _get(d, key):
    return d.get(key) if isinstance(d, dict) else None


def _first_difference(a: dict, b: dict) -> str:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return key
    return "?"


def rng_state(device: torch.device) -> dict:
    """The global RNG states a checkpoint keeps (dropout masks): torch_rng (the CPU's) and cuda_rng
    (the state of the CUDA device the run trains on, only that one; [] off CUDA). One state, not
    one per visible GPU: a resume may see fewer GPUs, or its GPU under another index."""
    return {"torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else []}


def restore_rng(state: dict, device: torch.device) -> None:
    """Set the global RNG states that rng_state saved, on whatever device this run uses.

    The CUDA state goes to this run's device; a checkpoint written on the CPU has none (the CUDA
    generator then keeps the run's seed). Older checkpoints hold a list, one state per GPU visible
    when written: the one at this device's index is taken, or the last when there are fewer.
    """
    torch.set_rng_state(state["torch_rng"])
    saved = state["cuda_rng"]
    if device.type != "cuda" or saved is None or (isinstance(saved, (list, tuple)) and not saved):
        return
    if isinstance(saved, (list, tuple)):
        saved = saved[min(device.index or 0, len(saved) - 1)]
    torch.cuda.set_rng_state(saved, device)


def generator_state(generator: torch.Generator) -> dict:
    """A torch.Generator's state for a checkpoint, tagged with the kind of device it draws on."""
    return {"device": generator.device.type, "state": generator.get_state()}


def restore_generator(generator: torch.Generator, saved) -> None:
    """Set `generator` to a state generator_state saved, whatever device wrote it.

    A state cannot move between kinds of device (the CPU's Mersenne twister is 5056 bytes, CUDA's
    Philox seed and offset 16), so a checkpoint written on another kind of device (a resume, a
    retry or a PBT clone on another node) seeds the generator from the saved state instead: a
    fresh stream, the same on every resume of that checkpoint. A bare tensor (older checkpoints)
    counts as this device's when its size fits.
    """
    if isinstance(saved, torch.Tensor):
        saved = {"device": None, "state": saved}
    state = saved["state"]
    same = (saved.get("device") == generator.device.type if saved.get("device")
            else state.numel() == generator.get_state().numel())
    if same:
        generator.set_state(state)
    else:
        digest = hashlib.sha256(state.cpu().numpy().tobytes()).digest()
        generator.manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def map_tensors(obj, fn):
    """Apply fn to every tensor in nested dicts/lists/tuples (checkpoint states)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_tensors(v, fn) for v in obj)
    return obj


def to_cpu(obj):
    """A copy of a state with every tensor detached and copied to the CPU (a snapshot)."""
    return map_tensors(obj, lambda t: t.detach().to("cpu", copy=True))


def to_device(obj, device):
    return map_tensors(obj, lambda t: t.to(device))
