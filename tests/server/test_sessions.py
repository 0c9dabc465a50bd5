"""Sessions: a thread's trial calls over one stream, with unary calls as the fallback."""

from __future__ import annotations

import logging
import queue
import threading
import time

import grpc
import pytest

from hposerve.client import (
    Client,
    ClientConfig,
    FailedPrecondition,
    FloatDistribution,
    InvalidArgument,
)
from hposerve.client import _trial as trial_module
from hposerve.client._session import MAX_BATCH
from hposerve.server import make_server
from hposerve.server.domain._config import MAX_BATCH_REPORTS
from hposerve.server.transport._study_servicer import StudyServicer
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2

SPACE = {"x": FloatDistribution(0.0, 1.0)}


def run_trials(client: Client, name: str, n: int) -> list[tuple[dict, float]]:
    study = client.create_study(name=name, sampler={"type": "tpe", "seed": 3}, load_if_exists=True)
    out = []
    for _ in range(n):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, 0)
        trial.set_user_attr("k", 1)
        out.append((dict(trial.params), study.tell(trial, (x - 0.3) ** 2).values[0]))
    return out


def test_session_and_unary_calls_give_the_same_results(target, study_name):
    with Client(target, config=ClientConfig(sessions=True)) as a:
        over_session = run_trials(a, study_name + "-s", 15)
    with Client(target, config=ClientConfig(sessions=False)) as b:
        over_unary = run_trials(b, study_name + "-u", 15)
    assert over_session == over_unary


def test_errors_come_back_in_band_and_the_session_goes_on(client, study_name):
    study = client.create_study(name=study_name)
    trial = study.ask()
    with pytest.raises(InvalidArgument) as info:
        trial.report(float("nan"), 0)
    assert info.value.field_violations and info.value.field_violations[0][0] == "value"
    with pytest.raises(InvalidArgument, match="step"):
        trial.report(1.0, -1)
    assert trial.report(1.0, 0) is False  # the same stream still serves
    study.tell(trial, 1.0)
    with pytest.raises(FailedPrecondition):
        study.tell(trial, 2.0)


