"""The access matrix through ``make_server(auth=True)``: every RPC of every hposerve service
(read from the descriptors: a new RPC without a case here fails) × every kind of caller ×
own, another team's and nonexistent resources gives the expected code; a denial is the same
whether or not the resource exists, and changes nothing (studies, trials, identity rows).

What each caller may do is modelled here independently of ``_access_rules``: the roles of
``conftest.populate`` (team ``a`` owns ``a``, ``b`` owns ``b``, ``a/own`` shared with ``s1``
as viewer and ``s2`` as editor, share links to ``a/own``).
"""

from __future__ import annotations

import contextlib
import functools
import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import message_factory
from optuna.study import StudyDirection

from hposerve.server import make_server
from hposerve.server.domain import NotFound, StudyOptions, StudyRef
from hposerve.server.domain._access import Role
from hposerve.server.storage._identity import IdentityStore
from hposerve.server.transport import Server
from hposerve.v1 import admin_service_pb2, comparison_service_pb2, study_service_pb2
from hposerve.v1 import admin_service_pb2 as apb
from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import study_service_pb2 as pb

from .conftest import metadata, populate

ANY, READ, WRITE, ADMIN, OPERATOR, LIST = "any", 1, 2, 3, "operator", "list"
DENIED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
UNAUTHENTICATED = ("no_token", "bad_token", "revoked", "expired_share")
CALLERS = (
    "viewer",
    "editor",
    "admin",
    "other_team",
    "shared_viewer",
    "shared_editor",
    "operator",
    "link_viewer",
    "link_editor",
    *UNAUTHENTICATED,
)
# The caller's role in each namespace its team owns (and in that team), and on shared studies.
ROLES: dict[str, dict[str, int]] = {
    "viewer": {"a": READ},
    "editor": {"a": WRITE},
    "admin": {"a": ADMIN},
    "other_team": {"b": WRITE},
}
SHARED: dict[str, int] = {
    "shared_viewer": READ,
    "shared_editor": WRITE,
    "link_viewer": READ,
    "link_editor": WRITE,
}
# Targets of each kind of resource: (namespace or team, study or account or None).
TARGETS: dict[str, dict[str, tuple[str, str | None]]] = {
    "study": {
        "own": ("a", "own"),
        "other": ("b", "theirs"),
        "own_missing": ("a", "ghost"),
        "other_missing": ("b", "ghost"),
    },
    "namespace": {"own": ("a", None), "other": ("b", None), "missing": ("zz", None)},
    "team": {"own": ("a", None), "other": ("b", None), "missing": ("ghost", None)},
    "account": {"own": ("a", "bot"), "other": ("b", "bot"), "missing": ("a", "ghost")},
    "server": {"server": ("", None)},
}


def _study(t: tuple[str, str | None]) -> str:
    return f"namespaces/{t[0]}/studies/{t[1]}"


def _trial(t: tuple[str, str | None]) -> str:
    return _study(t) + "/trials/0"


def _ns(t: tuple[str, str | None]) -> str:
    return f"namespaces/{t[0]}"


def _team(t: tuple[str, str | None]) -> str:
    return f"teams/{t[0]}"


def _account(t: tuple[str, str | None]) -> str:
    return f"teams/{t[0]}/serviceAccounts/{t[1]}"


