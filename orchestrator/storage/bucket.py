"""A sweep whose --storage is a bucket: Ray Tune writes to the bucket, groktune works locally.

orchestrator.storage.location's module doc says why. Here: the local working folder LOCAL/NAME is
created and marked with the bucket's URI (MARKER, read by orchestrator.sweep.driver.build_tuner for
RunConfig(storage_path=...)), the sweep runs as any other, and at the end Tune's result files
are copied from URI/NAME into LOCAL/NAME (checkpoints stay in the bucket), the tables are built
there and groktune's own files go up to URI/NAME.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.storage.location import Storage, is_checkpoint

# In the local working folder: the bucket URI Ray Tune writes to (0600: it may hold S3 keys).
# A dot name: sweep_folder.check_fresh does not count it as a foreign file.
MARKER = ".storage_uri"


def tune_storage_for(path: Path) -> str:
    """RunConfig(storage_path=...) for the sweep folder `path`: its bucket, else its parent folder."""
    marker = Path(path) / MARKER
    return marker.read_text().strip() if marker.is_file() else str(Path(path).parent)


def _remote(storage: Storage, name: str):
    """(pyarrow file system, path of URI/NAME on it)."""
    import pyarrow.fs  # deferred: as in orchestrator.storage.location.check_bucket, only a bucket needs it

    fs, base = pyarrow.fs.FileSystem.from_uri(storage.uri)
    return fs, f"{base.rstrip('/')}/{name}"


def run_bucket_sweep(cfg, storage: Storage, name: str | None, address: str | None, resume: bool, **kwargs):
    """orchestrator.sweep.driver.run_sweep into a bucket (see the module doc); returns its SweepOutcome.

    Raises:
        UserError: --resume (not supported for a bucket), or URI/NAME already holds something.
    """
    import pyarrow.fs  # deferred: as in orchestrator.storage.location.check_bucket, only a bucket needs it

    from orchestrator.sweep.results import collect  # deferred: pandas, needed once a sweep ran
    from orchestrator.sweep.driver import run_sweep  # deferred: orchestrator.sweep.driver imports this module

    name = name or cfg.name
    if resume:
        raise UserError(f"--resume: a sweep in a bucket ({storage.display}) cannot be resumed: its "
                        f"ledger is not kept in the bucket while it runs; rerun it with another --name")
    fs, remote = _remote(storage, name)
    if fs.get_file_info(remote).type != pyarrow.fs.FileType.NotFound:
        raise UserError(f"--storage: {storage.display} already holds {name}; choose another --name")
    path = storage.local / name
    created = not path.exists()
    if not created and any(path.iterdir()):
        raise UserError(f"--storage: the local working folder {path} is not empty; choose another --name "
                        f"(or remove it)")
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    marker.touch(mode=0o600)
    marker.write_text(storage.uri)
    try:
        outcome = run_sweep(cfg, storage.local, name, address, False, **kwargs)
    except BaseException:
        if created and not any(p.name != MARKER for p in path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)  # nothing ran: leave nothing behind
        raise
    pulled = pull_results(fs, remote, path)
    _, outcome.trials = collect(path)
    push_own(fs, remote, path, skip=pulled)
    return outcome


def pull_results(fs, remote: str, path: Path) -> set[str]:
    """Copy URI/NAME's files, except Tune's checkpoint folders, into `path`; returns their relative paths."""
    import pyarrow.fs  # deferred: as in orchestrator.storage.location.check_bucket, only a bucket needs it

    pulled = set()
    for info in fs.get_file_info(pyarrow.fs.FileSelector(remote, recursive=True)):
        relative = info.path[len(remote):].lstrip("/")
        if info.type != pyarrow.fs.FileType.File or is_checkpoint(relative):
            continue
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        pulled.add(relative)
    return pulled


def push_own(fs, remote: str, path: Path, skip: set[str]) -> int:
    """Upload every file of `path` that did not come from the bucket (groktune's own); returns the count."""
    count = 0
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = f.relative_to(path).as_posix()
        if relative in skip or f.name == MARKER:
            continue
        parent = Path(relative).parent.as_posix()
        fs.create_dir(remote if parent == "." else f"{remote}/{parent}", recursive=True)
        with open(f, "rb") as src, fs.open_output_stream(f"{remote}/{relative}") as dst:
            shutil.copyfileobj(src, dst)
        count += 1
    return count


__all__ = ["MARKER", "pull_results", "push_own", "run_bucket_sweep", "tune_storage_for"]