def test_no_session_free_falls_back_to_unary(tmp_path, study_name, caplog):
    # One session at most: the other trainer threads are refused one and go unary.
    caplog.set_level(logging.INFO, logger="hposerve.client")
    server = make_server("127.0.0.1:0", data_dir=tmp_path / "d", max_sessions=1).start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            client.create_study(name=study_name, sampler={"type": "random"})
            results: list[int] = []
            errors: list[BaseException] = []

            def trainer() -> None:
                try:
                    study = client.get_study(study_name)
                    for _ in range(5):
                        trial = study.ask(SPACE)
                        trial.report(trial.params["x"], 0)
                        study.tell(trial, trial.params["x"])
                        results.append(trial.number)
                except BaseException as e:  # surfaced below
                    errors.append(e)

            threads = [threading.Thread(target=trainer) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            assert sorted(results) == list(range(15))
            assert "sessions unavailable (RESOURCE_EXHAUSTED)" in caplog.text
    finally:
        server.stop()


def test_a_broken_stream_is_retried_on_a_new_one(tmp_path, study_name):
    data = tmp_path / "d"
    server = make_server("127.0.0.1:0", data_dir=data).start()
    port = server.port
    config = ClientConfig(initial_backoff=0.05, max_backoff=0.2, max_attempts=20)
    with Client(f"127.0.0.1:{port}", config=config) as client:
        study = client.create_study(name=study_name)
        trial = study.ask()
        assert trial.report(1.0, 0) is False
        server.stop()  # the session's stream breaks
        restarted: list = []
        threading.Timer(
            0.5, lambda: restarted.append(make_server(f"127.0.0.1:{port}", data_dir=data).start())
        ).start()
        try:
            # UNAVAILABLE while the server is down: retried until it is back, on a new stream.
            assert trial.report(2.0, 1) is False
            assert study.tell(trial, 2.0).values == [2.0]
        finally:
            deadline = time.monotonic() + 10
            while not restarted and time.monotonic() < deadline:
                time.sleep(0.05)
            for s in restarted:
                s.stop()


def test_a_sampling_study_does_not_hold_up_quick_calls_of_others(client, study_name, monkeypatch):
    # Quick calls run on the server's event loop; sampling that fits a model runs on its pool.
    import optuna

    sampling = threading.Event()
    release = threading.Event()

    def slow_sample(self, study, trial, name, distribution):
        sampling.set()
        release.wait(timeout=30)
        return distribution.low

    monkeypatch.setattr(optuna.samplers.TPESampler, "sample_independent", slow_sample)
    slow = client.create_study(name=study_name + "-tpe", sampler={"type": "tpe"})
    quick = client.create_study(name=study_name + "-random", sampler={"type": "random"})
    asked: list = []
    asker = threading.Thread(target=lambda: asked.append(slow.ask(SPACE)))
    asker.start()
    try:
        assert sampling.wait(timeout=30)
        for _ in range(3):  # over this thread's session, while the other ask is sampling
            trial = quick.ask(SPACE)
            assert trial.report(0.5, 0) is False
            assert quick.tell(trial, 0.5).values == [0.5]
        assert not asked  # still sampling: the calls above did not wait for it
    finally:
        release.set()
        asker.join()
    assert asked[0].params == {"x": 0.0}


def test_stopping_ends_idle_sessions_at_once(tmp_path, study_name):
    server = make_server("127.0.0.1:0", data_dir=tmp_path / "d").start()
    with Client(f"127.0.0.1:{server.port}") as client:
        study = client.create_study(name=study_name)
        trial = study.ask()
        assert trial.report(1.0, 0) is False  # this thread's session is open, and idle now
        start = time.monotonic()
        server.stop(grace=30)
        assert time.monotonic() - start < 10  # not held for the grace period


# -- reports on a study that never prunes: sent without waiting for their answer ---------------


def _never_pruning(client: Client, name: str):
    return client.create_study(
        name=name, sampler={"type": "random", "seed": 0}, pruner={"type": "none"}
    )


def test_a_report_that_cannot_prune_costs_no_round_trip_and_lands_before_the_tell(
    client, study_name
):
    study = _never_pruning(client, study_name)
    transport = study._transport
    trial = study.ask(SPACE)
    before = transport.round_trips
    for step in range(5):
        assert trial.report(float(step), step) is False
        assert trial.should_prune() is False
    assert transport.round_trips == before  # nothing waited for an answer
    told = study.tell(trial, 1.0)
    assert transport.round_trips == before + 1
    assert told.intermediate_values == {s: float(s) for s in range(5)}


def test_a_study_with_a_pruner_still_answers_each_report(client, study_name):
    study = client.create_study(name=study_name)  # Optuna's default: MedianPruner
    transport = study._transport
    trial = study.ask(SPACE)
    before = transport.round_trips
    trial.report(1.0, 0)
    assert transport.round_trips == before + 1


def test_a_deferred_report_refused_by_the_server_is_raised_by_the_next_call_that_waits(
    client, study_name
):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    other = client.get_study(study_name)
    other.tell(trial.number, 1.0)  # finished behind this trial's back
    trial.report(1.0, 0)  # refused on the server; the answer has not been read yet
    trial.report(2.0, 1)
    with pytest.raises(FailedPrecondition, match="report"):
        study.tell(trial, 1.0)  # reads the reports' answers: the first refusal is raised
    trial = study.ask(SPACE)
    # Bad values are refused at once, as the server would refuse them.
    with pytest.raises(InvalidArgument) as info:
        trial.report(float("nan"), 2)
    assert info.value.field_violations[0][0] == "value"


def test_a_trial_reported_on_one_thread_and_told_on_another_keeps_its_reports(client, study_name):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)

    def train() -> None:
        for step in range(20):
            trial.report(float(step), step)

    worker = threading.Thread(target=train)
    worker.start()
    worker.join()  # the worker's session still holds the reports' answers unread
    told = study.tell(trial, 0.5)
    assert told.intermediate_values == {s: float(s) for s in range(20)}