Build = Callable[[tuple[str, str | None]], Any]
# Full method -> (kind of resource, what it needs there, its request for a target)
CASES: dict[str, tuple[str, Any, Build]] = (
    {
        f"/hposerve.v1.StudyService/{k}": v
        for k, v in {
            "CreateStudy": (
                "study",
                WRITE,
                lambda t: pb.CreateStudyRequest(parent=_ns(t), study_id=t[1]),
            ),
            "GetStudy": ("study", READ, lambda t: pb.GetStudyRequest(name=_study(t))),
            "ListStudies": ("namespace", LIST, lambda t: pb.ListStudiesRequest(parent=_ns(t))),
            "DeleteStudy": ("study", ADMIN, lambda t: pb.DeleteStudyRequest(name=_study(t))),
            "AskTrials": ("study", WRITE, lambda t: pb.AskTrialsRequest(parent=_study(t))),
            "SuggestParameter": (
                "study",
                WRITE,
                lambda t: pb.SuggestParameterRequest(trial=_trial(t)),
            ),
            "ReportIntermediateValue": (
                "study",
                WRITE,
                lambda t: pb.ReportIntermediateValueRequest(trial=_trial(t), step=1, value=0.5),
            ),
            # A batch naming one foreign trial among own ones is refused whole: covered by
            # tests/server/test_sessions.py; here every report names the target's trial.
            "ReportIntermediateValues": (
                "study",
                WRITE,
                lambda t: pb.ReportIntermediateValuesRequest(
                    reports=[
                        pb.ReportIntermediateValueRequest(trial=_trial(t), step=s, value=0.5)
                        for s in (1, 2)
                    ]
                ),
            ),
            "ShouldPrune": ("study", READ, lambda t: pb.ShouldPruneRequest(trial=_trial(t))),
            "TellTrial": (
                "study",
                WRITE,
                lambda t: pb.TellTrialRequest(trial=_trial(t), values=[1.0]),
            ),
            "TellAndAsk": (
                "study",
                WRITE,
                lambda t: pb.TellAndAskRequest(
                    tell=pb.TellTrialRequest(trial=_trial(t), values=[1.0]),
                    ask=pb.AskTrialsRequest(parent=_study(t)),
                ),
            ),
            "Heartbeat": ("study", WRITE, lambda t: pb.HeartbeatRequest(trials=[_trial(t)])),
            "GetTrial": ("study", READ, lambda t: pb.GetTrialRequest(name=_trial(t))),
            "ListTrials": ("study", READ, lambda t: pb.ListTrialsRequest(parent=_study(t))),
            "EnqueueTrial": ("study", WRITE, lambda t: pb.EnqueueTrialRequest(parent=_study(t))),
            "SetTrialUserAttributes": (
                "study",
                WRITE,
                lambda t: pb.SetTrialUserAttributesRequest(trial=_trial(t)),
            ),
            "GetBestTrial": ("study", READ, lambda t: pb.GetBestTrialRequest(parent=_study(t))),
            "GetParetoFront": ("study", READ, lambda t: pb.GetParetoFrontRequest(parent=_study(t))),
            "AddTrials": ("study", WRITE, lambda t: pb.AddTrialsRequest(parent=_study(t))),
            "GetStudyAttributes": (
                "study",
                READ,
                lambda t: pb.GetStudyAttributesRequest(name=_study(t)),
            ),
            "UpdateStudyAttributes": (
                "study",
                WRITE,
                lambda t: pb.UpdateStudyAttributesRequest(name=_study(t)),
            ),
            "Session": ("study", WRITE, lambda t: pb.AskTrialsRequest(parent=_study(t))),
        }.items()
    }
    | {
        f"/hposerve.v1.ComparisonService/{k}": v
        for k, v in {
            "CreateComparison": (
                "namespace",
                WRITE,
                lambda t: cpb.CreateComparisonRequest(parent=_ns(t), comparison_id="cmp"),
            ),
            "GetComparison": (
                "namespace",
                READ,
                lambda t: cpb.GetComparisonRequest(name=_ns(t) + "/comparisons/cmp"),
            ),
            "ListComparisons": (
                "namespace",
                READ,
                lambda t: cpb.ListComparisonsRequest(parent=_ns(t)),
            ),
            "DeleteComparison": (
                "namespace",
                ADMIN,
                lambda t: cpb.DeleteComparisonRequest(name=_ns(t) + "/comparisons/cmp"),
            ),
            "AskComparisonTrial": (
                "namespace",
                WRITE,
                lambda t: cpb.AskComparisonTrialRequest(comparison=_ns(t) + "/comparisons/cmp"),
            ),
        }.items()
    }
    | {
        f"/hposerve.v1.AdminService/{k}": v
        for k, v in {
            "WhoAmI": ("server", ANY, lambda t: apb.WhoAmIRequest()),
            "CreateTeam": ("server", OPERATOR, lambda t: apb.CreateTeamRequest(team_id="t-new")),
            "ListTeams": ("server", ANY, lambda t: apb.ListTeamsRequest()),
            "AddMember": (
                "team",
                ADMIN,
                lambda t: apb.AddMemberRequest(team=_team(t), principal="users/x", role=apb.VIEWER),
            ),
            "RemoveMember": (
                "team",
                ADMIN,
                lambda t: apb.RemoveMemberRequest(team=_team(t), principal="users/x"),
            ),
            "ListMembers": ("team", READ, lambda t: apb.ListMembersRequest(team=_team(t))),
            "CreateServiceAccount": (
                "team",
                ADMIN,
                lambda t: apb.CreateServiceAccountRequest(team=_team(t), service_account_id="bot2"),
            ),
            "IssueToken": (
                "account",
                ADMIN,
                lambda t: apb.IssueTokenRequest(principal=_account(t)),
            ),
            "RevokeToken": (
                "account",
                ADMIN,
                lambda t: apb.RevokeTokenRequest(name=_account(t) + "/tokens/none"),
            ),
            "ListTokens": ("account", ADMIN, lambda t: apb.ListTokensRequest(parent=_account(t))),
            "CreateNamespace": (
                "server",
                OPERATOR,
                lambda t: apb.CreateNamespaceRequest(namespace_id="n-new", team="teams/a"),
            ),
            "ListNamespaces": ("server", ANY, lambda t: apb.ListNamespacesRequest()),
            "ShareStudy": (
                "study",
                ADMIN,
                lambda t: apb.ShareStudyRequest(study=_study(t), team="teams/t0", role=apb.VIEWER),
            ),
            "UnshareStudy": (
                "study",
                ADMIN,
                lambda t: apb.UnshareStudyRequest(study=_study(t), team="teams/t0"),
            ),
            "ListShares": ("study", ADMIN, lambda t: apb.ListSharesRequest(parent=_study(t))),
            "IssueShareToken": (
                "study",
                ADMIN,
                lambda t: apb.IssueShareTokenRequest(study=_study(t), role=apb.VIEWER),
            ),
            "ReadAudit": ("namespace", ADMIN, lambda t: apb.ReadAuditRequest(parent=_ns(t))),
            "SetQuota": (
                "namespace",
                OPERATOR,
                lambda t: apb.SetQuotaRequest(quota=apb.Quota(name=_ns(t) + "/quota")),
            ),
            "GetQuota": ("namespace", READ, lambda t: apb.GetQuotaRequest(name=_ns(t) + "/quota")),
        }.items()
    }
)
SERVICES = [
    service
    for module in (study_service_pb2, comparison_service_pb2, admin_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
]


def allowed(who: str, kind: str, needs: Any, target: tuple[str, str | None]) -> bool:
    """The model: may ``who`` make a call that ``needs`` this on ``target``?"""
    if who in UNAUTHENTICATED:
        return False
    if who == "operator" or needs == ANY:
        return who == "operator" or needs == ANY
    if needs == OPERATOR:
        return False
    space, item = target
    role = ROLES.get(who, {}).get(space, 0)
    if kind == "study" and (space, item) == ("a", "own"):
        role = max(role, SHARED.get(who, 0))
    if needs == LIST:
        return role > 0 or (space == "a" and who in SHARED)
    if kind == "account":
        return role >= ADMIN
    if who.startswith("link_") and kind != "study":
        return False
    return role >= needs


def test_every_rpc_has_a_case() -> None:
    methods = {f"/{s.full_name}/{m.name}" for s in SERVICES for m in s.methods}
    assert methods == set(CASES), methods ^ set(CASES)


@pytest.fixture(scope="module")
def world_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, dict[str, str], Path]]:
    data_dir = tmp_path_factory.mktemp("matrix") / "data"
    store = IdentityStore.open(data_dir=data_dir, cache_seconds=0.0).start()
    tokens = populate(store).tokens
    store.directory.create_team("t0")
    for team in ("a", "b"):
        store.directory.create_service_account(team, "bot", role=Role.EDITOR, description="")
    store.close()
    server = make_server("127.0.0.1:0", data_dir=data_dir, auth=True).start()
    yield server, tokens, data_dir
    server.stop()


