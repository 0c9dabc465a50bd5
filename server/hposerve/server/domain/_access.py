"""Who may do what: the access rule, in one place, as pure functions of what a principal holds.

A *principal* is a token's owner (``users/{user}``, ``teams/{team}/serviceAccounts/{sa}``), an
mTLS client certificate's subject (``certificates/{subject}``), or a share link
(``namespaces/{ns}/studies/{study}/shareTokens/{id}``). What it holds is read from the identity
store once (and cached briefly) into a ``Principal``; ``allows`` then decides from
(principal, action, resource) with no I/O, so that it can run on every message of a stream.

Roles come from team membership: a member's role applies in every namespace its team owns. A
study shared with a team gives its members at most the share's role there (never more than
their team role; a share is at most EDITOR). A share link holds one role on one study. An
operator may do everything; only operators act on the server itself (teams, namespaces, the
whole audit log).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Iterable, Mapping

from hposerve.server.domain._exceptions import PermissionDenied, Unauthenticated

__all__ = [
    "Action",
    "PermissionDenied",
    "Principal",
    "Resource",
    "Role",
    "Scope",
    "Unauthenticated",
    "Visible",
    "allows",
    "check",
    "parse_resource",
    "visible_namespaces",
    "visible_studies",
]


class Role(enum.IntEnum):
    """What a member may do in its team's namespaces; ordered, each includes the ones below."""

    VIEWER = 1
    EDITOR = 2
    ADMIN = 3


class Action(enum.Enum):
    """What a call does to its resource, and so the role it needs there."""

    READ = "read"  # viewer: get and list studies, trials, comparisons
    LIST = "list"  # list a namespace: a role there, or a study of it shared with the caller
    WRITE = "write"  # editor: create studies, ask, suggest, report, tell, enqueue
    ADMIN = "admin"  # admin: delete, members, shares, tokens


_NEEDS = {Action.READ: Role.VIEWER, Action.LIST: Role.VIEWER, Action.WRITE: Role.EDITOR}


@dataclasses.dataclass(frozen=True)
class Resource:
    """What a call is about, from the resource name it names.

    Exactly one shape: the server (nothing set), a team, a principal (its tokens; ``team`` is
    set for a service account), a namespace, or a study of a namespace.
    """

    namespace: str | None = None
    study: str | None = None
    team: str | None = None
    principal: str | None = None

    @classmethod
    def server(cls) -> Resource:
        """The server itself: teams, namespaces and the whole audit log (operators only)."""
        return cls()

    def __str__(self) -> str:
        if self.principal is not None:
            return self.principal
        if self.team is not None:
            return f"teams/{self.team}"
        if self.namespace is None:
            return ""
        if self.study is None:
            return f"namespaces/{self.namespace}"
        return f"namespaces/{self.namespace}/studies/{self.study}"


@functools.lru_cache(maxsize=4096)  # names repeat call after call (a trainer's trial)
def parse_resource(name: str) -> Resource | None:
    """The resource a name is about, or None when the name has no shape known here.

    Lenient on purpose: any name that the strict parsers accept gives the namespace and study
    they would give (a trial or a share link is about its study, a comparison about its
    namespace), so that authorizing the parsed resource covers what the call touches. A name
    this rejects is rejected by the strict parsers too, with INVALID_ARGUMENT.
    """
    parts = name.split("/")
    if len(parts) < 2 or not all(parts[:2]):
        return None
    kind, first = parts[0], parts[1]
    if kind == "namespaces":
        if len(parts) >= 4 and parts[2] == "studies" and parts[3]:
            return Resource(namespace=first, study=parts[3])
        return Resource(namespace=first)
    if kind == "teams":
        if len(parts) >= 4 and parts[2] == "serviceAccounts" and parts[3]:
            return Resource(team=first, principal="/".join(parts[:4]))
        return Resource(team=first)
    if kind == "users":
        return Resource(principal="/".join(parts[:2]))
    if kind == "certificates":
        # A subject may hold '/', so the whole rest is the subject unless it names a token.
        subject = "/".join(parts[1:])
        head, sep, _ = subject.rpartition("/tokens/")
        return Resource(principal=f"certificates/{head if sep else subject}")
    return None


@dataclasses.dataclass(frozen=True)
class Scope:
    """A share link's limit: one study, one role."""

    namespace: str
    study: str
    role: Role