def test_deferred_reports_reach_the_server_when_the_client_closes(target, study_name):
    with Client(target) as writer:
        study = _never_pruning(writer, study_name)
        trial = study.ask(SPACE)
        for step in range(10):
            trial.report(float(step), step)
    with Client(target) as reader:
        got = reader.get_study(study_name).get_trial(trial.number)
    assert got.intermediate_values == {s: float(s) for s in range(10)}


# -- deferred reports: held, carried by the tell or sent as one batch -------------------------


@pytest.fixture
def session_calls(monkeypatch) -> list[tuple[str, object]]:
    """Every message the server's sessions serve: (its call, its request), in order."""
    seen: list[tuple[str, object]] = []
    serve = StudyServicer._session_call

    async def counted(self, request, context):
        call = request.WhichOneof("call")
        seen.append((call, getattr(request, call) if call else None))
        return await serve(self, request, context)

    monkeypatch.setattr(StudyServicer, "_session_call", counted)
    return seen


def _calls(seen: list[tuple[str, object]]) -> list[str]:
    return [call for call, _ in seen if call != "heartbeat"]


def test_a_trials_reports_travel_with_its_tell_in_order(client, study_name, session_calls):
    study = _never_pruning(client, study_name)
    transport = study._transport
    trial = study.ask(SPACE)
    before = transport.round_trips
    steps = [0, 3, 1, 4, 2, 3]  # out of order, and a repeat (the first value of a step stays)
    for i, step in enumerate(steps):
        assert trial.report(10.0 + i, step) is False
    told = study.tell(trial, 1.0)
    assert transport.round_trips == before + 1  # the tell; the reports waited for nothing
    assert _calls(session_calls) == ["ask_trials", "tell_trial"]  # one message for all
    tell = session_calls[-1][1]
    assert [(r.step, r.value) for r in tell.intermediate_values] == [
        (s, 10.0 + i) for i, s in enumerate(steps)
    ]
    assert told.intermediate_values == {0: 10.0, 3: 11.0, 1: 12.0, 4: 13.0, 2: 14.0}


def test_held_reports_go_as_one_batch_before_another_waiting_call(
    client, study_name, session_calls
):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    for step in range(3):
        trial.report(float(step), step)
    trial.set_user_attr("epoch", 3)  # a call that waits: the held reports go just before it
    assert _calls(session_calls) == [
        "ask_trials",
        "report_intermediate_values",
        "set_trial_user_attributes",
    ]
    told = study.tell(trial, 1.0)
    assert not session_calls[-1][1].intermediate_values  # nothing left to carry
    assert told.intermediate_values == {0: 0.0, 1: 1.0, 2: 2.0}


def test_a_refused_report_in_a_batch_is_raised_by_the_next_call_and_those_before_it_stay(
    client, study_name, monkeypatch
):
    # The client refuses a NaN at once; let one through to see the server refuse it mid-batch.
    monkeypatch.setattr(trial_module, "_check_report", lambda step, value: None)
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    for step, value in enumerate([1.0, 2.0, float("nan"), 4.0]):
        trial.report(value, step)  # held
    trial.set_user_attr("epoch", 4)  # sends them as one batch first
    with pytest.raises(InvalidArgument, match="finite") as info:
        study.tell(trial, 1.0)  # the tell goes through; then the batch's refusal is raised
    assert info.value.field_violations[0][0] == "value"
    got = client.get_study(study_name).get_trial(trial.number)
    assert got.state == "complete"
    assert got.intermediate_values == {0: 1.0, 1: 2.0}  # before the refused one; not after


def test_a_tell_carrying_a_refused_report_is_refused_whole(client, study_name, monkeypatch):
    monkeypatch.setattr(trial_module, "_check_report", lambda step, value: None)
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    for step, value in enumerate([1.0, float("nan")]):
        trial.report(value, step)
    with pytest.raises(InvalidArgument, match="finite") as info:
        study.tell(trial, 1.0)
    assert info.value.field_violations[0][0] == "intermediate_values[1].value"
    got = client.get_study(study_name).get_trial(trial.number)
    assert (got.state, got.intermediate_values) == ("running", {})  # nothing written