def _reset(server: Server) -> None:
    """The studies the cases expect: a/own and b/theirs with a running trial 0, no ghosts."""
    registry = server.registry
    for ref in (StudyRef("a", "ghost"), StudyRef("b", "ghost")):
        with contextlib.suppress(NotFound):
            registry.delete_study(ref)
    for ref in (StudyRef("a", "own"), StudyRef("b", "theirs")):
        try:
            registry.get_study(ref)
        except NotFound:
            registry.create_study(
                ref,
                directions=[StudyDirection.MINIMIZE],
                sampler=None,
                pruner=None,
                options=StudyOptions(),
                load_if_exists=True,
            )
            registry.ask(ref, search_space={})


@functools.cache
def _identity_tables(data_dir: Path) -> tuple[sa.Engine, list[sa.Table]]:
    """The identity store's tables but the logs (a denial is audited: that is its change)."""
    engine = sa.create_engine(f"sqlite:///{data_dir / 'identity.db'}")
    meta = sa.MetaData()
    meta.reflect(engine)
    skip = ("hposerve_audit", "hposerve_requests")
    return engine, [t for name, t in meta.tables.items() if name not in skip]


def _snapshot(server: Server, data_dir: Path) -> Any:
    studies = []
    for ref in (StudyRef("a", "own"), StudyRef("b", "theirs"), StudyRef("a", "ghost")):
        try:
            trials = server.registry.list_trials(ref, states=[], after=-1, limit=100)
            studies.append((str(ref), [(t.ref.number, t.state, t.values) for t in trials]))
        except Exception as e:
            studies.append((str(ref), type(e).__name__))
    engine, tables = _identity_tables(data_dir)
    with engine.connect() as conn:
        rows = {t.name: sorted(map(tuple, conn.execute(sa.select(t)))) for t in tables}
    return studies, rows


