"""Helpers for the PostgreSQL journal tests (imported by name: no package here)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import psycopg

from hposerve.server.storage._pg_journal import PostgresJournalBackend
from hposerve.server.storage._pg_url import libpq_url

POSTGRES_URL = os.environ.get(
    "HPOSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

MakeBackend = Callable[..., PostgresJournalBackend]


def connect() -> psycopg.Connection[Any]:
    """A plain autocommit connection to the test database."""
    return psycopg.connect(libpq_url(POSTGRES_URL), autocommit=True)


def journal_rows(schema: str) -> list[tuple[int, str]]:
    """Every (seq, log) row of the journal in ``schema``, in order."""
    with connect() as conn:
        return conn.execute(
            f'SELECT seq, log FROM "{schema}".hposerve_journal ORDER BY seq'
        ).fetchall()