def test_reports_carried_to_a_trial_finished_elsewhere_are_raised_by_its_tell(client, study_name):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    client.get_study(study_name).tell(trial.number, 1.0)  # finished behind its back
    trial.report(2.0, 1)  # held, then carried by the tell
    with pytest.raises(FailedPrecondition, match="cannot report to"):
        study.tell(trial, 1.0)  # the same outcome again, but its reports cannot be recorded
    assert client.get_study(study_name).get_trial(trial.number).intermediate_values == {}


def test_held_reports_reach_the_server_at_the_next_heartbeat_without_another_call(
    target, study_name, session_calls
):
    with Client(target, config=ClientConfig(heartbeat_interval=0.2)) as trainer:
        study = _never_pruning(trainer, study_name)
        trial = study.ask(SPACE)
        for step in range(4):
            trial.report(float(step), step)  # then a long epoch: no call
        with Client(target) as reader:
            deadline = time.monotonic() + 10
            stored: dict = {}
            while time.monotonic() < deadline and len(stored) < 4:
                time.sleep(0.05)
                stored = reader.get_study(study_name).get_trial(trial.number).intermediate_values
        assert stored == {s: float(s) for s in range(4)}
        assert _calls(session_calls) == [
            "ask_trials",
            "report_intermediate_values",  # sent by the heartbeat thread
        ]
        assert study.tell(trial, 1.0).intermediate_values == stored


@pytest.mark.parametrize("carried", [False, True], ids=["sent-before-a-call", "carried-by-tell"])
def test_held_reports_survive_a_broken_stream(tmp_path, study_name, monkeypatch, carried):
    unary: list[str] = []
    for method in ("ReportIntermediateValue", "ReportIntermediateValues"):
        serve = getattr(StudyServicer, method)

        async def counted(self, request, context, serve=serve, method=method):
            unary.append(method)
            return await serve(self, request, context)

        monkeypatch.setattr(StudyServicer, method, counted)
    data = tmp_path / "d"
    server = make_server("127.0.0.1:0", data_dir=data).start()
    port = server.port
    config = ClientConfig(initial_backoff=0.05, max_backoff=0.2, max_attempts=20)
    with Client(f"127.0.0.1:{port}", config=config) as client:
        study = _never_pruning(client, study_name)
        trial = study.ask(SPACE)
        for step in range(3):
            trial.report(float(step), step)  # held
        server.stop()  # the session's stream ends
        server = make_server(f"127.0.0.1:{port}", data_dir=data).start()
        try:
            if not carried:
                # Sends the held reports as a batch, then its own request, on the ended
                # stream: the batch goes again as a unary call, then the call is retried.
                trial.set_user_attr("epoch", 3)
            told = study.tell(trial, 1.0)  # carried: retried on a new stream, reports with it
        finally:
            server.stop()
    assert told.intermediate_values == {0: 0.0, 1: 1.0, 2: 2.0}
    assert unary == ([] if carried else ["ReportIntermediateValues"])


def _raw_session(stub):
    requests: queue.SimpleQueue = queue.SimpleQueue()
    responses = stub.Session(iter(requests.get, None), timeout=30)

    def call(**kwargs):
        requests.put(pb.SessionRequest(**kwargs))
        return next(responses)

    return call, lambda: requests.put(None)


def _reports(trial: str, *values: float):
    return pb.ReportIntermediateValuesRequest(
        reports=[
            pb.ReportIntermediateValueRequest(trial=trial, step=s, value=v)
            for s, v in enumerate(values)
        ]
    )


def test_a_batch_stops_at_its_first_refused_report(client, stub, study_name):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    call, close = _raw_session(stub)
    try:
        answer = call(report_intermediate_values=_reports(trial.name, 1.0, float("inf"), 3.0))
        assert answer.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "finite" in answer.error.message
        assert call(report_intermediate_values=pb.ReportIntermediateValuesRequest()).HasField(
            "report_intermediate_values"
        )  # the stream goes on; an empty batch is nothing to do
    finally:
        close()
    assert client.get_study(study_name).get_trial(trial.number).intermediate_values == {0: 1.0}
    # The unary form answers the same.
    with pytest.raises(grpc.RpcError) as e:
        stub.ReportIntermediateValues(_reports(trial.name, 1.0, 2.0, float("nan")))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert client.get_study(study_name).get_trial(trial.number).intermediate_values == {
        0: 1.0,
        1: 2.0,
    }


