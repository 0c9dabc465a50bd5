"""Leases as the client and a server process see them: the client's heartbeats against the
real reaper, and leases across restarts. What a lease means (expiry fails the trial, heartbeats
postpone it, retries and max_retries) is the conformance suite's: tests/server/conformance.

Waiting is done by polling with a deadline, never by sleeping a fixed time and hoping; the one
fixed wait is where the point is that nothing happens during it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from conformance.cases import wait_for

from hposerve.client import Client, ClientConfig, FailedPrecondition, FloatDistribution
from hposerve.server import (
    StudyOptions,
    StudyRef,
    StudyRegistry,
    make_server,
    open_storage,
)
from hposerve.server.storage._open import close_storage
from hposerve.v1 import specs_pb2, study_service_pb2_grpc, types_pb2
from hposerve.v1 import study_service_pb2 as pb

LEASE = 0.3
X = types_pb2.ParameterSpec(
    name="x", distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(high=1.0))
)
RANDOM = specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0))


def create(stub, name: str, **options: Any) -> pb.Study:
    return stub.CreateStudy(
        pb.CreateStudyRequest(
            parent="namespaces/default",
            study_id=name,
            sampler=RANDOM,
            options=pb.StudyOptions(**options),
        )
    )


def ask(stub, study: str, *space: types_pb2.ParameterSpec) -> pb.Trial:
    (trial,) = stub.AskTrials(pb.AskTrialsRequest(parent=study, search_space=space)).trials
    return trial


def get(stub, trial: str) -> pb.Trial:
    return stub.GetTrial(pb.GetTrialRequest(name=trial))


def failed(stub, trial: str) -> pb.Trial | None:
    got = get(stub, trial)
    return got if got.state == types_pb2.FAILED else None


def expect_precondition(call: Callable[..., Any], request: Any, *needles: str) -> str:
    with pytest.raises(grpc.RpcError) as exc:
        call(request)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION, exc.value.details()
    message = exc.value.details()
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


# -- the client's heartbeats, against the real reaper ---------------------------------------------


def test_client_trial_whose_lease_expired(target, stub, study_name):
    # A heartbeat interval far beyond the test: the client never renews the lease.
    with Client(target, config=ClientConfig(heartbeat_interval=3600)) as client:
        study = client.create_study(name=study_name, lease_seconds=LEASE)
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        wait_for(lambda: failed(stub, trial.name), what="the reaper to fail the trial")
        with pytest.raises(FailedPrecondition, match="lease expired"):
            study.tell(trial, x)
        assert not trial.running
        with pytest.raises(FailedPrecondition, match="lease expired"):
            trial.report(1.0, 0)
        assert study.get_trial(trial.number).state == "failed"


@pytest.mark.parametrize(
    "config",
    [ClientConfig(heartbeat_interval=0.05), ClientConfig()],
    ids=["interval-0.05", "interval-from-lease"],
)
def test_heartbeats_keep_a_trial_alive(target, stub, study_name, config):
    with Client(target, config=config) as client:
        study = client.create_study(name=study_name, lease_seconds=LEASE)
        trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
        first = get(stub, trial.name).lease_expire_time.ToNanoseconds()
        time.sleep(5 * LEASE)  # five leases long: nothing may happen meanwhile
        now = get(stub, trial.name)
        assert now.state == types_pb2.RUNNING and trial.running
        assert now.lease_expire_time.ToNanoseconds() > first + 3 * LEASE * 1e9
        assert study.tell(trial, trial.params["x"]).state == "complete"
        # Told: the client stops renewing it, and it stays complete.
        assert get(stub, trial.name).state == types_pb2.COMPLETE


# -- restarts -------------------------------------------------------------------------------------


def test_trial_handed_out_before_a_restart_keeps_running(server, stub, tmp_path, study_name):
    study = create(stub, study_name).name  # the default lease: 300 s
    trial = ask(stub, study, X)
    stub.SuggestParameter(
        pb.SuggestParameterRequest(
            trial=trial.name,
            parameter=types_pb2.ParameterSpec(
                name="n", distribution=types_pb2.Distribution(int=types_pb2.IntDistribution(high=9))
            ),
        )
    )
    stub.ReportIntermediateValue(
        pb.ReportIntermediateValueRequest(trial=trial.name, step=0, value=2.0)
    )
    before = get(stub, trial.name)
    server.stop(grace=1)

    # As the server fixture builds it, on the same data directory.
    again = make_server("127.0.0.1:0", data_dir=tmp_path / "data", reap_interval=0.05).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{again.port}") as channel:
            stub = study_service_pb2_grpc.StudyServiceStub(channel)
            now = get(stub, trial.name)
            # Still running, under the lease it was given or (time to reconnect) a longer one.
            lease_before = before.lease_expire_time.ToNanoseconds()
            assert now.lease_expire_time.ToNanoseconds() >= lease_before
            now.ClearField("lease_expire_time")
            before.ClearField("lease_expire_time")
            assert now == before
            # A few reaper rounds later it is still running.
            time.sleep(0.2)
            assert get(stub, trial.name).state == types_pb2.RUNNING
            beat = stub.Heartbeat(pb.HeartbeatRequest(trials=[trial.name]))
            assert beat.leases[0].running
            assert stub.ReportIntermediateValue(
                pb.ReportIntermediateValueRequest(trial=trial.name, step=1, value=1.0)
            ).should_prune in (True, False)
            value = stub.SuggestParameter(
                pb.SuggestParameterRequest(
                    trial=trial.name,
                    parameter=types_pb2.ParameterSpec(
                        name="y",
                        distribution=types_pb2.Distribution(
                            float=types_pb2.FloatDistribution(low=5.0, high=6.0)
                        ),
                    ),
                )
            ).value.double_value
            assert 5.0 <= value <= 6.0
            told = stub.TellTrial(
                pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[0.5])
            )
            assert told.state == types_pb2.COMPLETE and list(told.values) == [0.5]
            assert {p.name for p in told.params} == {"x", "n", "y"}
            assert [v.value for v in told.intermediate_values] == [2.0, 1.0]
    finally:
        again.stop(grace=1)


def test_lease_still_expires_after_a_restart(server, stub, tmp_path, study_name):
    study = create(stub, study_name, lease_seconds=LEASE).name
    trial = ask(stub, study, X)
    server.stop(grace=1)
    again = make_server("127.0.0.1:0", data_dir=tmp_path / "data", reap_interval=0.05).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{again.port}") as channel:
            stub = study_service_pb2_grpc.StudyServiceStub(channel)
            wait_for(lambda: failed(stub, trial.name), what="the new server to fail the trial")
            request = pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[1.0])
            expect_precondition(stub.TellTrial, request, "lease expired")
    finally:
        again.stop(grace=1)


# -- a restarted registry, without gRPC -----------------------------------------------------------


@pytest.fixture
def storage(tmp_path):
    opened = open_storage(None, data_dir=tmp_path)
    yield opened
    close_storage(opened)


def _create(registry: StudyRegistry, ref: StudyRef, **options: Any) -> None:
    registry.create_study(
        ref,
        directions=(),
        sampler=RANDOM,
        pruner=None,
        options=StudyOptions(**options),
        load_if_exists=False,
    )


def test_registry_reaps_studies_not_loaded_since_a_restart(storage):
    ref = StudyRef("default", "restarted")
    first = StudyRegistry(storage)
    try:
        _create(first, ref)
        (record,) = first.ask(ref, search_space={})
    finally:
        first.close()
    second = StudyRegistry(storage)  # the restarted server: nothing has touched the study yet
    try:
        assert second.reap_expired(now=time.time() + 1000) == [record.ref]
    finally:
        second.close()
