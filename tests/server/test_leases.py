"""Leases: a trial handed out lives while heartbeats renew it, and is failed (and possibly
retried) when they stop. Through gRPC against the real reaper, and on the domain directly.

Waiting is done by polling with a deadline, never by sleeping a fixed time and hoping; the one
fixed wait is where the point is that nothing happens during it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import pytest
from optuna.trial import TrialState

from hposerve.client import Client, ClientConfig, FailedPrecondition, FloatDistribution
from hposerve.server import (
    StudyOptions,
    StudyRef,
    StudyRegistry,
    TrialRef,
    make_server,
    open_storage,
)
from hposerve.server.domain._exceptions import FailedPrecondition as DomainFailedPrecondition
from hposerve.server.storage._open import close_storage
from hposerve.v1 import specs_pb2, study_service_pb2_grpc, types_pb2
from hposerve.v1 import study_service_pb2 as pb

T = TypeVar("T")

LEASE = 0.3
X = types_pb2.ParameterSpec(
    name="x", distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(high=1.0))
)
RANDOM = specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0))


def wait_for(predicate: Callable[[], T], *, timeout: float = 5.0, what: str = "") -> T:
    """Polls ``predicate`` until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)


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


def trials(stub, study: str, *states: int) -> list[pb.Trial]:
    return list(stub.ListTrials(pb.ListTrialsRequest(parent=study, states=states)).trials)


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


# -- expiry through the real reaper ---------------------------------------------------------------


def test_expired_lease_fails_the_trial(stub, study_name):
    study = create(stub, study_name, lease_seconds=LEASE).name
    asked_at = time.time()
    trial = ask(stub, study, X)  # a raw stub: nobody renews the lease
    expires = trial.lease_expire_time.ToNanoseconds() / 1e9
    assert asked_at + LEASE - 0.05 <= expires <= time.time() + LEASE + 0.05
    stub.ReportIntermediateValue(pb.ReportIntermediateValueRequest(trial=trial.name, value=1.0))

    gone = wait_for(lambda: failed(stub, trial.name), what="the reaper to fail the trial")
    assert time.time() >= expires
    assert not gone.HasField("lease_expire_time")
    assert gone.params == trial.params and [v.value for v in gone.intermediate_values] == [1.0]

    tell = pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[0.5])
    expect_precondition(stub.TellTrial, tell, trial.name, "FAIL", "lease expired")
    report = pb.ReportIntermediateValueRequest(trial=trial.name, step=1, value=0.5)
    expect_precondition(stub.ReportIntermediateValue, report, "report to", "lease expired")
    suggest = pb.SuggestParameterRequest(trial=trial.name, parameter=X)
    expect_precondition(stub.SuggestParameter, suggest, "lease expired")
    attrs = pb.SetTrialUserAttributesRequest(trial=trial.name, user_attrs={"k": 1})
    expect_precondition(stub.SetTrialUserAttributes, attrs, "lease expired")
    beat = stub.Heartbeat(pb.HeartbeatRequest(trials=[trial.name]))
    assert [lease.running for lease in beat.leases] == [False]
    # A heartbeat does not revive it, and nothing above changed it.
    assert get(stub, trial.name) == gone
    # The outcome it has is the one a trainer that gives up would tell: not an error.
    told = stub.TellTrial(pb.TellTrialRequest(trial=trial.name, state=types_pb2.FAILED))
    assert told.state == types_pb2.FAILED


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


def test_raw_heartbeats_keep_a_trial_alive(stub, study_name):
    study = create(stub, study_name, lease_seconds=LEASE).name
    trial = ask(stub, study, X)
    until = time.monotonic() + 3 * LEASE
    while time.monotonic() < until:
        (lease,) = stub.Heartbeat(pb.HeartbeatRequest(trials=[trial.name])).leases
        assert lease.running and lease.trial == trial.name
        time.sleep(LEASE / 4)
    told = stub.TellTrial(
        pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[1.0])
    )
    assert told.state == types_pb2.COMPLETE


# -- retries --------------------------------------------------------------------------------------


