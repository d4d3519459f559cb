"""Token-stream language modelling on a memory-mapped file (nanoGPT's train.bin style).

File formats. A path ending in ".bin" holds uint16 tokens (native byte order, as numpy writes
them) and vocab_size = max token + 1, found by reading the file in chunks of SCAN_CHUNK
tokens into one buffer (never all at once, and not through the map, which would stay resident). Any other file is read as bytes: uint8 tokens, vocab_size = 256.
The file is opened with numpy.memmap and never read whole; batches read only their windows.

Split. The first round(N * train_fraction) tokens are training, the rest (the last
1 - train_fraction of the file) validation; windows never cross the boundary. A window is
context_length + 1 consecutive tokens: x is its first context_length tokens, y the last
context_length (x shifted by one).
"""

from __future__ import annotations

import copy
import math
import mmap
import os
from typing import Iterator

import numpy as np
import torch

from groktune.errors import DataError

SCAN_CHUNK = 1 << 24  # tokens per chunk when scanning a .bin file for its largest token


def open_tokens(path: str) -> np.memmap:
    """Memory-map `path` read-only as uint16 (".bin") or uint8 (anything else).

    Raises:
        DataError: missing, not a regular file, unreadable, empty, or odd-sized ".bin".
    """
    if not os.path.exists(path):
        raise DataError(f"{path}: token file not found")
    if not os.path.isfile(path):
        raise DataError(f"{path}: not a regular file")
    size = os.path.getsize(path)
    if size == 0:
        raise DataError(f"{path}: token file is empty")
    is_bin = path.lower().endswith(".bin")
    if is_bin and size % 2:
        raise DataError(f"{path}: {size} bytes is not a whole number of uint16 tokens (.bin)")
    try:
        return np.memmap(path, dtype=np.uint16 if is_bin else np.uint8, mode="r")
    except OSError as err:
        raise DataError(f"{path}: cannot open token file ({err.strerror or err})") from None