@dataclasses.dataclass(frozen=True)
class Principal:
    """A caller and what it holds, as read from the identity store.

    Attributes:
        name: Its resource name (``users/alice``, ...).
        operator: A server administrator: allowed everything.
        teams: Team id -> its role in that team.
        namespaces: Namespace id -> its role there (its team's role, the best of its teams).
        shared: (namespace, study) -> its role on a study shared with one of its teams.
        scope: Set for a share link: nothing outside it is allowed.
        expires_at: When the token that authenticated it expires (None: never, or no token).
    """

    name: str
    operator: bool = False
    teams: Mapping[str, Role] = dataclasses.field(default_factory=dict)
    namespaces: Mapping[str, Role] = dataclasses.field(default_factory=dict)
    shared: Mapping[tuple[str, str], Role] = dataclasses.field(default_factory=dict)
    scope: Scope | None = None
    expires_at: float | None = None

    def role_in(self, namespace: str, study: str | None = None) -> Role | None:
        """Its role in a namespace, or on one of its studies (the better of team and share)."""
        roles = [self.namespaces.get(namespace)]
        if study is not None:
            roles.append(self.shared.get((namespace, study)))
        return max((r for r in roles if r is not None), default=None)


def allows(principal: Principal, action: Action, resource: Resource) -> bool:
    """Whether ``principal`` may do ``action`` on ``resource``. Pure; thread-safe."""
    if principal.scope is not None:
        return _within_scope(principal.scope, action, resource)
    if principal.operator:
        return True
    if resource.principal is not None:
        return _allows_on_principal(principal, resource)
    if resource.team is not None:
        role = principal.teams.get(resource.team)
        needed = Role.VIEWER if action in (Action.READ, Action.LIST) else Role.ADMIN
        return role is not None and role >= needed
    if resource.namespace is None:
        return False  # the server: operators only
    if action is Action.LIST and resource.study is None:
        return principal.role_in(resource.namespace) is not None or any(
            namespace == resource.namespace for namespace, _ in principal.shared
        )
    role = principal.role_in(resource.namespace, resource.study)
    return role is not None and role >= _NEEDS.get(action, Role.ADMIN)


def check(principal: Principal, action: Action, resources: Iterable[Resource]) -> None:
    """Raises PermissionDenied unless ``principal`` may do ``action`` on every resource."""
    for resource in resources:
        if not allows(principal, action, resource):
            raise PermissionDenied(
                f"{principal.name} may not {action.value} {resource or 'the server'}"
            )


def _within_scope(scope: Scope, action: Action, resource: Resource) -> bool:
    if resource.namespace != scope.namespace or resource.team or resource.principal:
        return False
    if resource.study is None:
        return action is Action.LIST  # listing its namespace shows the one study
    return resource.study == scope.study and scope.role >= _NEEDS.get(action, Role.ADMIN)


def _allows_on_principal(principal: Principal, resource: Resource) -> bool:
    # A principal manages its own tokens; a team's admins manage its service accounts'.
    if resource.principal == principal.name:
        return True
    return resource.team is not None and principal.teams.get(resource.team) == Role.ADMIN


@dataclasses.dataclass(frozen=True)
class Visible:
    """What a list may show: everything, or only the names in ``names``."""

    everything: bool
    names: frozenset[str] = frozenset()

    def __contains__(self, name: object) -> bool:
        return self.everything or name in self.names


_EVERYTHING = Visible(everything=True)


def visible_namespaces(principal: Principal | None) -> Visible:
    """The namespaces ``principal`` may see: its teams' own, and those with a study shared with
    it (all of them when auth is off, ``principal`` None, or for operators)."""
    if principal is None or (principal.operator and principal.scope is None):
        return _EVERYTHING
    if principal.scope is not None:
        return Visible(everything=False, names=frozenset({principal.scope.namespace}))
    shared = {namespace for namespace, _ in principal.shared}
    return Visible(everything=False, names=frozenset(principal.namespaces) | shared)


def visible_studies(principal: Principal | None, namespace: str) -> Visible:
    """The studies of ``namespace`` that ``principal`` may see: all of them where it has a role
    there (or is an operator, or auth is off), else only those shared with it."""
    if principal is None or (principal.operator and principal.scope is None):
        return _EVERYTHING
    if principal.scope is not None:
        studies = {principal.scope.study} if principal.scope.namespace == namespace else set()
        return Visible(everything=False, names=frozenset(studies))
    if namespace in principal.namespaces:
        return _EVERYTHING
    return Visible(
        everything=False,
        names=frozenset(study for ns, study in principal.shared if ns == namespace),
    )
