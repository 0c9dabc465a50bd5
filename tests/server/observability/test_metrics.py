"""Metrics scraped from /metrics during a workload match what the workload did."""

from __future__ import annotations

import time

import grpc
import pytest

from hposerve.client import Client, ClientConfig, FloatDistribution, NotFound, PermissionDenied
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc

from .conftest import Running, sample

M = "/hposerve.v1.StudyService/"


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_counts_match_the_workload(observed: Running) -> None:
    with Client(observed.target) as client:
        study = client.create_study(name="work", direction="minimize", sampler={"type": "random"})
        for i in range(5):  # define-by-run, over a session
            trial = study.ask()
            x = trial.suggest_float("x", -1, 1)
            if i == 4:
                study.tell(trial, state="pruned")
            else:
                study.tell(trial, x * x)
        batch = study.ask_batch({"x": FloatDistribution(-1, 1)}, count=3)  # one ask, 3 trials
        for trial in batch:
            study.tell(trial, 1.0)
        tpe = client.create_study(name="tpe", direction="minimize", sampler={"type": "tpe"})
        trial = tpe.ask()
        trial.suggest_float("y", 0, 1)
        tpe.tell(trial, state="fail")
        for _ in range(2):
            with pytest.raises(NotFound):
                client.get_study("missing")
    with grpc.insecure_channel(observed.target) as channel:
        stub = study_service_pb2_grpc.StudyServiceStub(channel)
        with pytest.raises(grpc.RpcError) as bad:
            stub.GetStudy(pb.GetStudyRequest(name="not a name"))
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    # A call is counted once answered: the caller may hear the answer a moment before.
    invalid = {"method": M + "GetStudy", "code": "INVALID_ARGUMENT"}
    _wait(lambda: sample(observed.scrape(), "hposerve_rpcs_total", **invalid) == 1)
    s = observed.scrape()
    assert sample(s, "hposerve_asks_total", sampler="random") == 6
    assert sample(s, "hposerve_trials_asked_total", sampler="random") == 8
    assert sample(s, "hposerve_asks_total", sampler="tpe") == 1
    assert sample(s, "hposerve_tells_total", sampler="random", state="COMPLETE") == 7
    assert sample(s, "hposerve_tells_total", sampler="random", state="PRUNED") == 1
    assert sample(s, "hposerve_tells_total", sampler="tpe", state="FAIL") == 1
    assert sample(s, "hposerve_rpcs_total", method=M + "AskTrials", code="OK") == 7
    assert sample(s, "hposerve_rpcs_total", method=M + "TellTrial", code="OK") == 9
    assert sample(s, "hposerve_rpcs_total", method=M + "SuggestParameter", code="OK") == 6
    assert sample(s, "hposerve_rpcs_total", method=M + "GetStudy", code="NOT_FOUND") == 2
    assert sample(s, "hposerve_rpcs_total", method=M + "GetStudy", code="INVALID_ARGUMENT") == 1
    assert sample(s, "hposerve_rpc_seconds_count", method=M + "TellTrial") == 9
    # Sampling time: one observation per ask and per define-by-run suggest.
    assert sample(s, "hposerve_sampler_seconds_count", sampler="random", call="ask") == 6
    assert sample(s, "hposerve_sampler_seconds_count", sampler="random", call="suggest") == 5
    assert sample(s, "hposerve_sampler_seconds_count", sampler="tpe", call="suggest") == 1
    # Every trial started and finished was written to the journal.
    assert sample(s, "hposerve_storage_write_seconds_count", operation="append_logs") >= 18
    assert sample(s, "hposerve_storage_healthy") == 1
    assert sample(s, "hposerve_trials_running") == 0
    assert sample(s, "hposerve_sessions_open") == 0  # the client has closed its session


def test_running_trials_expired_leases_and_retries(observed: Running) -> None:
    with Client(observed.target) as client:
        client.create_study(
            name="leased", direction="minimize", lease_seconds=0.3, retry_expired_trials=True
        )
    with grpc.insecure_channel(observed.target) as channel:
        stub = study_service_pb2_grpc.StudyServiceStub(channel)
        parent = "namespaces/default/studies/leased"
        stub.AskTrials(pb.AskTrialsRequest(parent=parent))  # no heartbeat
        assert sample(observed.scrape(), "hposerve_trials_running") == 1
        _wait(lambda: sample(observed.scrape(), "hposerve_leases_expired_total") == 1)
        assert sample(observed.scrape(), "hposerve_trials_running") == 0
        stub.AskTrials(pb.AskTrialsRequest(parent=parent))  # the retry
    s = observed.scrape()
    assert sample(s, "hposerve_trials_retried_total") == 1
    assert sample(s, "hposerve_trials_running") == 1


def test_sessions_open_while_a_client_works(observed: Running) -> None:
    with Client(observed.target) as client:
        study = client.create_study(name="open", direction="minimize")
        study.tell(study.ask(), 1.0)  # this thread's session is open now
        _wait(lambda: sample(observed.scrape(), "hposerve_sessions_open") == 1)
    _wait(lambda: sample(observed.scrape(), "hposerve_sessions_open") == 0)


def test_auth_denials_by_namespace(observed_auth: Running) -> None:
    tokens = observed_auth.tokens
    with Client(
        observed_auth.target, token=tokens["a_editor"], config=ClientConfig(namespace="a")
    ) as alice:
        alice.create_study(name="mine", direction="minimize")
    with Client(
        observed_auth.target, token=tokens["b_editor"], config=ClientConfig(namespace="a")
    ) as bob:
        for _ in range(2):
            with pytest.raises(PermissionDenied):
                bob.get_study("mine")
    with grpc.insecure_channel(observed_auth.target) as channel:
        stub = study_service_pb2_grpc.StudyServiceStub(channel)
        with pytest.raises(grpc.RpcError) as anonymous:
            stub.GetStudy(pb.GetStudyRequest(name="namespaces/b/studies/x"))
        assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED
    unauthenticated = {"namespace": "b", "code": "UNAUTHENTICATED"}
    _wait(lambda: sample(observed_auth.scrape(), "hposerve_auth_denials_total", **unauthenticated))
    s = observed_auth.scrape()
    assert sample(s, "hposerve_auth_denials_total", namespace="a", code="PERMISSION_DENIED") == 2
    assert sample(s, "hposerve_auth_denials_total", namespace="b", code="UNAUTHENTICATED") == 1
    assert sample(s, "hposerve_rpcs_total", method=M + "CreateStudy", code="OK") == 1


def test_namespace_labels_are_bounded() -> None:
    from hposerve.server.transport._metrics import Metrics

    metrics = Metrics(max_namespaces=2)
    for namespace in ("a", "b", "c", "d", "a"):
        metrics.rpc(M + "GetStudy", grpc.StatusCode.PERMISSION_DENIED, 0.001, namespace)
    names = {
        s.labels["namespace"]
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "hposerve_auth_denials_total"
    }
    assert names == {"a", "b", "other"}
