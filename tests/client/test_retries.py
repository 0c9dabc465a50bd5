"""The client retries only what is safe to retry, and a retry changes nothing twice.

The table is checked against the service descriptors; the promise behind each entry is checked
against a real server by losing the first answer of a call (it reached the server, then the
client saw UNAVAILABLE) and retrying it.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from client_fakes import serving

from hposerve.client import (
    Client,
    ClientConfig,
    FloatDistribution,
    NotFound,
    Unavailable,
)
from hposerve.client._transport import RETRY, Retry, Transport, retried
from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc

FAST = ClientConfig(initial_backoff=0.01, max_backoff=0.02, max_attempts=3)
SERVICES = [
    pb.DESCRIPTOR.services_by_name["StudyService"],
    cpb.DESCRIPTOR.services_by_name["ComparisonService"],
]


# The table.


def test_every_rpc_has_a_retry_decision():
    methods = {m.name for service in SERVICES for m in service.methods}
    assert set(RETRY) == methods


def test_the_reasons_agree_with_the_requests():
    for service in SERVICES:
        for method in service.methods:
            has_id = "request_id" in method.input_type.fields_by_name
            reason = RETRY[method.name]
            # A request id is the reason exactly when the request has one to carry.
            assert (reason is Retry.REQUEST_ID) == has_id, method.name
            if method.client_streaming:
                assert reason is Retry.NEVER, method.name


def test_a_method_not_in_the_table_is_not_retried():
    assert not retried("NoSuchMethod")
    assert not retried("Session")
    assert retried("DeleteStudy") and retried("TellTrial") and retried("GetStudy")


class Flaky(study_service_pb2_grpc.StudyServiceServicer):
    """GetStudy answers UNAVAILABLE every time; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def GetStudy(self, request, context):  # noqa: N802
        self.attempts += 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "down")


@pytest.fixture
def flaky() -> Iterator[tuple[Flaky, str]]:
    service = Flaky()
    with serving(service) as target:
        yield service, target


@pytest.mark.parametrize("change", ["removed", "never"])
def test_the_transport_follows_the_table(flaky, monkeypatch, change):
    service, target = flaky
    with Client(target, config=FAST) as client, pytest.raises(Unavailable):
        client.get_study("s")
    assert service.attempts == 3  # a read: retried
    if change == "removed":
        monkeypatch.delitem(RETRY, "GetStudy")
    else:
        monkeypatch.setitem(RETRY, "GetStudy", Retry.NEVER)
    service.attempts = 0
    with Client(target, config=FAST) as client, pytest.raises(Unavailable):
        client.get_study("s")
    assert service.attempts == 1


# The promises, against a real server.


@pytest.fixture
def lose(monkeypatch) -> set[str]:
    """Methods whose next answer is lost: the call reaches the server, the client sees
    UNAVAILABLE and retries it."""
    lost: set[str] = set()
    invoke = Transport._invoke

    def losing(self, method, request, timeout, metadata):
        response = invoke(self, method, request, timeout, metadata)
        if method in lost:
            lost.discard(method)
            raise Unavailable(f"{method}: the answer was lost", code=grpc.StatusCode.UNAVAILABLE)
        return response

    monkeypatch.setattr(Transport, "_invoke", losing)
    return lost


@pytest.fixture(params=[True, False], ids=["session", "unary"])
def retrying(target, request) -> Iterator[Client]:
    config = ClientConfig(
        initial_backoff=0.01, max_backoff=0.02, sessions=request.param, heartbeat_interval=60
    )
    with Client(target, config=config) as client:
        yield client


def test_a_create_whose_answer_was_lost_returns_the_study(retrying, lose, study_name):
    lose.add("CreateStudy")
    study = retrying.create_study(name=study_name)  # not AlreadyExists
    assert not lose and study.name == study_name
    assert [s.name for s in retrying.list_studies()] == [study_name]


def test_a_delete_whose_answer_was_lost_is_ok(retrying, lose, study_name):
    study = retrying.create_study(name=study_name)
    lose.add("DeleteStudy")
    study.delete()  # not NotFound
    assert not lose
    with pytest.raises(NotFound):
        retrying.get_study(study_name)


def test_an_ask_whose_answer_was_lost_starts_one_trial(retrying, lose, study_name):
    study = retrying.create_study(name=study_name)
    lose.add("AskTrials")
    trial = study.ask({"x": FloatDistribution(0, 1)})
    assert not lose
    assert [(t.number, t.state) for t in study.trials] == [(trial.number, "running")]


def test_an_enqueue_whose_answer_was_lost_queues_once(retrying, lose, study_name):
    study = retrying.create_study(name=study_name)
    lose.add("EnqueueTrial")
    study.enqueue_trial({"x": 0.5})
    assert not lose
    assert len(study.get_trials(states=["waiting"])) == 1
    assert study.ask({"x": FloatDistribution(0, 1)}).params == {"x": 0.5}


def test_trial_calls_whose_answers_were_lost_happen_once(retrying, lose, study_name):
    study = retrying.create_study(name=study_name)
    trial = study.ask()
    lose.add("SuggestParameter")
    x = trial.suggest_float("x", 0, 1)
    lose.add("ReportIntermediateValue")
    assert trial.report(0.5, 0) is False
    lose.add("SetTrialUserAttributes")
    trial.set_user_attr("k", "v")
    lose.add("Heartbeat")
    response = retrying._transport.call("Heartbeat", pb.HeartbeatRequest(trials=[trial.name]))
    assert [lease.running for lease in response.leases] == [True]
    lose.add("TellTrial")
    frozen = study.tell(trial, 0.25)
    assert not lose
    assert frozen.state == "complete" and frozen.value == 0.25
    recorded = study.get_trial(trial.number)
    assert recorded.params == {"x": x}
    assert recorded.intermediate_values == {0: 0.5}
    assert recorded.user_attrs == {"k": "v"}
    assert recorded.state == "complete" and recorded.value == 0.25


def test_comparison_calls_whose_answers_were_lost_happen_once(retrying, lose, study_name):
    space = {"x": FloatDistribution(0, 1)}
    lose.add("CreateComparison")
    comparison = retrying.create_comparison(
        name=study_name, search_space=space, arms=["random"], seeds=1, trials_per_study=2
    )  # not AlreadyExists
    lose.add("AskComparisonTrial")
    trial = comparison.ask()
    assert trial is not None
    assert [m.n_asked for m in comparison.progress()] == [1]
    comparison.tell(trial, 0.5)
    lose.add("DeleteComparison")
    comparison.delete()  # not NotFound
    assert not lose
    with pytest.raises(NotFound):
        retrying.get_comparison(study_name)
