"""The identity store's tables, where they live, and their creation.

They live with the server's storage so that replicas agree: a SQLite file in the data directory
for the embedded default (``identity.db``), the same database for an SQL storage URL
(PostgreSQL included: tables prefixed ``hposerve_``, in the URL's ``hposerve_schema`` if it has
one), and a SQLite file beside a shared journal file.

``hposerve_principals``  users, service accounts, certificates seen in memberships; operators
``hposerve_teams``       teams
``hposerve_members``     (team, principal) -> role
``hposerve_namespaces``  namespace -> owning team
``hposerve_shares``      (namespace, study, team) -> role
``hposerve_tokens``      token id -> SHA-256 of the secret, owner, scope, expiry, revocation
``hposerve_audit``       append-only: who, namespace, method, resource, request id, outcome, time
``hposerve_requests``    request id -> first answer, for retried admin mutations
``hposerve_quotas``      namespace -> the limits an operator set (NULL: the server's default)
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Any

import sqlalchemy as sa

from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.storage._open import DEFAULT_DATA_DIR
from hposerve.server.storage._pg_url import is_postgres_url, split_options

IDENTITY_FILE = "identity.db"
_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
# Serializes schema creation across replicas opening a fresh PostgreSQL database at once.
_SCHEMA_LOCK_KEY = 0x6870736964656E74  # b"hpsident"


def identity_url(
    storage: str | None, *, data_dir: str | os.PathLike[str] | None = None
) -> tuple[str, str | None]:
    """Where the identity store of a server on ``storage`` lives: (SQLAlchemy URL, schema).

    Raises:
        InvalidArgument: a storage with no SQL database to share (Redis): name one explicitly.
    """
    if not storage:
        path = pathlib.Path(data_dir or DEFAULT_DATA_DIR).resolve() / IDENTITY_FILE
        return f"sqlite:///{path}", None
    scheme = storage.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "journal":
        path = pathlib.Path(storage.removeprefix("journal://")).resolve()
        return f"sqlite:///{path.parent / IDENTITY_FILE}", None
    if scheme not in _SQL_SCHEMES:
        raise InvalidArgument(
            f"a {scheme!r} storage has no SQL database for identities: name one with an "
            "identity storage URL (sqlite:///path or postgresql+psycopg://...)",
            field="identity_storage",
        )
    url, options = split_options(storage)
    if is_postgres_url(url) and "+" not in url.split(":", 1)[0]:
        url = "postgresql+psycopg" + url[url.index(":") :]  # psycopg 3 is the driver we ship
    return url, options.get("schema")


def make_tables(schema: str | None = None) -> sa.MetaData:
    """The identity tables, in ``schema`` (None: the default one)."""
    meta = sa.MetaData(schema=schema)
    _directory_tables(meta)
    _token_table(meta)
    _log_tables(meta)
    return meta


_NAME = sa.String(512)  # a principal's name


def _directory_tables(meta: sa.MetaData) -> None:
    name = _NAME
    sa.Table(
        "hposerve_principals",
        meta,
        sa.Column("name", name, primary_key=True),
        sa.Column("operator", sa.Boolean, nullable=False, default=False),
        sa.Column("description", sa.String(1024), nullable=False, default=""),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    sa.Table(
        "hposerve_teams",
        meta,
        sa.Column("team", sa.String(63), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    sa.Table(
        "hposerve_members",
        meta,
        sa.Column("team", sa.String(63), primary_key=True),
        sa.Column("principal", name, primary_key=True, index=True),
        sa.Column("role", sa.Integer, nullable=False),
    )
    sa.Table(
        "hposerve_namespaces",
        meta,
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("team", sa.String(63), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    sa.Table(
        "hposerve_quotas",
        meta,
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("studies", sa.BigInteger),
        sa.Column("running_trials", sa.BigInteger),
        sa.Column("asks_per_second", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    sa.Table(
        "hposerve_shares",
        meta,
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("study", sa.String(128), primary_key=True),
        sa.Column("team", sa.String(63), primary_key=True, index=True),
        sa.Column("role", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def _token_table(meta: sa.MetaData) -> None:
    sa.Table(
        "hposerve_tokens",
        meta,
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("owner", _NAME, nullable=False, index=True),
        sa.Column("scope_namespace", sa.String(63)),
        sa.Column("scope_study", sa.String(128)),
        sa.Column("scope_role", sa.Integer),
        sa.Column("description", sa.String(1024), nullable=False, default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
        sa.Column("request_id", sa.String(128)),
        sa.UniqueConstraint("owner", "request_id"),
    )


def _log_tables(meta: sa.MetaData) -> None:
    name = _NAME
    sa.Table(
        "hposerve_audit",
        meta,
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("principal", name, nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False, index=True),
        sa.Column("method", sa.String(256), nullable=False),
        sa.Column("resource", sa.String(1024), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
    )
    sa.Table(
        "hposerve_requests",
        meta,
        sa.Column("principal", name, primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("method", sa.String(256), nullable=False),
        sa.Column("answer", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
    )


def open_engine(url: str, schema: str | None, meta: sa.MetaData) -> sa.Engine:
    """An engine on ``url`` with the identity tables created (safe for replicas racing)."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    _create(engine, schema, meta)
    return engine


def _sqlite_pragmas(connection: object, _record: object) -> None:
    # WAL: readers (every replica's token lookups) do not wait for a writer (the audit log).
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _create(engine: sa.Engine, schema: str | None, meta: sa.MetaData, attempts: int = 5) -> None:
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    # Two replicas' CREATE TABLE IF NOT EXISTS can both miss the table; the
                    # transaction-scoped lock makes the second wait and then find it.
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY}
                    )
                    if schema:
                        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
                meta.create_all(conn, checkfirst=True)
            return
        except sa.exc.OperationalError:
            # SQLite has no such lock: a replica that lost the race finds the tables next time.
            if attempt == attempts or engine.dialect.name == "postgresql":
                raise
            time.sleep(0.1 * attempt)


@dataclasses.dataclass(frozen=True)
class Tables:
    """The identity tables by role."""

    principals: sa.Table
    teams: sa.Table
    members: sa.Table
    namespaces: sa.Table
    shares: sa.Table
    tokens: sa.Table
    audit: sa.Table
    requests: sa.Table
    quotas: sa.Table

    @classmethod
    def of(cls, meta: sa.MetaData) -> Tables:
        prefix = f"{meta.schema}." if meta.schema else ""
        return cls(
            **{f.name: meta.tables[f"{prefix}hposerve_{f.name}"] for f in dataclasses.fields(cls)}
        )


def select_all(engine: sa.Engine, query: Any) -> list[Any]:
    """Every row ``query`` selects, read in a connection of its own."""
    with engine.connect() as conn:
        return list(conn.execute(query))


def exists(conn: sa.Connection, table: sa.Table, **key: str) -> bool:
    """Whether ``table`` has a row with these column values."""
    where = sa.and_(*(table.c[k] == v for k, v in key.items()))
    return (
        conn.execute(sa.select(sa.literal(1)).select_from(table).where(where)).first() is not None
    )
