"""PostgreSQL URLs: SQLAlchemy's spelling to libpq's, and hposerve's query options."""

from __future__ import annotations

import pytest

from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.storage._pg_url import is_postgres_url, libpq_url, split_options


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql+psycopg2://u:p%40w@h/db", "postgresql://u:p%40w@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("postgres://u@h/db", "postgresql://u@h/db"),
        (
            "postgresql+psycopg://u@h/db?hposerve_backend=journal&sslmode=require",
            "postgresql://u@h/db?sslmode=require",
        ),
    ],
)
def test_urls_are_converted_for_libpq(url: str, expected: str) -> None:
    assert libpq_url(url) == expected


def test_options_are_taken_out_of_the_url() -> None:
    url, options = split_options(
        "postgresql+psycopg://u@h/db?hposerve_schema=team_a&connect_timeout=3&hposerve_backend=rdb"
    )
    assert url == "postgresql+psycopg://u@h/db?connect_timeout=3"
    assert options == {"schema": "team_a", "backend": "rdb"}
    assert split_options("sqlite:///x.db") == ("sqlite:///x.db", {})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://h/db?hposerve_backend=sql",
        "postgresql://h/db?hposerve_colour=red",
        "postgresql://h/db?hposerve_schema=a&hposerve_schema=b",
        "postgresql://h/db?hposerve_schema=",
        "mysql://h/db",
    ],
)
def test_bad_urls_are_invalid_arguments(url: str) -> None:
    with pytest.raises(InvalidArgument):
        libpq_url(url)


def test_postgres_urls_are_recognised_with_any_driver() -> None:
    assert is_postgres_url("postgresql+psycopg://h/db")
    assert is_postgres_url("postgres://h/db")
    assert not is_postgres_url("sqlite:///x.db")
