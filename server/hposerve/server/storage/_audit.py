"""The audit log: an append-only table, written in batches by one thread.

Every mutation and every denial is appended, so a call must not wait for the database: records
go to a bounded queue, and a writer thread inserts what has arrived every ``interval`` seconds
(0.1 s) in one transaction. A process killed at once loses at most that much of the log; what
was written stays (the database's own durability). Nothing here updates or deletes a row.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

import sqlalchemy as sa

from hposerve.server.domain._admin import AuditRecord

__all__ = ["AuditLog"]

_logger = logging.getLogger(__name__)
_BATCH = 1000
_QUEUE_LIMIT = 100_000  # past it, append waits for the writer: back-pressure, not loss


class AuditLog:
    """Appends audit records in the background and reads them back.

    Thread-safety: ``append`` and ``read`` may be called from any thread; ``start`` and
    ``close`` once each. ``append`` before ``start`` queues.
    """

    def __init__(self, engine: sa.Engine, table: sa.Table, *, interval: float = 0.1) -> None:
        self._engine = engine
        self._table = table
        self._interval = interval
        # A deque: append and popleft are atomic, and cost no lock on the calls' path.
        self._pending: collections.deque[AuditRecord] = collections.deque()
        self._writing = False  # the writer holds records it has taken but not yet written
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write_forever, name="hposerve-audit", daemon=True
            )
            self._thread.start()

    def append(self, record: AuditRecord) -> None:
        """Queues ``record`` for writing (waits only while the writer is far behind)."""
        while len(self._pending) >= _QUEUE_LIMIT and self._thread is not None:
            time.sleep(self._interval)
        self._pending.append(record)

    def flush(self) -> None:
        """Returns once every record appended so far is written."""
        if self._thread is None:
            self._write_pending()
            return
        while self._pending or self._writing:
            time.sleep(self._interval / 10)

    def close(self) -> None:
        """Writes what is queued and stops the writer."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._write_pending()

    def read(self, *, namespace: str | None, before: int | None, limit: int) -> list[AuditRecord]:
        """Records newest first, of one namespace or all, with sequence below ``before``."""
        c = self._table.c
        query = sa.select(self._table)
        if namespace is not None:
            query = query.where(c.namespace == namespace)
        if before is not None:
            query = query.where(c.seq < before)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(c.seq.desc()).limit(limit)).all()
        return [
            AuditRecord(
                time=r.time,
                principal=r.principal,
                namespace=r.namespace,
                method=r.method,
                resource=r.resource,
                request_id=r.request_id,
                outcome=r.outcome,
                sequence=r.seq,
            )
            for r in rows
        ]

    def _write_forever(self) -> None:
        # One transaction per interval, of what has arrived since.
        while not self._stop.wait(self._interval):
            self._write_pending()

    def _write_pending(self) -> None:
        while self._pending:
            self._writing = True  # before taking, so that flush() sees them in one or the other
            batch = [self._pending.popleft() for _ in range(min(_BATCH, len(self._pending)))]
            self._write(batch)
            self._writing = False

    def _write(self, batch: list[AuditRecord]) -> None:
        if not batch:
            return
        rows = [
            {
                "time": r.time,
                "principal": r.principal,
                "namespace": r.namespace,
                "method": r.method,
                "resource": r.resource[:1024],
                "request_id": r.request_id[:128],
                "outcome": r.outcome,
            }
            for r in batch
        ]
        for attempt in range(1, 4):
            try:
                with self._engine.begin() as conn:
                    conn.execute(self._table.insert(), rows)
                return
            except sa.exc.SQLAlchemyError:
                _logger.exception(
                    "writing %d audit records failed (try %d of 3)", len(rows), attempt
                )
                time.sleep(0.5 * attempt)
        _logger.error("dropped %d audit records: the database refuses them", len(rows))
