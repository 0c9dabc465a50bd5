"""Administration of teams, principals, tokens, namespaces and shares: validation and lists.

Who may call each operation is decided before it runs (``_access.allows`` on the resource the
request names, in the transport); these check what the request says (names, roles, lifetimes)
and what it may see in a list, and leave the rows to the identity store.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import TYPE_CHECKING

from hposerve.server.domain._access import Principal, Role, Scope, visible_namespaces
from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.domain._names import StudyRef, namespace_from_name, study_ref_from_name
from hposerve.server.domain._quotas import QuotaLimits, QuotaOverride, Quotas

if TYPE_CHECKING:
    from hposerve.server.storage._identity import IdentityStore

__all__ = [
    "AdminOps",
    "AuditRecord",
    "MemberInfo",
    "NamespaceInfo",
    "ShareInfo",
    "TeamInfo",
    "TokenInfo",
    "parse_principal",
    "quota_namespace",
    "team_from_name",
]

DEFAULT_SHARE_TTL = 7 * 24 * 3600.0
MAX_SHARE_TTL = 365 * 24 * 3600.0
SHARE_ROLES = (Role.VIEWER, Role.EDITOR)
_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_SUBJECT = re.compile(r"[ -~]{1,400}")  # printable ASCII: an RFC 4514 string


@dataclasses.dataclass(frozen=True)
class TeamInfo:
    team: str
    created_at: float


@dataclasses.dataclass(frozen=True)
class MemberInfo:
    team: str
    principal: str
    role: Role


@dataclasses.dataclass(frozen=True)
class NamespaceInfo:
    namespace: str
    team: str
    created_at: float


@dataclasses.dataclass(frozen=True)
class ShareInfo:
    study: StudyRef
    team: str
    role: Role
    created_at: float


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """A token's public part; its secret exists only in the answer that issued it."""

    token_id: str
    principal: str  # who it authenticates; a share link is its own principal
    description: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    scope: Scope | None

    @property
    def name(self) -> str:
        """``{principal}/tokens/{id}``, or the share link's own name."""
        return self.principal if self.scope else f"{self.principal}/tokens/{self.token_id}"


@dataclasses.dataclass(frozen=True)
class AuditRecord:
    """One call that changed something, or was refused. Never a secret."""

    time: float
    principal: str
    namespace: str
    method: str
    resource: str
    request_id: str
    outcome: str
    sequence: int = 0  # given by the log when written


def _check_id(value: str, field: str, what: str) -> str:
    if not _ID.fullmatch(value):
        raise InvalidArgument(
            f"invalid {what} {value!r}: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
            field=field,
        )
    return value


def team_from_name(name: str, field: str = "team") -> str:
    """The team id of ``teams/{team}``. Raises: InvalidArgument."""
    kind, _, team = name.partition("/")
    if kind != "teams" or "/" in team:
        raise InvalidArgument(f"{field} must look like teams/TEAM, got {name!r}", field=field)
    return _check_id(team, field, "team")


def quota_namespace(name: str, field: str = "name") -> str:
    """The namespace of ``namespaces/{namespace}/quota``. Raises: InvalidArgument."""
    head, sep, tail = name.rpartition("/")
    if not sep or tail != "quota":
        raise InvalidArgument(
            f"{field} must look like namespaces/NAMESPACE/quota, got {name!r}", field=field
        )
    return namespace_from_name(head, field)


def parse_principal(name: str, field: str = "principal") -> str:
    """Checks a principal's name (users/U, teams/T/serviceAccounts/S, certificates/SUBJECT)."""
    parts = name.split("/")
    if parts[0] == "users" and len(parts) == 2 and _USER.fullmatch(parts[1]):
        return name
    if parts[0] == "teams" and len(parts) == 4 and parts[2] == "serviceAccounts":
        _check_id(parts[1], field, "team")
        _check_id(parts[3], field, "service account")
        return name
    if parts[0] == "certificates" and _SUBJECT.fullmatch(name.removeprefix("certificates/")):
        return name
    raise InvalidArgument(
        f"{field} must look like users/USER, teams/TEAM/serviceAccounts/ACCOUNT or "
        f"certificates/SUBJECT, got {name!r}",
        field=field,
    )


def _check_role(role: Role | None, field: str, allowed: tuple[Role, ...] = tuple(Role)) -> Role:
    if role not in allowed:
        names = ", ".join(r.name for r in allowed)
        raise InvalidArgument(f"{field} must be one of {names}", field=field)
    return role


def _check_ttl(ttl: float | None, field: str = "ttl") -> float | None:
    if ttl is not None and not 0 < ttl <= 100 * MAX_SHARE_TTL:
        raise InvalidArgument(f"{field} must be positive (and under a century)", field=field)
    return ttl


