"""The tables of the PostgreSQL journal, the statements on them, and their creation.

``hposerve_journal``           one row per log: ``seq`` is its log number (0, 1, 2, ...,
                               dense), ``log`` its JSON text, ``batch`` a unique id on the first
                               row of each appended batch (so that a retried append is not
                               written twice)
``hposerve_journal_head``      one row: the next log number; appenders update it, which
                               orders them (see ``_pg_journal``)
``hposerve_journal_snapshot``  the latest pickled replay state per Optuna version, with the
                               log number it has read up to
``hposerve_journal_flush``     one row per server connection, updated after an append to wait
                               for the WAL flush outside the order lock (see ``_pg_journal``)
``hposerve_journal_append()``  appends a batch and returns the logs from a given number on, in
                               one statement (see ``_pg_journal``)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
from psycopg import sql

JOURNAL_TABLE = "hposerve_journal"
HEAD_TABLE = "hposerve_journal_head"
SNAPSHOT_TABLE = "hposerve_journal_snapshot"
FLUSH_TABLE = "hposerve_journal_flush"
APPEND_FUNCTION = "hposerve_journal_append"
# Serializes schema creation across replicas opening a fresh database at once: two racing
# CREATE TABLE IF NOT EXISTS can both miss the table and one then fails on pg_type.
_SCHEMA_LOCK_KEY = 0x68706F7365727665  # b"hposerve"
# Optuna's RDBStorage tables (to tell a database it has written from an empty one).
RDB_MARKER_TABLES = ("studies", "version_info")


@dataclasses.dataclass(frozen=True)
class Statements:
    """SQL text for one schema (None: the search path), composed once."""

    schema: str | None
    append: str
    read: str
    save_snapshot: str
    load_snapshot: str
    flush: str
    log_at: str
    create: tuple[str, ...]
    journal: str

    @classmethod
    def for_schema(cls, schema: str | None) -> Statements:
        """Builds the statements with table names qualified by ``schema``."""

        def table(name: str) -> str:
            ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
            return ident.as_string(None)

        journal, head, snap = table(JOURNAL_TABLE), table(HEAD_TABLE), table(SNAPSHOT_TABLE)
        flush, append = table(FLUSH_TABLE), table(APPEND_FUNCTION)
        tables: tuple[str, ...] = (
            f"CREATE TABLE IF NOT EXISTS {journal} ("
            " seq bigint PRIMARY KEY, log text NOT NULL, batch uuid UNIQUE)",
            f"CREATE TABLE IF NOT EXISTS {head} ("
            " id boolean PRIMARY KEY DEFAULT true CHECK (id), next_seq bigint NOT NULL)",
            f"INSERT INTO {head} (id, next_seq) VALUES (true, 0) ON CONFLICT DO NOTHING",
            f"CREATE TABLE IF NOT EXISTS {snap} ("
            " optuna_version text PRIMARY KEY, log_number bigint NOT NULL,"
            " data bytea NOT NULL, saved_at timestamptz NOT NULL DEFAULT now())",
            f"CREATE TABLE IF NOT EXISTS {flush} (pid integer PRIMARY KEY, n bigint NOT NULL)",
            _append_function(append, head, journal),
        )
        quoted_schema = sql.Identifier(schema or "").as_string(None)
        create_schema = f"CREATE SCHEMA IF NOT EXISTS {quoted_schema}"
        create = ((create_schema,) if schema else ()) + tables
        return cls(
            schema=schema,
            # One statement, so one transaction per batch (see the function above).
            append=(
                f"SELECT s, l FROM {append}(%(logs)b::text[], %(batch)s::uuid, %(start)s,"
                " %(page)s, %(async)s)"
            ),
            read=f"SELECT seq, log FROM {journal} WHERE seq >= %s ORDER BY seq LIMIT %s",
            # Replicas all save snapshots; the newest (highest log number) wins.
            save_snapshot=(
                f"INSERT INTO {snap} AS s (optuna_version, log_number, data)"
                " VALUES (%s, %s, %s) ON CONFLICT (optuna_version) DO UPDATE"
                " SET log_number = excluded.log_number, data = excluded.data, saved_at = now()"
                " WHERE s.log_number < excluded.log_number"
            ),
            load_snapshot=f"SELECT log_number, data FROM {snap} WHERE optuna_version = %s",
            # A write that commits synchronously: its commit waits until the WAL is flushed up
            # to it, so also up to every record before it. A connection's own row: no waits.
            flush=(
                f"INSERT INTO {flush} AS f (pid, n) VALUES (pg_backend_pid(), 1)"
                " ON CONFLICT (pid) DO UPDATE SET n = f.n + 1"
            ),
            log_at=f"SELECT log FROM {journal} WHERE seq = %s",
            create=create,
            journal=journal,
        )


def create_schema(conn: psycopg.Connection[Any], statements: Statements) -> None:
    """Creates the journal's tables if they are missing; safe when replicas open at once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        for statement in statements.create:
            conn.execute(statement)  # type: ignore[arg-type]  # composed from constants


def existing_tables(conn: psycopg.Connection[Any], schema: str | None) -> set[str]:
    """Which of the journal's and Optuna's RDB marker tables exist in ``schema``."""
    names = [JOURNAL_TABLE, *RDB_MARKER_TABLES]
    qualified = [f"{sql.Identifier(schema).as_string(None)}.{n}" if schema else n for n in names]
    row = conn.execute(
        "SELECT array_agg(n) FROM unnest(%s::text[], %s::text[]) AS t(n, q)"
        " WHERE to_regclass(q) IS NOT NULL",
        (names, qualified),
    ).fetchone()
    return set(row[0] or []) if row else set()


def _append_function(name: str, head: str, journal: str) -> str:
    """The append function's definition (see ``_pg_journal``).

    The UPDATE of the head row takes its row lock until commit: appenders queue on it, and
    each reads the head as the previous appender committed it (READ COMMITTED re-reads an
    updated row). Each statement of a volatile function takes a fresh snapshot, so the final
    SELECT sees every log before this batch (their appenders committed before releasing the
    head) and the batch itself: the logs from ``from_seq`` up to this batch, with no hole, in
    the append's one round trip.
    """
    return (
        f"CREATE OR REPLACE FUNCTION {name}("
        " logs text[], batch_id uuid, from_seq bigint, page integer, async_commit boolean)"
        " RETURNS TABLE (s bigint, l text) LANGUAGE plpgsql VOLATILE AS $$"
        " DECLARE base bigint;"
        " BEGIN"
        "  IF async_commit THEN"
        "   PERFORM set_config('synchronous_commit', 'off', true);"
        "  END IF;"
        f"  UPDATE {head} SET next_seq = next_seq + cardinality(logs)"
        "   RETURNING next_seq - cardinality(logs) INTO base;"
        f"  INSERT INTO {journal} (seq, log, batch)"
        "   SELECT base + t.ord - 1, t.log, CASE WHEN t.ord = 1 THEN batch_id END"
        "   FROM unnest(logs) WITH ORDINALITY AS t(log, ord);"
        f"  RETURN QUERY SELECT j.seq, j.log FROM {journal} j"
        "   WHERE j.seq >= from_seq ORDER BY j.seq LIMIT page;"
        " END $$"
    )
