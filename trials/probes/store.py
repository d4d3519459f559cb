"""Probe arrays on disk: one NPZ per probe kind under <artifacts_dir>/probes/, rewritten
atomically (temp file + rename) after every probe step, so a reader never sees a torn file.

Layout of <kind>.npz (plain numpy, readable with np.load(..., allow_pickle=False)):
    step            (S,) int64           the probe steps, increasing
    <key>           (S, ...)             one entry per probe step, stacked
    static/<key>    (...)                arrays fixed for the run (names, levels, tokens)
A resumed run keeps only the entries at or before the step it resumes from (as metrics.jsonl).

Side files: <kind>_steps/<step>.npz, one per probe step, written once and never rewritten (for
arrays too large to restack at every step, e.g. the logits the Fourier hindsight pass needs).
A reopened store deletes those past the step it resumes from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from groktune.layout import PROBE_DIR, write_atomic_with  # noqa: F401 (PROBE_DIR: re-exported)


class ProbeStore:
    """Accumulates per-step probe arrays and rewrites <folder>/<kind>.npz after each step."""

    def __init__(self, folder: str | Path, keep_until: int = 0):
        """Open `folder`; entries of existing files at steps <= keep_until are kept (0: none)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.series: dict[str, dict[str, list[np.ndarray]]] = {}
        self.static: dict[str, dict[str, np.ndarray]] = {}
        if keep_until > 0:
            for path in sorted(self.folder.glob("*.npz")):
                self._reload(path, keep_until)
        for path in self.folder.glob("*_steps/*.npz"):  # a rerun redoes the steps after keep_until
            if not path.stem.isdigit() or int(path.stem) > keep_until:
                path.unlink()

    def _reload(self, path: Path, keep_until: int) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return  # unreadable: start this kind afresh
        keep = data.get("step", np.zeros(0, np.int64)) <= keep_until
        kind = path.stem
        self.static[kind] = {k[len("static/"):]: v for k, v in data.items() if k.startswith("static/")}
        self.series[kind] = {k: list(v[keep]) for k, v in data.items() if not k.startswith("static/")}

    def add(self, kind: str, step: int, arrays: dict[str, np.ndarray], static: dict[str, np.ndarray] | None = None) -> Path:
        """Append one probe step of `kind` and rewrite its file.

        Args:
            arrays: per-step arrays; each key must keep its shape from step to step.
            static: run-constant arrays, stored once (the latest given wins).
        Returns:
            The path written.
        """
        series = self.series.setdefault(kind, {})
        if series.get("step") and series["step"][-1] >= step:  # a repeated step replaces the old one
            n = sum(1 for s in series["step"] if s < step)
            for key in series:
                del series[key][n:]
        series.setdefault("step", []).append(np.int64(step))
        for key, value in arrays.items():
            series.setdefault(key, []).append(np.asarray(value))
        if static:
            self.static.setdefault(kind, {}).update({k: np.asarray(v) for k, v in static.items()})
        return self._write(kind)

    def set_static(self, kind: str, static: dict[str, np.ndarray]) -> Path:
        """Add or replace run-constant arrays of `kind` (e.g. results of a pass at the end) and
        rewrite its file."""
        self.series.setdefault(kind, {})
        self.static.setdefault(kind, {}).update({k: np.asarray(v) for k, v in static.items()})
        return self._write(kind)

    def side_path(self, kind: str, step: int) -> Path:
        return self.folder / f"{kind}_steps" / f"{step:010d}.npz"

    def save_side(self, kind: str, step: int, arrays: dict[str, np.ndarray]) -> Path:
        """Write one step's side file (atomically: temp file + rename)."""
        path = self.side_path(kind, step)
        path.parent.mkdir(exist_ok=True)
        return _savez_atomic(path, arrays)

    def load_side(self, kind: str, step: int) -> dict[str, np.ndarray] | None:
        """One step's side file, or None when there is none (or it cannot be read)."""
        try:
            with np.load(self.side_path(kind, step), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None

    def _write(self, kind: str) -> Path:
        payload = {k: np.stack(v) for k, v in self.series[kind].items() if v}
        payload.update({f"static/{k}": v for k, v in self.static.get(kind, {}).items()})
        return _savez_atomic(self.folder / f"{kind}.npz", payload)


def _savez_atomic(path: Path, payload: dict[str, np.ndarray]) -> Path:
    """np.savez through the shared atomic write: readers never see a torn file."""
    return write_atomic_with(path, lambda f: np.savez(f, **payload))


class TensorBoardProbes:
    """Weight histograms and attention images in <artifacts_dir>/tensorboard (beside the scalars
    the run dir reporter writes there; TensorBoard reads every event file of a folder)."""

    def __init__(self, folder: str | Path):
        from torch.utils.tensorboard import SummaryWriter  # deferred: optional (ImportError when tensorboard is absent)

        self.writer = SummaryWriter(log_dir=str(folder))

    def histograms(self, step: int, named) -> None:
        for name, tensor in named:
            self.writer.add_histogram(f"weights/{name}", tensor.detach().float().cpu(), step)

    def attention(self, step: int, maps: dict) -> None:
        """One grayscale image per layer: the first example's heads side by side."""
        for name, w in maps.items():
            first = w[0].float().cpu()  # (H, T, T)
            scale = max(1, 64 // first.shape[-1])  # about 64 pixels per head
            img = first.permute(1, 0, 2).reshape(first.shape[1], -1)  # (T, H*T)
            img = img.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
            self.writer.add_image(f"attention/{name}", img[None], step, dataformats="CHW")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