def advise_random(tokens: np.memmap) -> None:
    """Tell the OS that reads are random windows (madvise MADV_RANDOM), where supported.

    Without it every page fault reads ahead (zero-filling whole runs of a sparse file): in the
    tests, 256 windows of a 3 GiB file took 2.6 s instead of 3 ms.
    """
    buf = getattr(tokens, "_mmap", None)  # numpy's mmap.mmap object (private, so guarded)
    if buf is not None and hasattr(buf, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        buf.madvise(mmap.MADV_RANDOM)


def scan_vocab_size(tokens: np.ndarray, chunk: int = SCAN_CHUNK, path: str | None = None) -> int:
    """Largest token + 1, reading `chunk` tokens at a time (uint8 files: always 256).

    Args:
        tokens: the (N,) token map (its dtype says the format).
        chunk: tokens read per step; memory use is bounded by 2 * chunk bytes.
        path: the file behind `tokens`. When given, it is read with ordinary file reads into one
            reused buffer instead of through the map: touching every page of the map would leave
            the whole file resident in this process (RSS) for the run's lifetime.
    Returns:
        The vocabulary size.
    """
    if tokens.dtype == np.uint8:
        return 256
    if path is None:
        top = 0
        for start in range(0, len(tokens), chunk):
            top = max(top, int(tokens[start : start + chunk].max()))
        return top + 1
    return _scan_file(path, tokens.dtype, chunk) + 1


def _scan_file(path: str, dtype: np.dtype, chunk: int) -> int:
    """The largest token of a .bin file, read in chunks into one buffer (bounded memory)."""
    buf = np.empty(max(int(chunk), 1), dtype=dtype)
    view = memoryview(buf).cast("B")
    top = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            got = f.readinto(view)
            if not got:
                return top
            top = max(top, int(buf[: got // buf.itemsize].max()))


def perplexity(mean_loss: float) -> float:
    """exp(mean cross-entropy in nats); inf when it overflows, nan stays nan."""
    try:
        return math.exp(float(mean_loss))
    except OverflowError:
        return math.inf


def token_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of positions whose argmax logit is the target.

    Args:
        logits: (..., V) scores.
        y: (...) target ids, the leading shape of logits.
    Returns:
        A float in [0, 1].
    """
    return (logits.argmax(dim=-1) == y).float().mean().item()


class TokenStream:
    """Random training windows and fixed validation windows from one memory-mapped file."""

    def __init__(
        self,
        path: str,
        context_length: int,
        train_fraction: float,
        val_windows: int,
        device: str | torch.device = "cpu",
        scan_chunk: int = SCAN_CHUNK,
    ) -> None:
        """Open the file and check that both parts fit a window; raises DataError if not.

        Args:
            path: the token file.
            context_length: tokens per window (T).
            train_fraction: share of the file, from its start, used for training.
            val_windows: number of fixed validation windows (capped at the distinct ones).
            device: default device of the batches.
            scan_chunk: tokens per chunk when scanning a .bin file for vocab_size.
        """
        self.path = str(path)
        self.context_length = self.seq_len = int(context_length)
        self.train_fraction = float(train_fraction)
        self.val_windows = int(val_windows)
        self.device = device
        self.tokens = open_tokens(self.path)  # (N,) memmap
        n = len(self.tokens)
        self.n_train = min(max(round(n * self.train_fraction), 0), n)
        self.n_val = n - self.n_train
        need = self.context_length + 1
        if min(self.n_train, self.n_val) < need:
            raise DataError(
                f"{self.path}: {n} tokens is too short for context_length {self.context_length}"
                f" (train part {self.n_train}, validation part {self.n_val};"
                f" each needs at least {need})"
            )
        self.vocab_size = scan_vocab_size(self.tokens, scan_chunk, self.path)
        advise_random(self.tokens)

    def __getstate__(self) -> dict:
        # Pickle the path, not the mapped array (np.memmap would pickle a full copy).
        state = dict(self.__dict__)
        state["tokens"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.tokens = open_tokens(self.path)
        advise_random(self.tokens)

    def to(self, device: str | torch.device) -> "TokenStream":
        """A stream over the same file whose batches default to `device` (as AlgorithmicData.to)."""
        moved = copy.copy(self)  # via __getstate__: re-maps the file, copies nothing
        moved.device = device
        return moved

    def _bounds(self, split: str) -> tuple[int, int]:
        if split == "train":
            return 0, self.n_train
        if split == "val":
            return self.n_train, len(self.tokens)
        raise ValueError(f"split: got {split!r}, allowed: train, val")

    def _windows(self, starts: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Read windows at `starts` (B,) -> x, y (B, T) long on device."""
        idx = starts.cpu().numpy()[:, None] + np.arange(self.context_length + 1)  # (B, T+1)
        # Index a plain ndarray view of the map: fancy indexing the np.memmap object itself is
        # ~1000x slower. Only the B windows' pages are read.
        dev = torch.device(self.device if device is None else device)
        # For CUDA the windows are gathered into pinned memory and copied once without blocking
        # the host (torch's pinned allocator keeps a buffer until its copy has finished);
        # x and y are then cut on the device.
        pinned = dev.type == "cuda"
        win = torch.empty(idx.shape, dtype=torch.int64, pin_memory=pinned)  # (B, T+1)
        win.numpy()[...] = np.asarray(self.tokens)[idx]
        win = win.to(dev, non_blocking=pinned)
        return win[:, :-1].contiguous(), win[:, 1:].contiguous()

    def get_batch(
        self, split: str, batch_size: int, generator: torch.Generator, device=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows from one part of the file, drawn with `generator`.

        Args:
            split: "train" or "val".
            batch_size: number of windows B.
            generator: the trainer's torch.Generator (same state -> same batch).
            device: where x, y go (default: the stream's device).
        Returns:
            (x, y): LongTensors (B, T); y[:, t] is the token after x[:, t].
        """
        lo, hi = self._bounds(split)
        n_starts = hi - lo - self.context_length  # starts lo .. hi-T-1 keep the window inside
        starts = torch.randint(
            0, n_starts, (batch_size,), generator=generator, device=generator.device
        )  # (B,)
        return self._windows(starts.cpu() + lo, device)

    def val_starts(self) -> torch.Tensor:
        """The fixed validation window starts: evenly spaced, distinct. Returns (W,) long."""
        lo, hi = self._bounds("val")
        n_starts = hi - lo - self.context_length
        k = min(self.val_windows, n_starts)
        return lo + torch.arange(k) * n_starts // k  # (W,)

    def val_batches(
        self, batch_size: int, device=None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The same validation windows on every call, in batches of at most batch_size.

        Yields:
            (x, y): LongTensors (b, T), b <= batch_size.
        """
        starts = self.val_starts()
        for i in range(0, starts.shape[0], batch_size):
            yield self._windows(starts[i : i + batch_size], device)
