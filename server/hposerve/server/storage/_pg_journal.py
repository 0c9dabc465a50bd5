"""A PostgreSQL backend for Optuna's ``JournalStorage``: replicas share one ordered log.

Every replica keeps the whole study state in memory (Optuna's ``JournalStorage`` replays the
log) and reads only the logs it has not seen; the database orders and keeps the writes.

Ordering, and why a reader cannot skip a log. A log's number is its position: ``seq`` is
dense (0, 1, 2, ...) and ``read_logs(n)`` is ``WHERE seq >= n``. An append is one statement
(the ``hposerve_journal_append`` function) that first updates the single row of
``hposerve_journal_head`` (taking that row's lock until commit) to reserve the next numbers,
then inserts its rows. So appends are serialized, and a
batch gets its numbers only after the previous batch has committed: PostgreSQL makes a commit
visible before it releases the transaction's locks. Hence if a reader's snapshot shows batch
k+1, batch k committed earlier and shows too: every snapshot holds a gapless prefix of the
log. An aborted append rolls its head update back with its rows, so it leaves no hole. (A
``bigserial`` read with ``id > last`` skips: ids 5 and 6 taken, 6 commits first, a reader
sees 6, then never reads 5.) Reads check the numbers anyway and raise on a hole.

Round trips and commits. ``JournalStorage`` appends one batch, then reads what is new: the
append's statement returns the logs from where this replica had read up to its own batch
(its last query takes a fresh snapshot, after the head's lock), so a write costs one round
trip and one statement (with group commit, two, pipelined). ``JournalStorage`` also
reads before every read of its own, several per registry call: within a call, a read queries
only if no fetch was sent since the call began (``_consistency``), so a call costs one query
plus its writes, and calls of many threads at once share queries. Within a replica, the
threads that append at once go as one append (``_send_queued``: whoever gets the connection
sends every batch queued meanwhile), and reads travel on a connection of their own, so that
a sync that must query does not wait for an append on its way. All
appends of all replicas queue on the head row, so the time it is held bounds the total write
rate. With ``group_commit`` (the default) the append commits without waiting for the WAL flush
(``synchronous_commit`` off for that transaction only) and releases the order; then a small
synchronous write on the connection's own row of ``hposerve_journal_flush`` waits until the
WAL is flushed up to it, hence past the append, before the append returns. Flushes are thus
shared by all appenders instead of taken one at a time under the order, and an append is still
acknowledged only once it is durable. The price: other replicas may read a log a few hundred
microseconds before it is durable, and if the database crashes in that window the log is gone
while they have applied it. Every connection dies in such a crash, so on reconnecting a
replica checks that the last log it read is still there, and raises ``JournalLost`` (restart
the replica, which replays the journal) if not. ``group_commit=False`` commits under the order.

Snapshots. Optuna offers a pickled replay state every 100 trials (``BaseJournalSnapshot``);
this backend stores it, with the log number it covers, when at least ``snapshot_every`` logs
have come since the last one, so a restart replays at most about that many logs. Snapshots
are per Optuna version (a pickle of another version is not loaded). Whoever can write the
snapshot table can make replicas unpickle what they like: give the database the trust you
give the servers.
"""

from __future__ import annotations

import json
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import optuna
import psycopg
from optuna.storages.journal import BaseJournalBackend

# Optuna exports no name for its snapshot interface; JournalStorage checks isinstance against
# this class (pinned by tests/server/storage/test_pg_journal.py).
from hposerve.server.domain._consistency import call_started
from hposerve.server.domain._optuna import BaseJournalSnapshot
from hposerve.server.domain._turns import write_queued
from hposerve.server.storage import _pg_schema
from hposerve.server.storage._pg_tail import PAGE, Fetched, Row, Tail
from hposerve.server.storage._pg_url import libpq_url, split_options


