"""The one table of what each RPC does (its action) and which request field names its resource.

The interceptor in ``_auth`` reads nothing else to authorize a call: an RPC missing here is
refused. ``tests/server/auth`` checks that every RPC of every hposerve service has a rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from hposerve.server.domain._access import Action, Resource, parse_resource

__all__ = ["OPEN_SERVICES", "RULES", "Rule", "session_method"]

# (the name as the request gave it, what it is about; None when its shape is unknown, and then
# the servicer's own parsing rejects it with INVALID_ARGUMENT)
Named = list[tuple[str, Resource | None]]

# Health (a load balancer probes it) and reflection (it describes the API) need no identity.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


@dataclasses.dataclass(frozen=True)
class Rule:
    """How to authorize one RPC.

    Attributes:
        action: What it does; None: any authenticated caller may call it (it filters what it
            shows by the caller).
        resources: The request's resources.
        mutates: It changes something: audited when it succeeds too.
    """

    action: Action | None
    resources: Callable[[Any], Named]
    mutates: bool = False


def _field(name: str) -> Callable[[Any], Named]:
    return _fields(name)


def _each(name: str) -> Callable[[Any], Named]:
    def get(request: Any) -> Named:
        return [(value, parse_resource(value)) for value in getattr(request, name)]

    return get


def _child(parent: str, child_id: str, collection: str) -> Callable[[Any], Named]:
    """A resource the request creates: ``{parent}/{collection}/{id}`` (a create that may load
    an existing study is about that study, so a share of it covers it)."""

    def get(request: Any) -> Named:
        value = getattr(request, parent)
        child = f"{value}/{collection}/{getattr(request, child_id)}"
        resource = parse_resource(child) if parse_resource(value) else None
        return [(child, resource)]

    return get


def _each_of(name: str, field: str) -> Callable[[Any], Named]:
    """The resources of every item of a repeated message field (a batch: all are checked, so
    one the caller may not reach refuses the whole batch before any item is applied)."""

    def get(request: Any) -> Named:
        return [
            (value, parse_resource(value))
            for value in (getattr(i, field) for i in getattr(request, name))
        ]

    return get


def _fields(*paths: str) -> Callable[[Any], Named]:
    """The resources named at dotted ``paths`` (``tell.trial``): every one is checked."""

    def get(request: Any) -> Named:
        values = []
        for path in paths:
            value = request
            for part in path.split("."):
                value = getattr(value, part)
            values.append((value, parse_resource(value)))
        return values

    return get


def _server(request: Any) -> Named:
    return [("", Resource.server())]


def _server_creating(collection: str, child_id: str) -> Callable[[Any], Named]:
    """An operator's create: about the server, and the audit names what it made."""

    def get(request: Any) -> Named:
        return [(f"{collection}/{getattr(request, child_id)}", Resource.server())]

    return get


def _server_naming(message: str, name: str) -> Callable[[Any], Named]:
    """An operator's change to a resource: about the server, and the audit names it."""

    def get(request: Any) -> Named:
        return [(getattr(getattr(request, message), name), Resource.server())]

    return get


def _nothing(request: Any) -> Named:
    return []


def _field_or_server(name: str) -> Callable[[Any], Named]:
    field = _field(name)

    def get(request: Any) -> Named:
        return field(request) if getattr(request, name) else _server(request)

    return get


def _rules(service: str, table: dict[str, Rule]) -> dict[str, Rule]:
    return {f"/hposerve.v1.{service}/{method}": rule for method, rule in table.items()}


R, L, W, A = Action.READ, Action.LIST, Action.WRITE, Action.ADMIN

