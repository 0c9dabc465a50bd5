"""Replicas on one PostgreSQL journal: each test gets a schema of its own, dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

POSTGRES_URL = os.environ.get(
    "HPOSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _admin() -> psycopg.Connection:
    return psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True)


@pytest.fixture
def journal_url() -> Iterator[str]:
    """A storage URL on the PostgreSQL journal, in a fresh schema (other runs share the db)."""
    schema = f"hposerve_test_replicas_{uuid.uuid4().hex[:10]}"
    yield f"{POSTGRES_URL}?hposerve_backend=journal&hposerve_schema={schema}"
    with _admin() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
