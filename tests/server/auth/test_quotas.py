"""Quotas per namespace through real servers: studies, running trials and asks per second
answer RESOURCE_EXHAUSTED with RetryInfo and QuotaFailure, change nothing, and leave other
namespaces alone; operators set them per namespace through the AdminService."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hposerve.server import make_server
from hposerve.server.domain import QuotaLimits
from hposerve.server.storage._identity import IdentityStore
from hposerve.server.transport import Server
from hposerve.v1 import admin_service_pb2 as apb
from hposerve.v1 import admin_service_pb2_grpc, study_service_pb2_grpc, types_pb2
from hposerve.v1 import study_service_pb2 as pb

from .conftest import World, code_of, metadata, populate

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _details(error: grpc.RpcError) -> tuple[float, str]:
    """(the RetryInfo delay, the QuotaFailure subject) of a RESOURCE_EXHAUSTED answer."""
    status = rpc_status.from_call(error)
    assert status is not None
    delay, subject = -1.0, ""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            delay = info.retry_delay.ToNanoseconds() / 1e9
        if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            failure = error_details_pb2.QuotaFailure()
            detail.Unpack(failure)
            subject = failure.violations[0].subject
    return delay, subject


def _refusal(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        call()
    assert e.value.code() == EXHAUSTED, e.value
    return e.value


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(**kwargs: Any) -> tuple[Server, Any]:
        server = make_server("127.0.0.1:0", data_dir=tmp_path / "data", **kwargs).start()
        started.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        return server, study_service_pb2_grpc.StudyServiceStub(channel)

    yield start
    for server in started:
        server.stop()


def _create(stub: Any, namespace: str, study: str, **kwargs: Any) -> Any:
    request = pb.CreateStudyRequest(parent=f"namespaces/{namespace}", study_id=study, **kwargs)
    return lambda md=(): stub.CreateStudy(request, metadata=md)


def _studies(stub: Any, namespace: str) -> list[str]:
    answer = stub.ListStudies(pb.ListStudiesRequest(parent=f"namespaces/{namespace}"))
    return [s.name for s in answer.studies]


def test_the_studies_quota(server_with: Any) -> None:
    _, stub = server_with(quotas=QuotaLimits(studies=2))
    _create(stub, "a", "one")()
    _create(stub, "a", "two")()
    delay, subject = _details(_refusal(_create(stub, "a", "three")))
    assert subject == "studies" and delay > 0
    assert len(_studies(stub, "a")) == 2  # nothing made
    _create(stub, "a", "two", load_if_exists=True)()  # loading makes nothing: admitted
    _create(stub, "b", "one")()  # another namespace has its own count


def test_the_running_trials_quota(server_with: Any) -> None:
    _, stub = server_with(quotas=QuotaLimits(running_trials=2))
    _create(stub, "a", "s")()
    ask = pb.AskTrialsRequest(parent="namespaces/a/studies/s")
    first = stub.AskTrials(ask).trials[0]
    stub.AskTrials(ask)
    error = _refusal(lambda: stub.AskTrials(ask))
    assert error.details() and "running trials" in error.details()
    assert _details(error)[1] == "running_trials"
    listed = stub.ListTrials(pb.ListTrialsRequest(parent="namespaces/a/studies/s")).trials
    assert len(listed) == 2  # the refused ask started nothing
    stub.TellTrial(pb.TellTrialRequest(trial=first.name, state=types_pb2.COMPLETE, values=[1.0]))
    time.sleep(0.6)  # the running count is read again after at most 0.5 s
    stub.AskTrials(ask)


def test_the_asks_per_second_quota_unary_and_on_a_session(server_with: Any) -> None:
    _, stub = server_with(quotas=QuotaLimits(asks_per_second=1))
    for study in ("s", "t"):
        _create(stub, "a", study)()
    _create(stub, "b", "s")()
    ask = pb.AskTrialsRequest(parent="namespaces/a/studies/s")
    started = time.monotonic()
    codes = [code_of(lambda: stub.AskTrials(ask)) for _ in range(4)]
    assert codes == [grpc.StatusCode.OK] + [EXHAUSTED] * 3
    assert time.monotonic() - started >= 0.3  # each refusal is answered after 0.1 s
    delay, subject = _details(_refusal(lambda: stub.AskTrials(ask)))
    assert subject == "asks_per_second" and 0 < delay <= 1.0
    listed = stub.ListTrials(pb.ListTrialsRequest(parent="namespaces/a/studies/s")).trials
    assert len(listed) == 1  # the refused asks started nothing
    # Another namespace is not held back; the same namespace through a session is.
    other_ask = pb.AskTrialsRequest(parent="namespaces/b/studies/s")
    assert code_of(lambda: stub.AskTrials(other_ask)) == grpc.StatusCode.OK
    on_session = pb.SessionRequest(ask_trials=pb.AskTrialsRequest(parent="namespaces/a/studies/t"))
    responses = list(stub.Session(iter([on_session] * 3)))
    assert [r.WhichOneof("result") for r in responses] == ["error"] * 3
    assert {r.error.code for r in responses} == {EXHAUSTED.value[0]}
    time.sleep(1.0)
    assert stub.AskTrials(ask).trials  # refilled


def _company(data_dir: Path) -> World:
    store = IdentityStore.open(data_dir=data_dir, cache_seconds=0.0).start()
    world = populate(store)
    store.close()
    return world


def test_operators_set_quotas_per_namespace(server_with: Any, tmp_path: Path) -> None:
    world = _company(tmp_path / "data")
    server, stub = server_with(auth=True, quotas=QuotaLimits(studies=5))
    admin = admin_service_pb2_grpc.AdminServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.port}")
    )
    op, editor = metadata(world.tokens["operator"]), metadata(world.tokens["editor"])
    get = apb.GetQuotaRequest(name="namespaces/a/quota")
    assert admin.GetQuota(get, metadata=editor).max_studies == 5  # the server's default
    set_one = apb.SetQuotaRequest(quota=apb.Quota(name="namespaces/a/quota", max_studies=1))
    assert code_of(lambda: admin.SetQuota(set_one, metadata=editor)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    answer = admin.SetQuota(set_one, metadata=op)
    assert (answer.max_studies, answer.max_running_trials, answer.max_asks_per_second) == (1, 0, 0)
    assert admin.GetQuota(get, metadata=editor).max_studies == 1
    _create(stub, "a", "one")(editor)
    error = _refusal(lambda: _create(stub, "a", "two")(editor))
    assert "namespaces/a" in error.details() and "1 studies" in error.details()
    _create(stub, "b", "one")(metadata(world.tokens["other_team"]))  # b keeps the default
    bad = apb.SetQuotaRequest(quota=apb.Quota(name="namespaces/a/quota", max_studies=-1))
    assert code_of(lambda: admin.SetQuota(bad, metadata=op)) == grpc.StatusCode.INVALID_ARGUMENT
    assert admin.GetQuota(get, metadata=editor).max_studies == 1  # unchanged
    server.identity.audit.flush()
    outcomes = [
        (r.method.rsplit("/", 1)[1], r.outcome)
        for r in server.identity.audit.read(namespace="a", before=None, limit=10)
    ]
    assert ("CreateStudy", "RESOURCE_EXHAUSTED") in outcomes, outcomes
