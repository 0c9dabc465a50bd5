"""The interceptor and the AdminService through a real grpc.aio server, with the real
StudyService over a StudyRegistry: codes for every kind of caller, nothing changed on a
refusal, sessions authorized message by message, and the audit log."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hposerve.server.domain import StudyRef
from hposerve.server.transport._access_rules import RULES
from hposerve.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    comparison_service_pb2,
    study_service_pb2,
    study_service_pb2_grpc,
)
from hposerve.v1 import admin_service_pb2 as apb
from hposerve.v1 import study_service_pb2 as pb

from .conftest import AuthServer, World, code_of, create_study, metadata

UNAUTHENTICATED = ("no_token", "bad_token", "revoked", "expired_share")
READ, WRITE, ADMIN = 1, 2, 3
# principal -> resource -> the highest level allowed there (absent: none)
MOST: dict[str, dict[str, int]] = {
    "viewer": {"own": READ, "own_missing": READ},
    "editor": {"own": WRITE, "own_missing": WRITE},
    "admin": {"own": ADMIN, "own_missing": ADMIN},
    "other_team": {"other": WRITE, "other_missing": WRITE},
    "shared_viewer": {"own": READ},
    "shared_editor": {"own": WRITE},
    "operator": {r: ADMIN for r in ("own", "own_missing", "other", "other_missing")},
    "link_viewer": {"own": READ},
    "link_editor": {"own": WRITE},
}
STUDIES = {
    "own": "namespaces/a/studies/own",
    "own_missing": "namespaces/a/studies/ghost",
    "other": "namespaces/b/studies/theirs",
    "other_missing": "namespaces/b/studies/ghost",
}
DENIED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}


@pytest.fixture
def studies(world: World, channel: grpc.Channel) -> dict[str, str]:
    create_study(channel, world.tokens["operator"], "a", "own")
    create_study(channel, world.tokens["operator"], "b", "theirs")
    return STUDIES


def _snapshot(server: AuthServer) -> list[tuple[str, int]]:
    storage = server.storage
    return sorted(
        (s.study_name, len(storage.get_all_trials(s._study_id, deepcopy=False)))
        for s in storage.get_all_studies()
    )


def _calls(stub: Any, name: str) -> dict[str, tuple[int, Any]]:
    return {
        "GetStudy": (READ, lambda md: stub.GetStudy(pb.GetStudyRequest(name=name), metadata=md)),
        "ListTrials": (
            READ,
            lambda md: stub.ListTrials(pb.ListTrialsRequest(parent=name), metadata=md),
        ),
        "AskTrials": (
            WRITE,
            lambda md: stub.AskTrials(pb.AskTrialsRequest(parent=name), metadata=md),
        ),
    }


def test_every_rpc_of_every_service_has_a_rule() -> None:
    modules = (study_service_pb2, comparison_service_pb2, admin_service_pb2)
    methods = {
        f"/{service.full_name}/{method.name}"
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods == set(RULES)


def test_health_needs_no_token(channel: grpc.Channel) -> None:
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("who", [*MOST, *UNAUTHENTICATED])
def test_the_matrix_through_the_server(
    who: str, world: World, channel: grpc.Channel, auth_server: AuthServer, studies: dict[str, str]
) -> None:
    study_stub = study_service_pb2_grpc.StudyServiceStub(channel)
    admin_stub = admin_service_pb2_grpc.AdminServiceStub(channel)
    md = metadata(world.tokens[who])
    for where, name in studies.items():
        level = MOST.get(who, {}).get(where, 0)
        calls = _calls(study_stub, name)
        calls["ListShares"] = (
            ADMIN,
            lambda md, n=name: admin_stub.ListShares(apb.ListSharesRequest(parent=n), metadata=md),
        )
        if where.endswith("missing"):
            calls["DeleteStudy"] = (
                ADMIN,
                lambda md, n=name: study_stub.DeleteStudy(
                    pb.DeleteStudyRequest(name=n), metadata=md
                ),
            )
        for rpc, (needs, call) in calls.items():
            before = _snapshot(auth_server)
            code = code_of(lambda call=call: call(md))
            case = f"{who} {rpc} {name}"
            if who in UNAUTHENTICATED:
                assert code == grpc.StatusCode.UNAUTHENTICATED, case
            elif level < needs:
                assert code == grpc.StatusCode.PERMISSION_DENIED, case
            elif rpc == "GetStudy":
                exists = not where.endswith("missing")
                assert code == (grpc.StatusCode.OK if exists else grpc.StatusCode.NOT_FOUND), case
            else:
                assert code not in DENIED, case
            if code in DENIED:
                assert _snapshot(auth_server) == before, f"{case} changed something"


def test_a_name_of_no_known_shape_gets_the_servicers_answer(
    world: World, channel: grpc.Channel
) -> None:
    stub = study_service_pb2_grpc.StudyServiceStub(channel)
    call = lambda md: stub.GetStudy(pb.GetStudyRequest(name="garbage"), metadata=md)  # noqa: E731
    assert code_of(lambda: call(metadata(world.tokens["viewer"]))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert code_of(lambda: call([])) == grpc.StatusCode.UNAUTHENTICATED


def test_a_heartbeat_needs_every_study_it_names(
    world: World, channel: grpc.Channel, studies: dict[str, str]
) -> None:
    stub = study_service_pb2_grpc.StudyServiceStub(channel)
    trials = [f"{studies['own']}/trials/0", f"{studies['other']}/trials/0"]
    code = code_of(
        lambda: stub.Heartbeat(
            pb.HeartbeatRequest(trials=trials), metadata=metadata(world.tokens["editor"])
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


class _Session:
    """A session stream fed one request at a time."""

    def __init__(self, stub: Any, secret: str) -> None:
        self._requests: queue.Queue[pb.SessionRequest | None] = queue.Queue()
        self._responses = stub.Session(self._feed(), metadata=metadata(secret))

    def _feed(self) -> Iterator[pb.SessionRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def ask(self, parent: str) -> pb.SessionResponse:
        return self.call(ask_trials=pb.AskTrialsRequest(parent=parent))

    def call(self, **call: Any) -> pb.SessionResponse:
        self._requests.put(pb.SessionRequest(**call))
        return next(self._responses)

    def close(self) -> None:
        self._requests.put(None)
        for _ in self._responses:
            pass


def test_a_session_authorizes_every_message_and_goes_on(
    world: World, channel: grpc.Channel, studies: dict[str, str], auth_server: AuthServer
) -> None:
    session = _Session(study_service_pb2_grpc.StudyServiceStub(channel), world.tokens["editor"])
    assert session.ask(studies["own"]).WhichOneof("result") == "ask_trials"
    before = _snapshot(auth_server)
    refused = session.ask(studies["other"])
    assert refused.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert _snapshot(auth_server) == before
    assert session.ask(studies["own"]).WhichOneof("result") == "ask_trials"  # still open
    for token in world.store.tokens.tokens("users/editor", show_inactive=False):
        world.store.tokens.revoke_token(token.principal, token.token_id)
    late = session.ask(studies["own"])  # the fixture's store caches nothing
    assert late.error.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    session.close()


def test_a_batch_of_reports_naming_a_trial_the_caller_may_not_reach_is_refused_whole(
    world: World, channel: grpc.Channel, studies: dict[str, str], auth_server: AuthServer
) -> None:
    session = _Session(study_service_pb2_grpc.StudyServiceStub(channel), world.tokens["editor"])
    own = session.ask(studies["own"]).ask_trials.trials[0].name
    theirs = auth_server.registry.ask(_ref("other"), search_space={})
    foreign = f"{studies['other']}/trials/{theirs[0].ref.number}"

    def batch(*trials: str) -> pb.ReportIntermediateValuesRequest:
        return pb.ReportIntermediateValuesRequest(
            reports=[
                pb.ReportIntermediateValueRequest(trial=t, step=s, value=1.0)
                for s, t in enumerate(trials)
            ]
        )

    def values(study: str) -> list[dict[int, float]]:
        trials = auth_server.registry.list_trials(_ref(study), states=[], after=-1, limit=10)
        return [t.trial.intermediate_values for t in trials]

    refused = session.call(report_intermediate_values=batch(own, own, foreign))
    assert refused.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert values("own") == [{}] and values("other") == [{}]  # not even the own trial's
    accepted = session.call(report_intermediate_values=batch(own, own))
    assert accepted.HasField("report_intermediate_values")
    assert values("own") == [{0: 1.0, 1: 1.0}]
    session.close()


def _ref(where: str) -> StudyRef:
    namespace, study = STUDIES[where].removeprefix("namespaces/").split("/studies/")
    return StudyRef(namespace, study)


def test_a_session_without_a_token_is_refused(world: World, channel: grpc.Channel) -> None:
    session = _Session(study_service_pb2_grpc.StudyServiceStub(channel), "")
    with pytest.raises(grpc.RpcError) as e:
        session.ask(STUDIES["own"])
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_an_rpc_without_a_rule_is_refused(world: World, tmp_path: Path) -> None:
    rules = {k: v for k, v in RULES.items() if not k.endswith("/GetStudy")}
    server = AuthServer(world.store, tmp_path / "other", rules=rules)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = study_service_pb2_grpc.StudyServiceStub(channel)
            request = pb.GetStudyRequest(name=STUDIES["own"])
            md = metadata(world.tokens["operator"])
            assert code_of(lambda: stub.GetStudy(request, metadata=md)) == (
                grpc.StatusCode.PERMISSION_DENIED
            )
    finally:
        server.stop()