class _Queued:
    """One ``append_logs`` call's logs, waiting to be sent; then whether they were, and how."""

    __slots__ = ("texts", "done", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = False
        self.error: Exception | None = None


class _Link:
    """One connection, its kept cursors, and the lock it is used under."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: psycopg.Connection[Any] | None = None
        self.cursors: dict[str, psycopg.Cursor[Any]] = {}  # of conn, by use

    def connection(self, open_: Callable[[], psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
        """The connection, opened with ``open_`` if there is none or it broke."""
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = open_()
            self.cursors = {}
        return self.conn

    def cursor(self, use: str) -> psycopg.Cursor[Any]:
        """The cursor for ``use`` (a statement of the hot path), kept: making one per statement
        cost about 45 µs of CPU and 80 µs of wall time. Call after ``connection``."""
        assert self.conn is not None
        cursor = self.cursors.get(use)
        if cursor is None:
            cursor = self.cursors[use] = self.conn.cursor()
        return cursor

    def discard(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class JournalGap(RuntimeError):
    """The journal table has a hole or a duplicate: something other than this backend wrote it."""


class JournalLost(RuntimeError):
    """Logs this replica had read are gone from the database (it crashed before flushing them,
    or failed over to a standby that lacks them); restart the replica to replay the journal."""


class PostgresJournalBackend(BaseJournalBackend, BaseJournalSnapshot):
    """Optuna journal on PostgreSQL; ``JournalStorage(PostgresJournalBackend(url))``.

    Thread-safety: thread-safe (one connection under a lock); ``JournalStorage`` calls it
    under its own lock anyway. Process-safe: any number of processes and replicas may append
    and read at once. Picklable (the copy opens its own connection).

    Args:
        url: ``postgresql+psycopg://user@host:port/db`` (any SQLAlchemy driver name, or a
            plain libpq ``postgresql://`` URL); ``?hposerve_schema=NAME`` puts the tables in
            that schema.
        schema: The schema for the tables (created if missing); overrides the URL's. None: the
            connection's search path (usually ``public``).
        snapshot_every: Store a snapshot when Optuna offers one and at least this many logs
            came since the last; None never stores nor loads snapshots (a restart replays all).
        group_commit: Wait for the WAL flush after releasing the order, so that appenders share
            flushes (see the module docstring); False waits under the order.
        connect_timeout: Seconds to wait for the database when connecting.

    Raises:
        psycopg.OperationalError: from the constructor and the calls, when the database cannot
            be reached (a call retries once on a new connection first).
        InvalidArgument: from the constructor, when ``url`` is not a PostgreSQL URL.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        snapshot_every: int | None = 10_000,
        group_commit: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        self._url = url
        self._conninfo = libpq_url(url)
        self._schema = schema or split_options(url)[1].get("schema")
        self._snapshot_every = snapshot_every
        self._group_commit = group_commit
        self._connect_timeout = connect_timeout
        self._sql = _pg_schema.Statements.for_schema(self._schema)
        self._init_state()
        with self._lock:
            _pg_schema.create_schema(self._connection(), self._sql)

    def _init_state(self) -> None:
        # Two connections: appends and snapshots on one, reads on the other, so that a sync
        # that must query does not wait for an append on its way (nor hold the storage's lock
        # meanwhile).
        self._writer, self._reader = _Link(), _Link()
        self._lock = self._writer.lock
        # Batches waiting for the connection: the next append sends them all (group commit).
        self._queue_lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._closed = False
        # Where the next read_logs is expected to start: an append prefetches from there.
        self._next_read = 0
        # The rows last fetched (by a read, or after an append) and when that fetch was sent: a
        # read in a call that began before then needs no query.
        self._fetched = Fetched()
        self._snapshot_log_number = 0
        # The last log read, (number, text): on reconnecting, it must still be there.
        self._last_read: Row | None = None
        self._lost: JournalLost | None = None

    @property
    def schema(self) -> str | None:
        """The schema holding the tables, or None for the search path."""
        return self._schema

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self._url,
            "schema": self._schema,
            "snapshot_every": self._snapshot_every,
            "group_commit": self._group_commit,
            "connect_timeout": self._connect_timeout,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        url = state.pop("url")
        self.__init__(url, **state)  # type: ignore[misc]  # connects, as a new backend does

    def close(self) -> None:
        """Closes the connections. Idempotent; the backend cannot be used afterwards."""
        for link in (self._writer, self._reader):
            with link.lock:
                self._closed = True
                link.discard()

    # Connection handling ---------------------------------------------------------------

    def _connection(self, link: _Link | None = None) -> psycopg.Connection[Any]:
        """The connection of ``link`` (the writer's by default); call with its lock held."""
        if self._closed:
            raise RuntimeError("the PostgreSQL journal backend is closed")
        if self._lost is not None:
            raise self._lost
        return (link or self._writer).connection(self._open)

    def _cursor(self, use: str, link: _Link | None = None) -> psycopg.Cursor[Any]:
        self._connection(link)
        return (link or self._writer).cursor(use)

    def _open(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=max(1, round(self._connect_timeout))
        )
        self._check_not_lost(conn)
        return conn

    def _check_not_lost(self, conn: psycopg.Connection[Any]) -> None:
        if self._last_read is None:
            return
        seq, text = self._last_read
        row = conn.execute(self._sql.log_at, (seq,)).fetchone()  # type: ignore[arg-type]
        if row is None or row[0] != text:
            self._lost = JournalLost(
                f"{self._sql.journal}: log {seq}, which this replica had read, is gone or "
                "changed (a database crash before the WAL flush, or a failover); restart the "
                "replica to replay the journal"
            )
            raise self._lost

    # Reading -----------------------------------------------------------------------------

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """Logs numbered ``log_number_from`` and up, in order, as committed so far.

        Within a registry call (``_consistency``), a read answers from the rows last fetched
        when that fetch was sent after the call began: it then holds every log committed before
        the call began. Otherwise it queries.

        The rows are checked without the connection's lock (``Fetched.tail`` is replaced whole): an
        append on its way holds that lock for its round trip, and a sync that waited for it
        would hold up every other thread waiting for the storage's lock behind it.
        """
        return self._iter_logs(log_number_from, self._fresh_tail(log_number_from))

    def _fresh_tail(self, start: int) -> list[Row] | None:
        """The fetched rows from ``start`` on if they are fresh enough for this call, else None."""
        return self._fetched.tail.rows_from(start, call_started())

    def _keep_tail(self, start: int, rows: list[Row], fetched_at: float) -> None:
        self._fetched.keep(Tail(start, rows, fetched_at))

    def holds_call(self, replayed: int) -> bool:
        """Whether a replay that has read the logs before ``replayed`` holds every log committed
        before this call began (``Fetched.holds``). Takes no lock: asked while appends travel."""
        return self._fetched.holds(replayed, call_started())

    def _iter_logs(self, position: int, rows: list[Row] | None) -> Iterator[dict[str, Any]]:
        while True:
            if rows is None:
                rows = self._read_page(position)
            for row in rows:
                if row[0] != position:
                    raise JournalGap(
                        f"{self._sql.journal}: expected log {position}, found {row[0]}"
                    )
                position += 1
                self._next_read = position
                self._last_read = row
                yield json.loads(row[1])
            if len(rows) < PAGE:
                return
            rows = None

    def fetch_for_call(self, position: int) -> None:
        """Fetches the logs from ``position`` on unless a fetch sent since this call began (by
        any thread) holds them. For a storage, without its lock: the sync after it then finds
        the rows fetched instead of querying while every other thread waits for it."""
        if call_started() is not None and self._fresh_tail(position) is None:
            self._read_page(position, unless_fresh=True)

    def _read_page(self, position: int, *, unless_fresh: bool = False) -> list[Row]:
        with self._reader.lock:
            if unless_fresh and (fresh := self._fresh_tail(position)) is not None:
                return fresh
            try:
                return self._query_page(position)
            except psycopg.OperationalError:
                # Reads change nothing, so one retry on a fresh connection is safe.
                self._reader.discard()
                return self._query_page(position)

    def _query_page(self, position: int) -> list[Row]:
        fetched_at = time.monotonic()
        cursor = self._cursor("read", self._reader)
        cursor.execute(self._sql.read, (position, PAGE))  # type: ignore[arg-type]
        rows = cursor.fetchall()
        self._keep_tail(position, rows, fetched_at)
        return rows

    # Appending ---------------------------------------------------------------------------

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Appends ``logs`` as one transaction (with those of other threads appending at the
        same time); returns once it has committed.

        A connection lost mid-append is retried once on a new connection; the batch's id
        keeps it from being written twice when the lost attempt did commit.
        """
        if not logs:
            return
        # Optuna's own backends write json.dumps text (NaN and Infinity allowed), so text it
        # is: jsonb would refuse NaN.
        mine = _Queued([json.dumps(log, separators=(",", ":")) for log in logs])
        with self._queue_lock:
            self._queue.append(mine)
        write_queued()  # its place in the order is fixed: an ask may hand its turn over
        with self._lock:
            if not mine.done:  # else another thread's append took it along
                self._send_queued()
        if mine.error is not None:
            raise mine.error

    def _send_queued(self) -> None:
        """Appends every queued batch as one transaction, in queue order; call with ``_lock``
        held. Threads that queued while the last append travelled go together: one round trip
        for all of them."""
        with self._queue_lock:
            queued, self._queue = self._queue, []
        texts = [text for q in queued for text in q.texts]
        batch = uuid.uuid4()
        try:
            try:
                self._append_once(texts, batch)
            except psycopg.OperationalError:
                self._writer.discard()
                self._append_once(texts, batch, retry=True)
        except Exception as error:
            for q in queued:
                q.error = error
        finally:
            for q in queued:
                q.done = True

    def _append_once(self, texts: list[str], batch: uuid.UUID, *, retry: bool = False) -> None:
        conn = self._connection()
        start = self._next_read
        append, flush = self._cursor("append"), self._cursor("flush")
        fetched_at = time.monotonic()
        try:
            with conn.pipeline():
                self._execute_append(append, texts, batch, start)
                if self._group_commit:
                    flush.execute(self._sql.flush)  # type: ignore[arg-type]
        except psycopg.errors.UniqueViolation as e:
            if retry and (e.diag.constraint_name or "").endswith("_batch_key"):
                # The lost attempt had committed: the batch is in the log once, perhaps not
                # durable yet.
                if self._group_commit:
                    flush.execute(self._sql.flush)  # type: ignore[arg-type]
                return
            raise
        self._keep_tail(start, append.fetchall(), fetched_at)

    def _execute_append(
        self, cursor: psycopg.Cursor[Any], texts: list[str], batch: uuid.UUID, start: int
    ) -> None:
        """Runs the append statement on ``cursor``; its rows are the logs from ``start`` on."""
        params = {"logs": texts, "batch": batch, "start": start, "page": PAGE}
        params["async"] = self._group_commit
        cursor.execute(self._sql.append, params)  # type: ignore[arg-type]

    # Snapshots ---------------------------------------------------------------------------

    def snapshot_due(self) -> bool:
        """Whether ``save_snapshot`` would store a snapshot now."""
        return (
            self._snapshot_every is not None
            and self._next_read - self._snapshot_log_number >= self._snapshot_every
        )

    def save_snapshot(self, snapshot: bytes) -> None:
        """Stores Optuna's pickled replay state if enough logs came since the last one."""
        if snapshot == NO_SNAPSHOT:
            return
        with self._lock:
            # Optuna saves right after a full read, so the state covers what was read.
            log_number = self._next_read
            if not self.snapshot_due():
                return
            params = (optuna.__version__, log_number, snapshot)
            self._connection().execute(self._sql.save_snapshot, params)  # type: ignore[arg-type]
            self._snapshot_log_number = log_number

    def load_snapshot(self) -> bytes | None:
        """The newest snapshot saved by this Optuna version, or None."""
        if self._snapshot_every is None:
            return None
        with self._lock:
            query = self._sql.load_snapshot
            row = self._connection().execute(query, (optuna.__version__,)).fetchone()  # type: ignore[arg-type]
            if row is None:
                return None
            self._snapshot_log_number = row[0]
        return bytes(row[1])


class NoSnapshot:
    """What a replay state pickles to when no snapshot is due (``_pg_storage``)."""

    def __reduce__(self) -> tuple[type[NoSnapshot], tuple[()]]:
        return NoSnapshot, ()


NO_SNAPSHOT = pickle.dumps(NoSnapshot())


def postgres_layout(url: str) -> str:
    """Which layout a PostgreSQL storage URL opens: ``"journal"`` or ``"rdb"``.

    ``?hposerve_backend=journal|rdb`` decides. Without it, a database (schema) that holds
    Optuna's RDB tables and no journal keeps being read through Optuna's ``RDBStorage``, so
    studies written there stay readable; anything else (an empty database, or one with the
    journal) opens the journal.

    Raises:
        InvalidArgument: the URL is not a PostgreSQL one, or has bad ``hposerve_*`` options.
        psycopg.OperationalError: the database cannot be reached (only when it must look).
    """
    _, options = split_options(url)
    if "backend" in options:
        return options["backend"]
    with psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=10) as conn:
        tables = _pg_schema.existing_tables(conn, options.get("schema"))
    rdb = all(t in tables for t in _pg_schema.RDB_MARKER_TABLES)
    return "rdb" if rdb and _pg_schema.JOURNAL_TABLE not in tables else "journal"
