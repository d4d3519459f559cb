"""Where a sweep's results go: `--storage` as a folder, a file:// URI or a bucket URI.

Two kinds of place, one rule each:

- A folder: a plain path or file:///ABSOLUTE/PATH (the same thing spelled as a URI). On one
  machine that is local disk; on several nodes (Slurm, multi-node Ray) it must be a shared file
  system every node mounts at the same path (NFS, Lustre, ...), because each trial writes its
  checkpoints there from the node it runs on. Everything lives in STORAGE/NAME: Ray Tune's files
  and checkpoints and groktune's own (experiment.yaml, ledger/, driver.heartbeat, the tables),
  so --resume and the sweep's crash consistency (atomic renames, exclusive claims,
  append-only start counts) hold there.
- A bucket: any URI that pyarrow.fs opens (s3://, gs://, abfs://, hdfs://), which is what Ray
  Tune's RunConfig(storage_path=...) accepts. Ray Tune writes its experiment state, results
  and every trial's checkpoints to URI/NAME from whichever node the trial runs on (what a
  Kubernetes cluster without a shared volume needs). groktune's own files live in a local
  working folder on the driver, LOCAL/NAME with LOCAL = $GROKTUNE_STAGING (default
  ~/.cache/groktune/storage) / scheme / bucket / path, where the ledger keeps its atomic
  renames. When the sweep ends, Tune's result files (not the checkpoints) are copied into it,
  the tables are built there, and groktune's files are uploaded to URI/NAME: the bucket holds
  the whole sweep and LOCAL/NAME a copy `groktune report` and `status` read. An object store
  has no atomic rename or exclusive create for the ledger, so it is not written there while the
  sweep runs, and --resume of a bucket sweep is refused: a driver lost mid-sweep loses its
  bookkeeping, and that sweep is rerun under a new --name (its checkpoints stay in the bucket).

Schemes only fsspec knows are refused: Ray Tune's storage goes through pyarrow.fs; mount such a
store and pass the mount path. Every refusal is one line, before Ray starts; a store that does
not answer within CHECK_TIMEOUT_S is refused too (offline, pyarrow's GCS client retries for minutes).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from groktune.names import check_name
from orchestrator.errors import UserError

STAGING_ENV = "GROKTUNE_STAGING"
DEFAULT_STAGING = "~/.cache/groktune/storage"
# A URI is scheme://...; anything else (even with a colon in it) is a path.
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Seconds check_bucket waits for the store before it gives up.
CHECK_TIMEOUT_S = 20.0
# Object stores whose first path component is a bucket (container) that must exist already.
BUCKET_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss")
# Ray Tune's checkpoint folders in a trial folder: they stay in the bucket.
_CHECKPOINT = re.compile(r"^checkpoint_\d+$")


@dataclass(frozen=True)
class Storage:
    """A parsed --storage: `local` holds the sweep folders groktune reads; `uri` is the bucket
    Ray Tune writes to (None for a folder)."""

    local: Path
    uri: str | None = None

    @property
    def display(self) -> str:
        """For messages: the folder, or the URI without keys (user:password@, ?query)."""
        return _safe(self.uri) if self.uri else str(self.local)


def parse_storage(value: str | Path, flag: str = "--storage") -> Storage:
    """A --storage value as a folder or a bucket (see the module doc); UserError when neither.

    Only the spelling is checked here (nothing is opened); check_bucket opens a bucket.

    Args:
        value: a path, a file:// URI or a URI pyarrow.fs opens.
        flag: the flag named in errors.
    Returns:
        The Storage (a plain path as given, not resolved: messages show the user's spelling).
    """
    text = str(value)
    match = _URI.match(text)
    if match is None:
        return Storage(Path(text).expanduser())
    if match.group(1).lower() == "file":
        return Storage(file_uri_path(text, flag))
    return Storage(staging_root(text, flag), uri=text.rstrip("/"))


def file_uri_path(uri: str, flag: str = "--storage") -> Path:
    """The absolute path of file:///PATH (or file://localhost/PATH); UserError for any other form."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise UserError(f"{flag} {uri}: a file:// URI names this machine's files; "
                        f"write file:///ABSOLUTE/PATH (host {parts.netloc!r} given)")
    if parts.query or parts.fragment:
        raise UserError(f"{flag} {uri}: a file:// URI takes no ?query or #fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise UserError(f"{flag} {uri}: expected file:///ABSOLUTE/PATH")
    return Path(path).resolve()


def check_bucket(uri: str, flag: str = "--storage", timeout: float = CHECK_TIMEOUT_S) -> None:
    """Open `uri` with pyarrow.fs, as Ray Tune will, and check that its bucket exists.

    Args:
        uri: the bucket URI.
        flag: the flag named in errors.
        timeout: seconds to wait for the store (offline, pyarrow's GCS client retries for minutes).
    Raises:
        UserError: one line: unknown scheme, no library for it, cannot connect, no such bucket, or
        no answer within `timeout`.
    """
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(_open_bucket(uri, flag)), daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():  # left behind: the CLI exits on the error, a daemon thread does not hold it
        raise UserError(f"{flag} {_safe(uri)}: no answer from the store within {timeout:g} s "
                        f"(network, endpoint or credentials?)")
    if outcome and outcome[0] is not None:
        raise outcome[0]


def _open_bucket(uri: str, flag: str) -> UserError | None:
    """check_bucket's work: the UserError to raise, or None when the bucket is there."""
    import pyarrow.fs  # deferred: pyarrow is needed only for a bucket, not for a folder

    scheme = _URI.match(uri).group(1)
    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    except pyarrow.ArrowInvalid as err:
        if "Unrecognized filesystem type" in str(err):
            return UserError(f"{flag} {_safe(uri)}: unknown scheme {scheme}://; use a folder, file:///PATH, or a URI "
                             f"pyarrow.fs opens (s3://, gs://, abfs://, hdfs://), as Ray Tune does")
        return UserError(f"{flag} {_safe(uri)}: {_first_line(err)}")
    except pyarrow.ArrowNotImplementedError as err:  # pyarrow built without this file system
        return UserError(f"{flag} {_safe(uri)}: this pyarrow cannot open {scheme}:// ({_first_line(err)})")
    except (OSError, ImportError) as err:  # no libjvm/libhdfs, no network, bad credentials ...
        return UserError(f"{flag} {_safe(uri)}: cannot open it ({_first_line(err)})")
    if scheme.lower() not in BUCKET_SCHEMES:
        return None  # hdfs:// and the like: folders, which Ray Tune creates
    bucket = path.split("/", 1)[0]
    try:
        found = fs.get_file_info(bucket).type != pyarrow.fs.FileType.NotFound
    except OSError as err:
        return UserError(f"{flag} {_safe(uri)}: cannot reach bucket {bucket!r} ({_first_line(err)})")
    if not found:
        return UserError(f"{flag} {_safe(uri)}: bucket {bucket!r} not found (groktune does not create buckets)")
    return None


def staging_root(uri: str, flag: str = "--storage") -> Path:
    """The local folder that holds a bucket's sweep folders on the driver (see the module doc)."""
    parts = urlsplit(uri)
    if not parts.hostname:
        raise UserError(f"{flag} {_safe(uri)}: expected SCHEME://BUCKET/PATH (no bucket given)")
    host = parts.hostname  # user:password@ and :port are not part of the folder name
    pieces = [parts.scheme.lower(), host, *(p for p in unquote(parts.path).split("/") if p)]
    for piece in pieces:
        try:
            check_name(piece)
        except ValueError as err:
            raise UserError(f"{flag} {_safe(uri)}: {err}") from None
    base = Path(os.environ.get(STAGING_ENV) or DEFAULT_STAGING).expanduser()
    return base.resolve().joinpath(*pieces)


def local_sweep_folder(value: str | Path, flag: str = "DIR") -> Path:
    """The local sweep folder a command reads: a path, file:///PATH, or for a bucket sweep's URI
    (URI/NAME) its local working copy, staging_root(URI/NAME) (nothing is downloaded)."""
    text = str(value)
    match = _URI.match(text)
    if match is None:
        return Path(text).expanduser()
    if match.group(1).lower() == "file":
        return file_uri_path(text, flag)
    return staging_root(text, flag)


def tune_storage_path(storage: Storage) -> str:
    """What Ray Tune's RunConfig(storage_path=...) gets: the bucket URI, or the local folder."""
    return storage.uri or str(storage.local)


def is_checkpoint(relative: str) -> bool:
    """Whether a path relative to a sweep folder lies inside one of Tune's checkpoint folders."""
    return any(_CHECKPOINT.match(part) for part in relative.split("/"))


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return (text or type(err).__name__)[:200]


def _safe(uri: str) -> str:
    """The URI without user:password@ or ?query (pyarrow takes S3 keys in both; never print them)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc and not parts.query and not parts.fragment:
        return uri
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1], query="", fragment="").geturl()


__all__ = ["STAGING_ENV", "Storage", "check_bucket", "file_uri_path", "is_checkpoint", "local_sweep_folder",
           "parse_storage", "staging_root", "tune_storage_path"]
