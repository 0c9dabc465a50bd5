"""The identity store: the directory, the tokens, the request memo and the audit log, together.

It lives with the server's storage (see ``_identity_schema``), so that replicas on one database
agree; ``IdentityStore.open(storage, data_dir=...)`` finds it from the server's storage URL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import sqlalchemy as sa

from hposerve.server.domain._access import Principal
from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.domain._quotas import QUOTAS, QuotaOverride
from hposerve.server.storage._audit import AuditLog
from hposerve.server.storage._directory import Directory
from hposerve.server.storage._identity_schema import (
    Tables,
    identity_url,
    make_tables,
    open_engine,
    select_all,
)
from hposerve.server.storage._tokens import DEFAULT_CACHE_SECONDS, TokenStore

__all__ = ["IdentityStore"]

_REQUEST_MEMO_SECONDS = 24 * 3600.0


class IdentityStore:
    """Principals, teams, namespaces, shares (``directory``), ``tokens``, the request memo and
    the ``audit`` log, on one database.

    Thread-safety: every method may be called from any thread; writes are transactions, so
    replicas on one database agree. ``start()`` starts the audit log's writer thread.
    """

    def __init__(
        self,
        engine: sa.Engine,
        tables: Tables,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._t = tables
        self._clock = clock
        self.directory = Directory(engine, tables, clock=clock)
        self.tokens = TokenStore(
            engine, tables, self.directory, cache_seconds=cache_seconds, clock=clock
        )
        self.audit = AuditLog(engine, tables.audit)

    @classmethod
    def open(
        cls,
        storage: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        url: str | None = None,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> IdentityStore:
        """Opens (creating its tables) the store of a server on ``storage``, or the one at
        ``url`` (a SQLAlchemy URL)."""
        db_url, schema = identity_url(url or storage, data_dir=data_dir)
        meta = make_tables(schema)
        engine = open_engine(db_url, schema, meta)
        return cls(engine, Tables.of(meta), cache_seconds=cache_seconds)

    def start(self) -> IdentityStore:
        """Starts the audit log's writer."""
        self.audit.start()
        return self

    def close(self) -> None:
        """Writes what the audit log holds and releases the database."""
        self.audit.close()
        self._engine.dispose()

    # -- what the interceptor asks (``_auth.Authenticator``) ------------------------------------

    def cached_token(self, secret: str) -> Principal | None:
        """See ``TokenStore.cached_token``."""
        return self.tokens.cached_token(secret)

    def authenticate_token(self, secret: str) -> Principal:
        """See ``TokenStore.authenticate_token``."""
        return self.tokens.authenticate_token(secret)

    def cached_principal(self, name: str) -> Principal | None:
        """See ``TokenStore.cached_principal``."""
        return self.tokens.cached_principal(name)

    def principal_named(self, name: str) -> Principal:
        """See ``TokenStore.principal_named``."""
        return self.tokens.principal_named(name)

    # -- quotas --------------------------------------------------------------------------------

    def quota_override(self, namespace: str) -> QuotaOverride | None:
        """What an operator set for ``namespace``, or None."""
        q = self._t.quotas.c
        rows = select_all(self._engine, sa.select(self._t.quotas).where(q.namespace == namespace))
        if not rows:
            return None
        return QuotaOverride(**{name: getattr(rows[0], name) for name in QUOTAS})

    def set_quota(self, namespace: str, override: QuotaOverride) -> None:
        """Sets (replaces) ``namespace``'s override; every replica reads it within seconds."""
        q = self._t.quotas
        values = {name: getattr(override, name) for name in QUOTAS}
        with self._engine.begin() as conn:
            conn.execute(q.delete().where(q.c.namespace == namespace))
            conn.execute(q.insert().values(namespace=namespace, updated_at=self._clock(), **values))

    # -- request ids ---------------------------------------------------------------------------

    def recall(self, principal: str, request_id: str, method: str) -> bytes | None:
        """The answer remembered for ``principal``'s ``request_id``, or None.

        Raises:
            InvalidArgument: that request id was used for another method.
        """
        r = self._t.requests.c
        rows = select_all(
            self._engine,
            sa.select(r.method, r.answer).where(
                (r.principal == principal) & (r.request_id == request_id)
            ),
        )
        if not rows:
            return None
        if rows[0].method != method:
            raise InvalidArgument(
                f"request_id {request_id!r} was used for {rows[0].method}", field="request_id"
            )
        return bytes(rows[0].answer)

    def remember(self, principal: str, request_id: str, method: str, answer: bytes) -> None:
        """Keeps the first answer to a request for a day (a second one is dropped)."""
        now = self._clock()
        r = self._t.requests
        try:
            with self._engine.begin() as conn:
                conn.execute(r.delete().where(r.c.created_at < now - _REQUEST_MEMO_SECONDS))
                conn.execute(
                    r.insert().values(
                        principal=principal,
                        request_id=request_id,
                        method=method,
                        answer=answer,
                        created_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            pass  # a concurrent retry remembered it first
