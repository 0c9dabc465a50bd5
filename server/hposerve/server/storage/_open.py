"""Opening Optuna storages from URLs, and the embedded default.

| URL                                   | storage                                          |
|---------------------------------------|--------------------------------------------------|
| none (default)                        | embedded journal in the data directory           |
| ``postgresql…://…``                   | hposerve's PostgreSQL journal, replayed by       |
|                                       | Optuna's ``JournalStorage`` (replicas share it)  |
| ``postgresql…://…?hposerve_backend=rdb``, | Optuna's ``RDBStorage`` (with Optuna's cache) |
| ``sqlite:///…``, ``mysql…://…``       |                                                  |
| ``journal:///path/to/file.log``       | Optuna's ``JournalStorage`` on a shared file     |
| ``redis://…``, ``rediss://…``         | Optuna's ``JournalStorage`` on Redis             |

A PostgreSQL database (or ``hposerve_schema``) that already holds Optuna's RDB tables and no
journal keeps being opened with ``RDBStorage``, so studies written there stay readable; see
``postgres_layout``. ``?hposerve_backend=rdb`` asks for Optuna's schema explicitly (other Optuna
tools such as optuna-dashboard read it), ``?hposerve_backend=journal`` for the journal.
"""

from __future__ import annotations

import functools
import os
import pathlib
import sys
import time
from collections.abc import Callable

import optuna
import sqlalchemy.exc
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.domain._optuna import wrapped_backend
from hposerve.server.storage._journal import JournalFileReader, LocalJournalBackend
from hposerve.server.storage._pg_url import JOURNAL_LAYOUT, is_postgres_url, split_options

DEFAULT_DATA_DIR = "hposerve-data"
JOURNAL_FILE = "studies.journal"
_RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def open_storage(
    url: str | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    fsync: bool = False,
) -> BaseStorage:
    """Opens the storage a server runs on.

    Args:
        url: An Optuna storage URL, or None for the embedded default.
        data_dir: Where the embedded default keeps its journal (default ``./hposerve-data``).
        fsync: With the embedded default, sync every write to disk (survives power loss).

    Raises:
        InvalidArgument: the URL's scheme is not one of the supported ones, or its
            ``hposerve_*`` options are bad.
        psycopg.OperationalError: a PostgreSQL URL's database cannot be reached.
    """
    if not url:
        journal = pathlib.Path(data_dir or DEFAULT_DATA_DIR) / JOURNAL_FILE
        return JournalStorage(LocalJournalBackend(journal, fsync=fsync))
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in _RDB_SCHEMES:
        if is_postgres_url(url):
            # psycopg comes with the postgres extra: imported only when a URL needs it.
            from hposerve.server.storage import _pg_journal, _pg_storage

            if _pg_journal.postgres_layout(url) == JOURNAL_LAYOUT:
                backend = _pg_journal.PostgresJournalBackend(url)
                return _pg_storage.PostgresJournalStorage(backend)
        rdb_url, options = split_options(url)
        if "schema" in options or options.get("backend") == JOURNAL_LAYOUT:
            raise InvalidArgument(
                "hposerve_schema and hposerve_backend=journal apply to the PostgreSQL journal "
                "only; for Optuna's RDB schema in PostgreSQL, set the search path instead "
                "(?options=-csearch_path%3DNAME)",
                field="storage",
            )
        return _open_rdb(rdb_url)
    if scheme == "journal":
        path = url.removeprefix("journal://")
        if not path:
            raise InvalidArgument("journal URLs name a file: journal:///path/to/file.log")
        return JournalStorage(JournalFileBackend(path))
    if scheme in ("redis", "rediss"):
        return JournalStorage(JournalRedisBackend(url))
    raise InvalidArgument(
        f"unsupported storage URL scheme {scheme!r}; use sqlite:///, postgresql+psycopg://, "
        "mysql://, journal:///path or redis://",
        field="storage",
    )


def _open_rdb(url: str, attempts: int = 5) -> BaseStorage:
    # Replicas that start together on a fresh database race to create Optuna's schema: the
    # loser's CREATE fails on what the winner just made, and opening again finds it there.
    for attempt in range(1, attempts):
        try:
            return optuna.storages.get_storage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            time.sleep(0.2 * attempt)
    return optuna.storages.get_storage(url)


def mirror_of(storage: BaseStorage) -> Callable[[], BaseStorage] | None:
    """How another process opens ``storage`` to read what this one writes (a picklable
    callable: the server's sampling processes call it), or None when it cannot.

    The embedded journal is read from its file; the PostgreSQL journal from the database, as a
    replica does. Other storages are not mirrored (their samplers run in the server).
    """
    backend = wrapped_backend(storage)
    if isinstance(backend, LocalJournalBackend):
        return functools.partial(_read_journal_file, backend.path)
    pg_journal = sys.modules.get("hposerve.server.storage._pg_journal")
    if pg_journal is not None and isinstance(backend, pg_journal.PostgresJournalBackend):
        return functools.partial(JournalStorage, backend)  # a pickled copy opens its own connection
    return None


def _read_journal_file(path: str) -> BaseStorage:
    return JournalStorage(JournalFileReader(path))


def is_exclusive(storage: BaseStorage) -> bool:
    """Whether this process is the only writer of ``storage`` (the embedded default)."""
    return isinstance(wrapped_backend(storage), LocalJournalBackend)


def answers_from_memory(storage: BaseStorage) -> bool:
    """Whether calls on ``storage`` take microseconds: the embedded default, which reads from
    memory and writes with one local ``write(2)``, when it does not wait for the disk."""
    backend = wrapped_backend(storage)
    return isinstance(backend, LocalJournalBackend) and not backend.fsync


def close_storage(storage: BaseStorage) -> None:
    """Releases what a storage holds open (files, locks, connection pools)."""
    backend = wrapped_backend(storage)
    # Never imported means no PostgreSQL journal was opened (and psycopg may be missing).
    pg_journal = sys.modules.get("hposerve.server.storage._pg_journal")
    if (
        isinstance(backend, LocalJournalBackend)
        or pg_journal is not None
        and isinstance(backend, pg_journal.PostgresJournalBackend)
    ):
        backend.close()
    elif isinstance(backend, optuna.storages.RDBStorage):
        backend.engine.dispose()
