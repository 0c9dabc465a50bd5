"""Principals, teams, memberships, namespaces and shares: the rows the access rule reads."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa

from hposerve.server.domain._access import Principal, Role
from hposerve.server.domain._admin import MemberInfo, NamespaceInfo, ShareInfo, TeamInfo
from hposerve.server.domain._exceptions import AlreadyExists, NotFound
from hposerve.server.domain._names import StudyRef
from hposerve.server.storage._identity_schema import Tables, exists, select_all

__all__ = ["Directory"]


class Directory:
    """Who belongs to which team, which team owns which namespace, what is shared with whom.

    Thread-safety: every method may be called from any thread; each write is a transaction.
    Raises the domain's NotFound and AlreadyExists.
    """

    def __init__(
        self, engine: sa.Engine, tables: Tables, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._t = tables
        self._clock = clock

    def load_principal(self, name: str) -> Principal:
        p, m, n, s = self._t.principals.c, self._t.members.c, self._t.namespaces.c, self._t.shares.c
        with self._engine.connect() as conn:
            operator = conn.execute(sa.select(p.operator).where(p.name == name)).scalar()
            teams = {
                r.team: Role(r.role)
                for r in conn.execute(sa.select(m.team, m.role).where(m.principal == name))
            }
            namespaces: dict[str, Role] = {}
            shared: dict[tuple[str, str], Role] = {}
            if teams:
                for r in conn.execute(sa.select(n.namespace, n.team).where(n.team.in_(teams))):
                    namespaces[r.namespace] = max(
                        teams[r.team], namespaces.get(r.namespace, Role.VIEWER)
                    )
                rows = conn.execute(
                    sa.select(s.namespace, s.study, s.team, s.role).where(s.team.in_(teams))
                )
                for row in rows:
                    role = min(teams[row.team], Role(row.role))  # no more than its team role
                    key = (row.namespace, row.study)
                    shared[key] = max(role, shared.get(key, role))
        return Principal(
            name=name, operator=bool(operator), teams=teams, namespaces=namespaces, shared=shared
        )

    def ensure_principal(
        self, name: str, *, operator: bool | None = None, conn: sa.Connection | None = None
    ) -> None:
        """Creates principal ``name`` if new; sets its operator flag when ``operator`` is given."""
        with self._write(conn) as c:
            p = self._t.principals
            if c.execute(sa.select(p.c.name).where(p.c.name == name)).first() is None:
                c.execute(
                    p.insert().values(
                        name=name, operator=bool(operator), description="", created_at=self._clock()
                    )
                )
            elif operator is not None:
                c.execute(p.update().where(p.c.name == name).values(operator=operator))

    def create_team(self, team: str) -> TeamInfo:
        now = self._clock()
        with self._engine.begin() as conn:
            if exists(conn, self._t.teams, team=team):
                raise AlreadyExists(f"team {team!r} exists", field="team_id")
            conn.execute(self._t.teams.insert().values(team=team, created_at=now))
        return TeamInfo(team, now)

    def teams(self, *, after: str, limit: int, only: Collection[str] | None) -> list[TeamInfo]:
        """Teams named after ``after`` in name order, at most ``limit``; only ``only`` if given."""
        c = self._t.teams.c
        query = sa.select(c.team, c.created_at).where(c.team > after)
        if only is not None:
            query = query.where(c.team.in_(only))
        rows = select_all(self._engine, query.order_by(c.team).limit(limit))
        return [TeamInfo(r.team, r.created_at) for r in rows]

    def add_member(self, team: str, principal: str, role: Role) -> MemberInfo:
        m = self._t.members
        with self._engine.begin() as conn:
            self._need_team(conn, team)
            if principal.startswith("teams/"):
                if not exists(conn, self._t.principals, name=principal):
                    raise NotFound(f"no service account {principal}", field="principal")
            else:
                self.ensure_principal(principal, conn=conn)
            key = (m.c.team == team) & (m.c.principal == principal)
            if conn.execute(sa.select(m.c.role).where(key)).first() is None:
                conn.execute(m.insert().values(team=team, principal=principal, role=int(role)))
            else:
                conn.execute(m.update().where(key).values(role=int(role)))
        return MemberInfo(team, principal, role)

    def remove_member(self, team: str, principal: str) -> None:
        m = self._t.members.c
        with self._engine.begin() as conn:
            gone = conn.execute(
                self._t.members.delete().where((m.team == team) & (m.principal == principal))
            )
        if gone.rowcount == 0:
            raise NotFound(f"{principal} is not a member of teams/{team}", field="principal")

    def members(self, team: str) -> list[MemberInfo]:
        m = self._t.members.c
        rows = select_all(
            self._engine, sa.select(m.principal, m.role).where(m.team == team).order_by(m.principal)
        )
        return [MemberInfo(team, r.principal, Role(r.role)) for r in rows]

    def create_service_account(
        self, team: str, account_id: str, *, role: Role, description: str
    ) -> str:
        name = f"teams/{team}/serviceAccounts/{account_id}"
        with self._engine.begin() as conn:
            self._need_team(conn, team)
            if exists(conn, self._t.principals, name=name):
                raise AlreadyExists(f"{name} exists", field="service_account_id")
            conn.execute(
                self._t.principals.insert().values(
                    name=name, operator=False, description=description, created_at=self._clock()
                )
            )
            conn.execute(self._t.members.insert().values(team=team, principal=name, role=int(role)))
        return name

    def create_namespace(self, namespace: str, team: str) -> NamespaceInfo:
        now = self._clock()
        with self._engine.begin() as conn:
            self._need_team(conn, team)
            if exists(conn, self._t.namespaces, namespace=namespace):
                raise AlreadyExists(f"namespaces/{namespace} exists", field="namespace_id")
            conn.execute(
                self._t.namespaces.insert().values(namespace=namespace, team=team, created_at=now)
            )
        return NamespaceInfo(namespace, team, now)

    def namespace_owner(self, namespace: str) -> str | None:
        n = self._t.namespaces.c
        rows = select_all(self._engine, sa.select(n.team).where(n.namespace == namespace))
        return rows[0].team if rows else None

    def namespaces(
        self, *, after: str, limit: int, only: Collection[str] | None
    ) -> list[NamespaceInfo]:
        """Namespaces after ``after`` in name order, at most ``limit``; only ``only`` if given."""
        n = self._t.namespaces.c
        query = sa.select(self._t.namespaces).where(n.namespace > after)
        if only is not None:
            query = query.where(n.namespace.in_(only))
        rows = select_all(self._engine, query.order_by(n.namespace).limit(limit))
        return [NamespaceInfo(r.namespace, r.team, r.created_at) for r in rows]

    def share(self, study: StudyRef, team: str, role: Role) -> ShareInfo:
        s = self._t.shares
        now = self._clock()
        with self._engine.begin() as conn:
            self._need_team(conn, team)
            key = (
                (s.c.namespace == study.namespace) & (s.c.study == study.study) & (s.c.team == team)
            )
            if conn.execute(sa.select(s.c.role).where(key)).first() is None:
                conn.execute(
                    s.insert().values(
                        namespace=study.namespace,
                        study=study.study,
                        team=team,
                        role=int(role),
                        created_at=now,
                    )
                )
            else:
                conn.execute(s.update().where(key).values(role=int(role)))
        return ShareInfo(study, team, role, now)

    def unshare(self, study: StudyRef, team: str) -> None:
        s = self._t.shares.c
        key = (s.namespace == study.namespace) & (s.study == study.study) & (s.team == team)
        with self._engine.begin() as conn:
            if conn.execute(self._t.shares.delete().where(key)).rowcount == 0:
                raise NotFound(f"{study} is not shared with teams/{team}", field="team")

    def shares(self, namespace: str, study: str | None) -> list[ShareInfo]:
        s = self._t.shares.c
        where = s.namespace == namespace
        if study is not None:
            where = where & (s.study == study)
        rows = select_all(
            self._engine, sa.select(self._t.shares).where(where).order_by(s.study, s.team)
        )
        return [
            ShareInfo(StudyRef(r.namespace, r.study), r.team, Role(r.role), r.created_at)
            for r in rows
        ]

    def _write(self, conn: sa.Connection | None) -> Any:
        return _Reuse(conn) if conn is not None else self._engine.begin()

    def _need_team(self, conn: sa.Connection, team: str) -> None:
        if not exists(conn, self._t.teams, team=team):
            raise NotFound(f"no team teams/{team}", field="team")


class _Reuse:
    """A context manager handing back a connection already in a transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sa.Connection:
        return self._conn

    def __exit__(self, *exc: object) -> None:
        return None