RULES: dict[str, Rule] = {
    **_rules(
        "StudyService",
        {
            "CreateStudy": Rule(W, _child("parent", "study_id", "studies"), mutates=True),
            "GetStudy": Rule(R, _field("name")),
            "ListStudies": Rule(L, _field("parent")),
            "DeleteStudy": Rule(A, _field("name"), mutates=True),
            "AskTrials": Rule(W, _field("parent"), mutates=True),
            "SuggestParameter": Rule(W, _field("trial"), mutates=True),
            "ReportIntermediateValue": Rule(W, _field("trial"), mutates=True),
            "ReportIntermediateValues": Rule(W, _each_of("reports", "trial"), mutates=True),
            "ShouldPrune": Rule(R, _field("trial")),
            "TellTrial": Rule(W, _field("trial"), mutates=True),
            "TellAndAsk": Rule(W, _fields("tell.trial", "ask.parent"), mutates=True),
            "Heartbeat": Rule(W, _each("trials"), mutates=True),
            "GetTrial": Rule(R, _field("name")),
            "ListTrials": Rule(R, _field("parent")),
            "EnqueueTrial": Rule(W, _field("parent"), mutates=True),
            "SetTrialUserAttributes": Rule(W, _field("trial"), mutates=True),
            "GetBestTrial": Rule(R, _field("parent")),
            "GetParetoFront": Rule(R, _field("parent")),
            "AddTrials": Rule(W, _field("parent"), mutates=True),
            "GetStudyAttributes": Rule(R, _field("name")),
            "UpdateStudyAttributes": Rule(W, _field("name"), mutates=True),
            # Authenticated when it opens; each message is authorized by its own method's rule.
            "Session": Rule(None, _nothing),
        },
    ),
    **_rules(
        "ComparisonService",
        {
            # A comparison is about its namespace: its member studies are made and deleted.
            "CreateComparison": Rule(W, _field("parent"), mutates=True),
            "GetComparison": Rule(R, _field("name")),
            "ListComparisons": Rule(R, _field("parent")),
            "DeleteComparison": Rule(A, _field("name"), mutates=True),
            "AskComparisonTrial": Rule(W, _field("comparison"), mutates=True),
        },
    ),
    **_rules(
        "AdminService",
        {
            "WhoAmI": Rule(None, _nothing),
            "CreateTeam": Rule(A, _server_creating("teams", "team_id"), mutates=True),
            "ListTeams": Rule(None, _nothing),
            "AddMember": Rule(A, _field("team"), mutates=True),
            "RemoveMember": Rule(A, _field("team"), mutates=True),
            "ListMembers": Rule(R, _field("team")),
            "CreateServiceAccount": Rule(A, _field("team"), mutates=True),
            "IssueToken": Rule(A, _field("principal"), mutates=True),
            "RevokeToken": Rule(A, _field("name"), mutates=True),
            "ListTokens": Rule(A, _field("parent")),  # own or managed tokens; a study's links
            "CreateNamespace": Rule(
                A, _server_creating("namespaces", "namespace_id"), mutates=True
            ),
            "ListNamespaces": Rule(None, _nothing),
            "ShareStudy": Rule(A, _field("study"), mutates=True),
            "UnshareStudy": Rule(A, _field("study"), mutates=True),
            "ListShares": Rule(A, _field("parent")),
            "IssueShareToken": Rule(A, _field("study"), mutates=True),
            "ReadAudit": Rule(A, _field_or_server("parent")),
            "SetQuota": Rule(A, _server_naming("quota", "name"), mutates=True),
            "GetQuota": Rule(R, _field("name")),
        },
    ),
}

_SESSION_PREFIX = "/hposerve.v1.StudyService/"
# Request type -> its method: asked twice per session message (auth, metrics); a few types.
_SESSION_METHODS: dict[type, str] = {}


def session_method(call: str, request: Any) -> str:
    """The unary method a session message stands for (``ask_trials`` -> ``.../AskTrials``)."""
    kind = type(request)
    method = _SESSION_METHODS.get(kind)
    if method is None:
        method = _SESSION_PREFIX + kind.DESCRIPTOR.name.removesuffix("Request")
        _SESSION_METHODS[kind] = method
    return method
