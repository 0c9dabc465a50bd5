"""The AdminService servicer: unpack the request, make one admin call, pack the answer.

Who may call what is decided before a method runs (``_auth``); the caller is
``current_principal()``. A retried mutation with the same request id gets its first answer from
the identity store's memo (shared by replicas); token issues are retried by the store itself,
which never keeps a secret.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import empty_pb2
from google.protobuf.message import Message

from hposerve.server.domain._access import Principal, Role
from hposerve.server.domain._admin import (
    AdminOps,
    AuditRecord,
    MemberInfo,
    NamespaceInfo,
    ShareInfo,
    TokenInfo,
)
from hposerve.server.domain._exceptions import FailedPrecondition
from hposerve.server.domain._quotas import QuotaLimits, QuotaOverride
from hposerve.server.transport import _converters as conv
from hposerve.server.transport._auth import current_principal
from hposerve.server.transport._errors import rpc
from hposerve.v1 import admin_service_pb2 as apb
from hposerve.v1 import admin_service_pb2_grpc

__all__ = ["AdminServicer"]

F = TypeVar("F", bound=Callable[..., Any])
_PAGE = {"default": 100, "maximum": 1000}
_ROLES = frozenset(r.value for r in Role)


def _caller() -> Principal:
    principal = current_principal()
    if principal is None:
        raise FailedPrecondition("the AdminService answers only with authentication on")
    return principal


def remembered(answer_type: type[Message]) -> Callable[[F], F]:
    """Makes a mutation answer a retried request id with its first answer (from the store)."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: AdminServicer, request: Any, context: Any) -> Any:
            if not request.request_id:
                return method(self, request, context)
            store, caller = self._ops.store, _caller().name
            found = store.recall(caller, request.request_id, method.__name__)
            if found is not None:
                return answer_type.FromString(found)
            answer = method(self, request, context)
            store.remember(caller, request.request_id, method.__name__, answer.SerializeToString())
            return answer

        return wrapper  # type: ignore[return-value]

    return decorate


def _role(value: int) -> Role | None:
    return Role(value) if value in _ROLES else None


def _seconds(duration: Any, present: bool) -> float | None:
    return duration.ToNanoseconds() / 1e9 if present else None


def member_to_proto(m: MemberInfo) -> apb.Member:
    return apb.Member(team=f"teams/{m.team}", principal=m.principal, role=m.role.name)


def token_to_proto(t: TokenInfo) -> apb.Token:
    return apb.Token(
        name=t.name,
        principal=t.principal,
        description=t.description,
        create_time=conv.timestamp(t.created_at),
        expire_time=conv.timestamp(t.expires_at),
        revoke_time=conv.timestamp(t.revoked_at),
        scope_study=f"namespaces/{t.scope.namespace}/studies/{t.scope.study}" if t.scope else "",
        scope_role=t.scope.role.name if t.scope else "ROLE_UNSPECIFIED",
    )


def namespace_to_proto(n: NamespaceInfo) -> apb.Namespace:
    return apb.Namespace(
        name=f"namespaces/{n.namespace}",
        team=f"teams/{n.team}",
        create_time=conv.timestamp(n.created_at),
    )


def share_to_proto(s: ShareInfo) -> apb.Share:
    return apb.Share(
        study=str(s.study),
        team=f"teams/{s.team}",
        role=s.role.name,
        create_time=conv.timestamp(s.created_at),
    )


def audit_to_proto(r: AuditRecord) -> apb.AuditRecord:
    return apb.AuditRecord(
        sequence=r.sequence,
        time=conv.timestamp(r.time),
        principal=r.principal,
        namespace=r.namespace,
        method=r.method,
        resource=r.resource,
        request_id=r.request_id,
        outcome=r.outcome,
    )


def quota_to_proto(namespace_name: str, limits: QuotaLimits) -> apb.Quota:
    return apb.Quota(
        name=namespace_name,
        max_studies=limits.studies,
        max_running_trials=limits.running_trials,
        max_asks_per_second=limits.asks_per_second,
    )


