"""The embedded default storage: an append-only journal file owned by one server process.

Optuna's ``JournalStorage`` keeps the whole replayed state in memory and persists each change
as one JSON line through a backend. Optuna's own file backend is built for many processes
sharing one file: every write takes a file lock and fsyncs, and every read re-opens the file.
This backend is for the case where one server owns the file, which an exclusive ``flock``
enforces. A write is then a single ``write(2)`` on an ``O_APPEND`` descriptor, and reads come
from memory: after the initial replay every log line was written by this process.

Durability: a write returns once the kernel holds the line, so acknowledged writes survive a
crash or ``kill -9`` of the server. Surviving a power loss needs ``fsync=True``, which syncs
every write to disk (slower). A line torn by a power loss is dropped on the next open.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from optuna.storages.journal import BaseJournalBackend

_logger = logging.getLogger(__name__)


class StorageLocked(RuntimeError):
    """Another process holds the journal."""


class LocalJournalBackend(BaseJournalBackend):
    """Append-only journal file with an in-memory tail of unread lines.

    Thread-safety: not thread-safe on its own; ``JournalStorage`` calls it under its lock.

    Raises:
        StorageLocked: from the constructor, when another process has the file open.
        ValueError: from the constructor, when a line before the last one is corrupt.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self._path = os.fspath(path)
        self.fsync = fsync
        os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
        self._lock_fd = os.open(self._path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StorageLocked(
                f"{self._path} is in use by another hposerve server; "
                "stop it or use another data directory"
            ) from None
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            # Lines not yet read by JournalStorage; _tail[0] has log number _tail_start.
            self._tail: list[dict[str, Any]] = self._load()
        except BaseException:
            self.close()
            raise
        self._tail_start = 0

    def _load(self) -> list[dict[str, Any]]:
        with open(self._path, "rb") as f:
            data = f.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # Only the last write can be torn (a power loss mid-write): it was never
            # acknowledged, so dropping it loses nothing.
            _logger.warning(
                "dropping a torn last line of %d bytes in %s", len(data) - end, self._path
            )
            os.ftruncate(self._fd, end)
        logs = []
        for number, line in enumerate(data[:end].splitlines()):
            try:
                logs.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{self._path}: line {number + 1} is corrupt: {e}") from e
        return logs

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        consumed = log_number_from - self._tail_start
        if consumed < 0:
            raise ValueError(
                f"log {log_number_from} was already read; the journal only goes forward"
            )
        del self._tail[:consumed]
        self._tail_start = log_number_from
        return iter(list(self._tail))

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        if self.fsync:
            os.fsync(self._fd)
        self._tail.extend(logs)

    def close(self) -> None:
        """Releases the file and its lock. Idempotent."""
        if self._fd >= 0:
            os.close(self._fd)
            os.close(self._lock_fd)
            self._fd = self._lock_fd = -1

    @property
    def path(self) -> str:
        return self._path


class JournalFileReader(BaseJournalBackend):
    """Reads a journal file that a ``LocalJournalBackend`` in another process writes: each read
    returns the lines appended since the last one. It never writes (the writer holds the lock).

    A sampling process reads the server's journal with it. The writer appends each batch of
    lines with one ``write(2)``, which a reader may see half done: the part of a line after the
    last newline waits for the next read.

    Thread-safety: not thread-safe on its own; ``JournalStorage`` calls it under its lock.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (open for the reader's life)
        self._partial = b""
        self._read = 0  # log lines handed out so far

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        if log_number_from != self._read:
            raise ValueError(f"log {log_number_from} asked; this reader is at {self._read}")
        data = self._partial + self._file.read()
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        logs = [json.loads(line) for line in data[:end].splitlines()]
        self._read += len(logs)
        return iter(logs)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        raise PermissionError("a journal reader does not write; the server does")

    def close(self) -> None:
        self._file.close()