class AdminOps:
    """The admin operations over an identity store.

    Thread-safety: as the store's (every method may be called from any thread).
    Raises: InvalidArgument for a bad request; NotFound and AlreadyExists from the store.
    """

    def __init__(self, store: IdentityStore, quotas: Quotas | None = None) -> None:
        self.store = store
        self._quotas = quotas

    def set_quota(self, name: str, override: QuotaOverride) -> QuotaLimits:
        """Sets a namespace's quotas (unset: the server's default); returns those in effect."""
        namespace = quota_namespace(name, "quota.name")
        defaults = self._quotas.defaults if self._quotas is not None else QuotaLimits()
        override.over(defaults)  # raises InvalidArgument for a negative or infinite value
        self.store.set_quota(namespace, override)
        if self._quotas is None:
            return override.over(defaults)
        self._quotas.forget(namespace)  # this replica at once; the others within seconds
        return self._quotas.limits(namespace)

    def quota(self, name: str) -> QuotaLimits:
        """The quotas in effect for a namespace."""
        namespace = quota_namespace(name)
        if self._quotas is not None:
            return self._quotas.limits(namespace)
        override = self.store.quota_override(namespace)
        return override.over(QuotaLimits()) if override is not None else QuotaLimits()

    def create_team(self, team_id: str) -> TeamInfo:
        return self.store.directory.create_team(_check_id(team_id, "team_id", "team"))

    def list_teams(self, caller: Principal, *, after: str, limit: int) -> list[TeamInfo]:
        only = None if caller.operator and caller.scope is None else set(caller.teams)
        return self.store.directory.teams(after=after, limit=limit, only=only)

    def add_member(self, team: str, principal: str, role: Role | None) -> MemberInfo:
        return self.store.directory.add_member(
            team_from_name(team), parse_principal(principal), _check_role(role, "role")
        )

    def remove_member(self, team: str, principal: str) -> None:
        self.store.directory.remove_member(team_from_name(team), parse_principal(principal))

    def members(self, team: str) -> list[MemberInfo]:
        return self.store.directory.members(team_from_name(team))

    def create_service_account(
        self, team: str, account_id: str, *, role: Role | None, description: str
    ) -> str:
        """Creates the account and its membership; returns its name."""
        return self.store.directory.create_service_account(
            team_from_name(team),
            _check_id(account_id, "service_account_id", "service account"),
            role=_check_role(role or Role.EDITOR, "role"),
            description=description,
        )

    def issue_token(
        self,
        caller: Principal,
        principal: str,
        *,
        ttl: float | None,
        description: str,
        request_id: str,
    ) -> tuple[TokenInfo, str]:
        """Issues a token; returns it and its secret. Only operators create users this way.

        A token a principal issues for itself lives no longer than the one it called with:
        a stolen short-lived token cannot make itself a lasting one.
        """
        name = parse_principal(principal)
        if name.startswith("certificates/"):
            raise InvalidArgument("a certificate authenticates itself: it has no tokens")
        if name == caller.name and caller.expires_at is not None and not caller.operator:
            left = caller.expires_at - time.time()
            if ttl is None or ttl > left:
                raise InvalidArgument(
                    f"ttl: a token you issue yourself must expire before the one you use "
                    f"(in {max(left, 0):.0f} s)",
                    field="ttl",
                )
        return self.store.tokens.issue_token(
            name,
            ttl=_check_ttl(ttl),
            description=description,
            request_id=request_id,
            create_user=caller.operator,
        )

    def revoke_token(self, name: str) -> None:
        owner, sep, token_id = name.rpartition("/tokens/")
        if not sep:
            owner, sep, token_id = name.rpartition("/shareTokens/")
            study_ref_from_name(owner, "name")
            owner = name  # a share link is its own principal
        else:
            parse_principal(owner, "name")
        if not sep or not token_id:
            raise InvalidArgument(f"name must name a token, got {name!r}", field="name")
        self.store.tokens.revoke_token(owner, token_id)

    def tokens(self, parent: str, *, show_inactive: bool) -> list[TokenInfo]:
        if parent.startswith("namespaces/"):
            study = study_ref_from_name(parent, "parent")
            return self.store.tokens.share_tokens(study, show_inactive=show_inactive)
        return self.store.tokens.tokens(
            parse_principal(parent, "parent"), show_inactive=show_inactive
        )

    def create_namespace(self, namespace_id: str, team: str) -> NamespaceInfo:
        namespace = namespace_from_name(f"namespaces/{namespace_id}", "namespace_id")
        return self.store.directory.create_namespace(namespace, team_from_name(team))

    def list_namespaces(self, caller: Principal, *, after: str, limit: int) -> list[NamespaceInfo]:
        visible = visible_namespaces(caller)
        only = None if visible.everything else set(visible.names)
        return self.store.directory.namespaces(after=after, limit=limit, only=only)

    def share_study(self, study: str, team: str, role: Role | None) -> ShareInfo:
        ref = study_ref_from_name(study, "study")
        team_id = team_from_name(team)
        if self.store.directory.namespace_owner(ref.namespace) == team_id:
            raise InvalidArgument(f"{team} owns {ref.namespace}: it needs no share", field="team")
        return self.store.directory.share(ref, team_id, _check_role(role, "role", SHARE_ROLES))

    def unshare_study(self, study: str, team: str) -> None:
        self.store.directory.unshare(study_ref_from_name(study, "study"), team_from_name(team))

    def shares(self, parent: str) -> list[ShareInfo]:
        if parent.count("/") == 1:
            return self.store.directory.shares(namespace_from_name(parent), None)
        ref = study_ref_from_name(parent, "parent")
        return self.store.directory.shares(ref.namespace, ref.study)

    def issue_share_token(
        self, study: str, role: Role | None, *, ttl: float | None, description: str, request_id: str
    ) -> tuple[TokenInfo, str]:
        """Issues a share link to one study; returns it and its secret."""
        ref = study_ref_from_name(study, "study")
        ttl = DEFAULT_SHARE_TTL if ttl is None else ttl
        if not 0 < ttl <= MAX_SHARE_TTL:
            raise InvalidArgument("ttl of a share link: more than 0, at most 365 days", field="ttl")
        scope = Scope(ref.namespace, ref.study, _check_role(role, "role", SHARE_ROLES))
        return self.store.tokens.issue_share_token(
            scope, ttl=ttl, description=description, request_id=request_id
        )

    def read_audit(self, parent: str, *, before: int | None, limit: int) -> list[AuditRecord]:
        namespace = namespace_from_name(parent) if parent else None
        return self.store.audit.read(namespace=namespace, before=before, limit=limit)