def quota_from_proto(quota: apb.Quota) -> QuotaOverride:
    def given(field: str) -> Any:
        return getattr(quota, field) if quota.HasField(field) else None

    return QuotaOverride(
        studies=given("max_studies"),
        running_trials=given("max_running_trials"),
        asks_per_second=given("max_asks_per_second"),
    )


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    """Serves ``AdminOps`` over gRPC. Every method is plain: the server runs it on its pool."""

    def __init__(self, ops: AdminOps) -> None:
        self._ops = ops

    @rpc
    def WhoAmI(self, request: apb.WhoAmIRequest, context: Any) -> apb.WhoAmIResponse:
        p = _caller()
        return apb.WhoAmIResponse(
            principal=p.name,
            operator=p.operator,
            memberships=[
                member_to_proto(MemberInfo(t, p.name, r)) for t, r in sorted(p.teams.items())
            ],
            scope_study=f"namespaces/{p.scope.namespace}/studies/{p.scope.study}"
            if p.scope
            else "",
            scope_role=p.scope.role.name if p.scope else "ROLE_UNSPECIFIED",
            token_expire_time=conv.timestamp(p.expires_at),
        )

    @rpc
    @remembered(apb.Team)
    def CreateTeam(self, request: apb.CreateTeamRequest, context: Any) -> apb.Team:
        info = self._ops.create_team(request.team_id)
        return apb.Team(name=f"teams/{info.team}", create_time=conv.timestamp(info.created_at))

    @rpc
    def ListTeams(self, request: apb.ListTeamsRequest, context: Any) -> apb.ListTeamsResponse:
        limit = conv.page_size(request.page_size, **_PAGE)
        after = conv.decode_page_token(request.page_token, "")
        infos, token = conv.page(
            self._ops.list_teams(_caller(), after=after, limit=limit + 1), limit, lambda i: i.team
        )
        teams = [
            apb.Team(name=f"teams/{i.team}", create_time=conv.timestamp(i.created_at))
            for i in infos
        ]
        return apb.ListTeamsResponse(teams=teams, next_page_token=token)

    @rpc
    @remembered(apb.Member)
    def AddMember(self, request: apb.AddMemberRequest, context: Any) -> apb.Member:
        return member_to_proto(
            self._ops.add_member(request.team, request.principal, _role(request.role))
        )

    @rpc
    @remembered(empty_pb2.Empty)
    def RemoveMember(self, request: apb.RemoveMemberRequest, context: Any) -> empty_pb2.Empty:
        self._ops.remove_member(request.team, request.principal)
        return empty_pb2.Empty()

    @rpc
    def ListMembers(self, request: apb.ListMembersRequest, context: Any) -> apb.ListMembersResponse:
        return apb.ListMembersResponse(
            members=[member_to_proto(m) for m in self._ops.members(request.team)]
        )

    @rpc
    @remembered(apb.ServiceAccount)
    def CreateServiceAccount(
        self, request: apb.CreateServiceAccountRequest, context: Any
    ) -> apb.ServiceAccount:
        name = self._ops.create_service_account(
            request.team,
            request.service_account_id,
            role=_role(request.role),
            description=request.description,
        )
        return apb.ServiceAccount(name=name, description=request.description)

    @rpc
    def IssueToken(self, request: apb.IssueTokenRequest, context: Any) -> apb.IssuedToken:
        info, secret = self._ops.issue_token(
            _caller(),
            request.principal,
            ttl=_seconds(request.ttl, request.HasField("ttl")),
            description=request.description,
            request_id=request.request_id,
        )
        return apb.IssuedToken(token=token_to_proto(info), secret=secret)

    @rpc
    @remembered(empty_pb2.Empty)
    def RevokeToken(self, request: apb.RevokeTokenRequest, context: Any) -> empty_pb2.Empty:
        self._ops.revoke_token(request.name)
        return empty_pb2.Empty()

    @rpc
    def ListTokens(self, request: apb.ListTokensRequest, context: Any) -> apb.ListTokensResponse:
        tokens = self._ops.tokens(request.parent, show_inactive=request.show_inactive)
        return apb.ListTokensResponse(tokens=[token_to_proto(t) for t in tokens])

    @rpc
    @remembered(apb.Namespace)
    def CreateNamespace(self, request: apb.CreateNamespaceRequest, context: Any) -> apb.Namespace:
        return namespace_to_proto(self._ops.create_namespace(request.namespace_id, request.team))

    @rpc
    def ListNamespaces(
        self, request: apb.ListNamespacesRequest, context: Any
    ) -> apb.ListNamespacesResponse:
        limit = conv.page_size(request.page_size, **_PAGE)
        after = conv.decode_page_token(request.page_token, "")
        found = self._ops.list_namespaces(_caller(), after=after, limit=limit + 1)
        infos, token = conv.page(found, limit, lambda i: i.namespace)
        return apb.ListNamespacesResponse(
            namespaces=[namespace_to_proto(i) for i in infos], next_page_token=token
        )

    @rpc
    @remembered(apb.Share)
    def ShareStudy(self, request: apb.ShareStudyRequest, context: Any) -> apb.Share:
        return share_to_proto(
            self._ops.share_study(request.study, request.team, _role(request.role))
        )

    @rpc
    @remembered(empty_pb2.Empty)
    def UnshareStudy(self, request: apb.UnshareStudyRequest, context: Any) -> empty_pb2.Empty:
        self._ops.unshare_study(request.study, request.team)
        return empty_pb2.Empty()

    @rpc
    def ListShares(self, request: apb.ListSharesRequest, context: Any) -> apb.ListSharesResponse:
        return apb.ListSharesResponse(
            shares=[share_to_proto(s) for s in self._ops.shares(request.parent)]
        )

    @rpc
    def IssueShareToken(self, request: apb.IssueShareTokenRequest, context: Any) -> apb.IssuedToken:
        info, secret = self._ops.issue_share_token(
            request.study,
            _role(request.role),
            ttl=_seconds(request.ttl, request.HasField("ttl")),
            description=request.description,
            request_id=request.request_id,
        )
        return apb.IssuedToken(token=token_to_proto(info), secret=secret)

    @rpc
    def ReadAudit(self, request: apb.ReadAuditRequest, context: Any) -> apb.ReadAuditResponse:
        limit = conv.page_size(request.page_size, **_PAGE)
        before = conv.decode_page_token(request.page_token, 0) or None
        records = self._ops.read_audit(request.parent, before=before, limit=limit + 1)
        records, token = conv.page(records, limit, lambda r: r.sequence)
        return apb.ReadAuditResponse(
            records=[audit_to_proto(r) for r in records], next_page_token=token
        )

    @rpc
    @remembered(apb.Quota)
    def SetQuota(self, request: apb.SetQuotaRequest, context: Any) -> apb.Quota:
        limits = self._ops.set_quota(request.quota.name, quota_from_proto(request.quota))
        return quota_to_proto(request.quota.name, limits)

    @rpc
    def GetQuota(self, request: apb.GetQuotaRequest, context: Any) -> apb.Quota:
        return quota_to_proto(request.name, self._ops.quota(request.name))