def _call(
    channel: grpc.Channel, method: str, request: Any, md: list[tuple[str, str]]
) -> grpc.StatusCode:
    service_name, name = method.lstrip("/").split("/")
    service = next(s for s in SERVICES if s.full_name == service_name)
    answer = message_factory.GetMessageClass(service.methods_by_name[name].output_type)
    try:
        if name == "Session":
            return _session_call(channel, method, request, md)
        channel.unary_unary(
            method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=answer.FromString,
        )(request, metadata=md, timeout=30)
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def _session_call(
    channel: grpc.Channel, method: str, ask: Any, md: list[tuple[str, str]]
) -> grpc.StatusCode:
    requests: queue.Queue[pb.SessionRequest | None] = queue.Queue()
    requests.put(pb.SessionRequest(ask_trials=ask))
    requests.put(None)
    stream = channel.stream_stream(
        method,
        request_serializer=pb.SessionRequest.SerializeToString,
        response_deserializer=pb.SessionResponse.FromString,
    )(iter(requests.get, None), metadata=md, timeout=30)
    responses = list(stream)
    if responses and responses[0].WhichOneof("result") == "error":
        return grpc.StatusCode(
            next(c for c in grpc.StatusCode if c.value[0] == responses[0].error.code)
        )
    return grpc.StatusCode.OK


@pytest.mark.parametrize("who", CALLERS)
def test_the_matrix(who: str, world_server: tuple[Server, dict[str, str], Path]) -> None:
    server, tokens, data_dir = world_server
    md = metadata(tokens[who])
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for method, (kind, needs, build) in CASES.items():
            denials: dict[str, grpc.StatusCode] = {}
            for where, target in TARGETS[kind].items():
                _reset(server)
                before = _snapshot(server, data_dir)
                code = _call(channel, method, build(target), md)
                case = f"{who} {method} {where}"
                if who in UNAUTHENTICATED:
                    assert code == grpc.StatusCode.UNAUTHENTICATED, case
                elif allowed(who, kind, needs, target):
                    assert code not in DENIED, f"{case}: {code}"
                else:
                    assert code == grpc.StatusCode.PERMISSION_DENIED, f"{case}: {code}"
                if code in DENIED:
                    assert _snapshot(server, data_dir) == before, f"{case} changed something"
                    denials[where] = code
            # Denied alike whether or not it exists: no probing for names.
            for existing, missing in (("own", "own_missing"), ("other", "other_missing")):
                if existing in denials and missing in TARGETS[kind]:
                    assert denials.get(missing) == denials[existing], f"{who} {method} {missing}"