def test_retry_expired_trials(stub, study_name):
    study = create(
        stub, study_name, lease_seconds=LEASE, retry_expired_trials=True, max_retries=1
    ).name
    first = ask(stub, study, X)
    stub.SetTrialUserAttributes(
        pb.SetTrialUserAttributesRequest(trial=first.name, user_attrs={"fold": 3})
    )
    waiting = wait_for(
        lambda: trials(stub, study, types_pb2.WAITING), what="the expired trial to be enqueued"
    )
    assert get(stub, first.name).state == types_pb2.FAILED
    assert [t.number for t in waiting] == [first.number + 1]
    # The next ask gets the expired trial's parameters back (and its user attributes).
    again = ask(stub, study, X)
    assert again.number == waiting[0].number
    assert again.params == first.params
    assert dict(again.user_attrs) == {"fold": 3}
    # A fresh ask after that samples anew.
    assert ask(stub, study, X).params != first.params


@pytest.fixture
def manual(tmp_path) -> Iterator[tuple[Any, Any]]:
    """A server whose reaper never runs on its own: tests reap with ``registry.reap_expired``."""
    srv = make_server("127.0.0.1:0", data_dir=tmp_path / "manual", reap_interval=3600).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            yield srv, study_service_pb2_grpc.StudyServiceStub(channel)
    finally:
        srv.stop(grace=1)


@pytest.mark.parametrize(
    ("retry", "max_retries", "expected"),
    [(True, 0, 0), (True, 1, 1), (True, 2, 2), (False, 3, 0)],
    ids=["max-0", "max-1", "max-2", "retry-off"],
)
def test_max_retries_stops_retrying(manual, study_name, retry, max_retries, expected):
    srv, stub = manual
    study = create(
        stub, study_name, lease_seconds=60, retry_expired_trials=retry, max_retries=max_retries
    ).name
    trial = ask(stub, study, X)
    asked = [trial]
    for _ in range(5):
        assert srv.registry.reap_expired(now=time.time() + 1000) == [
            TrialRef(StudyRef("default", study_name), asked[-1].number)
        ]
        if not trials(stub, study, types_pb2.WAITING):
            break
        asked.append(ask(stub, study, X))
    assert len(asked) == expected + 1
    assert all(t.params == trial.params for t in asked)
    states = [t.state for t in trials(stub, study)]
    assert states == [types_pb2.FAILED] * (expected + 1)


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


# -- the domain, without gRPC ---------------------------------------------------------------------


@pytest.fixture
def storage(tmp_path):
    opened = open_storage(None, data_dir=tmp_path)
    yield opened
    close_storage(opened)


@pytest.fixture
def registry(storage) -> Iterator[StudyRegistry]:
    reg = StudyRegistry(storage)
    yield reg
    reg.close()


def _create(registry: StudyRegistry, ref: StudyRef, **options: Any) -> None:
    registry.create_study(
        ref,
        directions=(),
        sampler=RANDOM,
        pruner=None,
        options=StudyOptions(**options),
        load_if_exists=False,
    )


def test_registry_reap_expired_fails_running_trials(registry):
    ref = StudyRef("default", "leases")
    _create(registry, ref)
    running = registry.ask(ref, search_space={}, count=3)
    done = registry.ask(ref, search_space={})[0]
    registry.tell(done.ref, state=TrialState.COMPLETE, values=[1.0])
    assert all(r.lease_expires and r.lease_expires > time.time() for r in running)

    assert registry.reap_expired() == []  # nothing has expired yet
    reaped = registry.reap_expired(now=time.time() + 1000)
    assert sorted(reaped, key=lambda r: r.number) == [r.ref for r in running]
    for record in running:
        got = registry.get_trial(record.ref)
        assert got.trial.state == TrialState.FAIL and got.lease_expires is None
        with pytest.raises(DomainFailedPrecondition, match="lease expired"):
            registry.tell(record.ref, state=TrialState.COMPLETE, values=[2.0])
        with pytest.raises(DomainFailedPrecondition, match="lease expired"):
            registry.report(record.ref, step=0, value=1.0)
    assert registry.get_trial(done.ref).trial.values == [1.0]
    assert registry.heartbeat([r.ref for r in running]) == [None] * 3
    assert registry.reap_expired(now=time.time() + 2000) == []  # each is failed once


def test_registry_heartbeat_postpones_expiry(registry):
    ref = StudyRef("default", "beats")
    _create(registry, ref, lease_seconds=10)
    (record,) = registry.ask(ref, search_space={})
    assert registry.reap_expired(now=time.time() + 5) == []
    time.sleep(0.01)
    (renewed,) = registry.heartbeat([record.ref])
    assert renewed is not None and renewed.lease_expires > record.lease_expires
    assert registry.reap_expired(now=record.lease_expires + 0.001) == []
    assert registry.reap_expired(now=renewed.lease_expires + 1) == [record.ref]


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
