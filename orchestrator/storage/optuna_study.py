"""Where a TPE sweep keeps its Optuna study: `search.optuna_storage`, checked and opened.

    search:
      optuna_storage: sqlite:///results/demo.db        # an RDB URL (sqlite, postgresql, mysql, ...)
      optuna_storage: journal:results/demo.optuna.log  # a JournalStorage file
      optuna_storage: results/demo.optuna.log          # the same: a path ending in .log / .journal

Empty (the default) keeps the study in the driver's memory (and in Tune's searcher snapshot).
With a storage, `optuna-dashboard URL_OR_FILE` follows the sweep live: every trial, its
intermediate values at optimizer steps, and PRUNED for trials the scheduler stopped
(orchestrator.search.optuna_searcher). A journal file needs no database server and takes concurrent
writers through a file lock, so it is the simple choice on one machine or a shared file system.

`check_storage` is pure (validation imports it before Ray or Optuna); `open_storage` imports
Optuna and turns a failure to open into one UserError line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from groktune.errors import UserError

JOURNAL_PREFIX = "journal:"
JOURNAL_SUFFIXES = (".log", ".journal")
# SQLAlchemy dialects Optuna's RDBStorage is used with; "+driver" may follow (postgresql+psycopg2).
RDB_DIALECTS = ("sqlite", "postgresql", "mysql", "oracle", "mssql", "mariadb")
_URL = re.compile(r"^(?P<dialect>[a-z][a-z0-9]*)(\+[a-z0-9_]+)?://")


@dataclass(frozen=True)
class StorageSpec:
    """A parsed optuna_storage value."""

    kind: str
    """"rdb" or "journal"."""
    target: str
    """The RDB URL, or the journal file path."""


def check_storage(value: str) -> StorageSpec | None:
    """Parse `search.optuna_storage`; None for empty (in-memory study).

    Args:
        value: an RDB URL, `journal:PATH`, or a path ending in .log / .journal.
    Returns:
        The StorageSpec.
    Raises:
        ValueError (one line, naming the value and what is allowed) for anything else.
    """
    if not value:
        return None
    allowed = (f"allowed: an RDB URL ({', '.join(d + '://' for d in RDB_DIALECTS[:3])}...), "
               f"'{JOURNAL_PREFIX}PATH' or a file ending in {' / '.join(JOURNAL_SUFFIXES)}")
    if not value.isprintable():
        raise ValueError(f"optuna_storage: got a URL with control characters ({value!r}); {allowed}")
    if value != value.strip():
        raise ValueError(f"optuna_storage: got {value!r} with surrounding spaces; {allowed}")
    if value.startswith(JOURNAL_PREFIX):
        path = value[len(JOURNAL_PREFIX):]
        if not path or path.endswith(("/", "\\")):
            raise ValueError(f"optuna_storage: got {value!r}: the journal needs a file path; {allowed}")
        return StorageSpec("journal", path)
    match = _URL.match(value)
    if match:
        if match["dialect"] not in RDB_DIALECTS:
            raise ValueError(f"optuna_storage: got {value!r}: unknown database {match['dialect']!r}; {allowed}")
        return StorageSpec("rdb", value)
    if "://" not in value and value.lower().endswith(JOURNAL_SUFFIXES):
        return StorageSpec("journal", value)
    raise ValueError(f"optuna_storage: got {value!r}; {allowed}")


def open_storage(value: str):
    """The Optuna storage object for `value` (None when empty), for OptunaSearch(storage=...).

    Args:
        value: a search.optuna_storage value (check_storage's forms).
    Returns:
        optuna.storages.RDBStorage, optuna.storages.JournalStorage or None.
    Raises:
        UserError when it cannot be opened (missing driver, unreachable server, unwritable folder).
    """
    try:
        spec = check_storage(value)
    except ValueError as err:
        raise UserError(f"search.{err}") from None
    if spec is None:
        return None
    import optuna  # deferred: validation imports this module and must stay light

    try:
        if spec.kind == "rdb":
            return optuna.storages.RDBStorage(spec.target)
        path = Path(spec.target).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)  # like sqlite:///, the file may be new
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    except Exception as err:  # noqa: BLE001 - bad URL, missing driver, unreachable database, bad path
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise UserError(f"search.optuna_storage: cannot open {value!r} ({first})") from None


__all__ = ["JOURNAL_PREFIX", "JOURNAL_SUFFIXES", "RDB_DIALECTS", "StorageSpec", "check_storage", "open_storage"]