def test_a_batch_past_the_limit_or_with_a_bad_name_is_refused_whole(client, stub, study_name):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    assert MAX_BATCH == MAX_BATCH_REPORTS  # the client never sends what the server refuses
    call, close = _raw_session(stub)
    try:
        big = call(report_intermediate_values=_reports(trial.name, *[1.0] * (MAX_BATCH + 1)))
        assert big.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert f"MAX_BATCH_REPORTS = {MAX_BATCH_REPORTS}" in big.error.message
        bad = _reports(trial.name, 1.0, 2.0)
        bad.reports[1].trial = "not a trial"
        refused = call(report_intermediate_values=bad)
        assert refused.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "reports[1].trial" in refused.error.message
        full = call(report_intermediate_values=_reports(trial.name, *[1.0] * MAX_BATCH))
        assert full.HasField("report_intermediate_values")
    finally:
        close()
    got = client.get_study(study_name).get_trial(trial.number).intermediate_values
    assert len(got) == MAX_BATCH  # only the batch within the limit


def _carried(*values: float) -> list[pb.IntermediateValue]:
    return [pb.IntermediateValue(step=s, value=v) for s, v in enumerate(values)]


def test_a_tell_with_reports_is_checked_whole_before_anything_is_written(client, stub, study_name):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    before = client.get_study(study_name).get_trial(trial.number)

    def refused(code: grpc.StatusCode, field: str, **fields) -> None:
        with pytest.raises(grpc.RpcError) as e:
            stub.TellTrial(
                pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, **fields)
            )
        assert e.value.code() == code, e.value.details()
        assert field in e.value.details()
        got = client.get_study(study_name).get_trial(trial.number)
        assert (got.state, got.intermediate_values) == ("running", {})
        assert got.system_attrs == before.system_attrs  # no constraint set either

    bad_step = [pb.IntermediateValue(step=-1, value=1.0)]
    refused(grpc.StatusCode.INVALID_ARGUMENT, "step", values=[1.0], intermediate_values=bad_step)
    refused(
        grpc.StatusCode.INVALID_ARGUMENT,
        "1000",
        values=[1.0],
        intermediate_values=_carried(*[1.0] * (MAX_BATCH_REPORTS + 1)),
    )
    refused(  # a bad constraint refuses the reports with it
        grpc.StatusCode.INVALID_ARGUMENT,
        "constraint",
        values=[1.0],
        constraints={"": 1.0},
        intermediate_values=_carried(1.0),
    )
    refused(  # a bad outcome too
        grpc.StatusCode.INVALID_ARGUMENT, "value", values=[], intermediate_values=_carried(1.0)
    )

    # Accepted: the reports, then the tell; sent again, the same tell is a no-op.
    request = pb.TellTrialRequest(
        trial=trial.name,
        state=types_pb2.COMPLETE,
        values=[0.5],
        intermediate_values=_carried(3.0, 2.0),
    )
    first = stub.TellTrial(request)
    assert stub.TellTrial(request) == first
    assert [(v.step, v.value) for v in first.intermediate_values] == [(0, 3.0), (1, 2.0)]


def test_reports_carried_to_a_multi_objective_study_are_refused(client, stub, study_name):
    study = client.create_study(name=study_name, directions=["minimize", "maximize"])
    trial = study.ask(SPACE)
    with pytest.raises(grpc.RpcError) as e:
        stub.TellTrial(
            pb.TellTrialRequest(
                trial=trial.name,
                state=types_pb2.COMPLETE,
                values=[1.0, 2.0],
                intermediate_values=_carried(1.0),
            )
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "single-objective" in e.value.details()
    assert client.get_study(study_name).get_trial(trial.number).state == "running"
