"""Tokens: issued, looked up by the hash of their secret (cached briefly), revoked.

A token is ``hps_`` and 43 characters of URL-safe base64: 256 random bits. Only its SHA-256 is
stored. A slow password hash (bcrypt, Argon2) protects secrets that people choose, which can be
guessed; a 256-bit random secret cannot, so one SHA-256 is as strong, and a lookup stays one
indexed equality.

A lookup that authenticates a call is cached for at most ``cache_seconds`` (2 s by default):
a revocation, a new membership or a removed share reaches every replica within that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from hposerve.server.domain._access import Principal, Role, Scope, Unauthenticated
from hposerve.server.domain._admin import TokenInfo
from hposerve.server.domain._exceptions import NotFound
from hposerve.server.domain._names import StudyRef
from hposerve.server.storage._directory import Directory
from hposerve.server.storage._identity_schema import Tables, exists, select_all

__all__ = ["DEFAULT_CACHE_SECONDS", "TOKEN_PREFIX", "TokenStore", "hash_secret"]

TOKEN_PREFIX = "hps_"
DEFAULT_CACHE_SECONDS = 2.0
_CACHE_LIMIT = 10_000


def hash_secret(secret: str) -> str:
    """The stored form of a token's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


class _TtlCache:
    """A small map whose entries live ``seconds``; cleared whole when it grows past a bound."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self._seconds, value)


class TokenStore:
    """Issues, authenticates, lists and revokes tokens.

    Thread-safety: every method may be called from any thread. ``authenticate_*`` and
    ``cached_*`` raise Unauthenticated; the others the domain's NotFound.
    """

    def __init__(
        self,
        engine: sa.Engine,
        tables: Tables,
        directory: Directory,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._t = tables
        self._directory = directory
        self._clock = clock
        # Keyed by the secret itself, in this process's memory only (where each call's metadata
        # holds it anyway): a cache hit then costs no hash, on every message of a session.
        self._by_secret = _TtlCache(cache_seconds)
        self._by_name = _TtlCache(cache_seconds)

    def cached_token(self, secret: str) -> Principal | None:
        """The principal of a token if a recent lookup holds it (no I/O), else None.

        Raises:
            Unauthenticated: the token was recently found unknown, revoked or expired, or
                has expired since.
        """
        found = self._by_secret.get(secret)
        if isinstance(found, Unauthenticated):
            raise found
        if found is not None:
            self._check_unexpired(found)
        return found

    def authenticate_token(self, secret: str) -> Principal:
        """The principal a bearer token authenticates. Raises: Unauthenticated."""
        found = self._by_secret.get(secret)
        if found is None:
            try:
                found = self._principal_of_token(secret, hash_secret(secret))
            except Unauthenticated as e:
                found = e
            self._by_secret.put(secret, found)
        if isinstance(found, Unauthenticated):
            raise found
        self._check_unexpired(found)
        return found

    def principal_named(self, name: str) -> Principal:
        """What principal ``name`` holds (an mTLS certificate's subject, say); cached."""
        found = self._by_name.get(name)
        if found is None:
            found = self._directory.load_principal(name)
            self._by_name.put(name, found)
        return found  # type: ignore[no-any-return]

    def cached_principal(self, name: str) -> Principal | None:
        """What principal ``name`` holds if a recent lookup has it (no I/O), else None."""
        return self._by_name.get(name)  # type: ignore[no-any-return]

    def _check_unexpired(self, principal: Principal) -> None:
        if principal.expires_at is not None and principal.expires_at <= self._clock():
            raise Unauthenticated("the token has expired")

    def _principal_of_token(self, secret: str, digest: str) -> Principal:
        if not secret.startswith(TOKEN_PREFIX):
            raise Unauthenticated(f"not an hposerve token (they start with {TOKEN_PREFIX})")
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(self._t.tokens).where(self._t.tokens.c.secret_sha256 == digest)
            ).first()
        if row is None:
            raise Unauthenticated("unknown token")
        if row.revoked_at is not None:
            raise Unauthenticated("the token was revoked")
        scope = _scope_of(row)
        if scope is not None:  # a share link: what it may do is its scope, nothing else
            return Principal(name=row.owner, scope=scope, expires_at=row.expires_at)
        loaded = self._directory.load_principal(row.owner)
        return dataclasses.replace(loaded, expires_at=row.expires_at)

    def issue_token(
        self,
        principal: str,
        *,
        ttl: float | None,
        description: str = "",
        request_id: str = "",
        create_user: bool = False,
    ) -> tuple[TokenInfo, str]:
        """Issues a token for ``principal``; returns it and its secret (never stored).

        A retry with the same ``request_id`` returns the same token with a fresh secret: the
        first secret cannot be shown twice, and stops working.
        """
        with self._engine.begin() as conn:
            if create_user and principal.startswith("users/"):
                self._directory.ensure_principal(principal, conn=conn)
            elif not exists(conn, self._t.principals, name=principal):
                raise NotFound(f"no principal {principal}", field="principal")
            return self._issue(conn, principal, None, ttl, description, request_id)

    def issue_share_token(
        self, scope: Scope, *, ttl: float, description: str = "", request_id: str = ""
    ) -> tuple[TokenInfo, str]:
        """Issues a share link to ``scope``'s study; it is its own principal."""
        with self._engine.begin() as conn:
            return self._issue(conn, None, scope, ttl, description, request_id)

    def _issue(
        self,
        conn: sa.Connection,
        owner: str | None,
        scope: Scope | None,
        ttl: float | None,
        description: str,
        request_id: str,
    ) -> tuple[TokenInfo, str]:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        t = self._t.tokens
        if request_id:
            if owner is not None:
                mine = t.c.owner == owner
            else:
                assert scope is not None
                mine = (t.c.scope_namespace == scope.namespace) & (t.c.scope_study == scope.study)
            row = conn.execute(sa.select(t).where(mine & (t.c.request_id == request_id))).first()
            if row is not None and row.revoked_at is None:
                conn.execute(
                    t.update()
                    .where(t.c.token_id == row.token_id)
                    .values(secret_sha256=hash_secret(secret))
                )
                return _token_info(row), secret
        token_id = secrets.token_hex(8)
        if owner is None:
            assert scope is not None
            owner = f"namespaces/{scope.namespace}/studies/{scope.study}/shareTokens/{token_id}"
        now = self._clock()
        values = {
            "token_id": token_id,
            "secret_sha256": hash_secret(secret),
            "owner": owner,
            "scope_namespace": scope.namespace if scope else None,
            "scope_study": scope.study if scope else None,
            "scope_role": int(scope.role) if scope else None,
            "description": description,
            "created_at": now,
            "expires_at": now + ttl if ttl is not None else None,
            "revoked_at": None,
            "request_id": request_id or None,
        }
        conn.execute(t.insert().values(**values))
        return _token_info(_Values(values)), secret

    def revoke_token(self, owner: str, token_id: str) -> None:
        """Revokes token ``token_id`` of ``owner`` (again: a no-op). Raises: NotFound."""
        t = self._t.tokens.c
        with self._engine.begin() as conn:
            key = (t.owner == owner) & (t.token_id == token_id)
            if conn.execute(sa.select(t.token_id).where(key)).first() is None:
                raise NotFound(f"no token {token_id} of {owner}", field="name")
            conn.execute(
                self._t.tokens.update()
                .where(key & t.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )

    def tokens(self, owner: str, *, show_inactive: bool) -> list[TokenInfo]:
        """The tokens of ``owner``, oldest first."""
        return self._token_list(self._t.tokens.c.owner == owner, show_inactive)

    def share_tokens(self, study: StudyRef, *, show_inactive: bool) -> list[TokenInfo]:
        """The share links of ``study``, oldest first."""
        t = self._t.tokens.c
        where = (t.scope_namespace == study.namespace) & (t.scope_study == study.study)
        return self._token_list(where, show_inactive)

    def _token_list(self, where: Any, show_inactive: bool) -> list[TokenInfo]:
        t = self._t.tokens.c
        if not show_inactive:
            where = (
                where
                & t.revoked_at.is_(None)
                & (t.expires_at.is_(None) | (t.expires_at > self._clock()))
            )
        return [
            _token_info(r)
            for r in select_all(
                self._engine, sa.select(self._t.tokens).where(where).order_by(t.created_at)
            )
        ]


class _Values:
    """Attribute access over a dict of column values (a row not read back)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _scope_of(row: Any) -> Scope | None:
    if row.scope_namespace is None:
        return None
    return Scope(row.scope_namespace, row.scope_study, Role(row.scope_role))


def _token_info(row: Any) -> TokenInfo:
    return TokenInfo(
        token_id=row.token_id,
        principal=row.owner,
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        scope=_scope_of(row),
    )
