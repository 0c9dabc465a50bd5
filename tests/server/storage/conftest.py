"""Fixtures for the PostgreSQL journal: each test gets a schema of its own, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from pg_support import POSTGRES_URL, MakeBackend, connect

from hposerve.server.storage._pg_journal import PostgresJournalBackend


@pytest.fixture(autouse=True)
def _quiet_optuna() -> Iterator[None]:
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(verbosity)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name; the schema (made by the backend) is dropped afterwards.

    Other test sessions share the database, so nothing here touches ``public``.
    """
    name = f"hposerve_test_{uuid.uuid4().hex[:12]}"
    yield name
    with connect() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def make_backend(pg_schema: str) -> Iterator[MakeBackend]:
    """Opens backends on the test's schema, and closes them at the end."""
    made: list[PostgresJournalBackend] = []

    def make(**kwargs: Any) -> PostgresJournalBackend:
        backend = PostgresJournalBackend(POSTGRES_URL, schema=pg_schema, **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
