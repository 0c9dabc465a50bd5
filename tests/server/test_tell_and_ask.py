"""TellAndAsk: a tell and the next ask in one message, as ``study.optimize`` sends them."""

from __future__ import annotations

import grpc
import pytest

from hposerve.client import Client, FloatDistribution
from hposerve.client._errors import from_rpc_error
from hposerve.server import make_server
from hposerve.server.domain import QuotaLimits
from hposerve.server.transport._study_servicer import StudyServicer
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc, types_pb2

SPACE = {"x": FloatDistribution(0.0, 1.0)}
_X = types_pb2.ParameterSpec(
    name="x", distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(high=1.0))
)


@pytest.fixture
def session_calls(monkeypatch) -> list[str]:
    """The calls the server's sessions serve, in order (heartbeats left out)."""
    seen: list[str] = []
    serve = StudyServicer._session_call

    async def counted(self, request, context):
        call = request.WhichOneof("call")
        if call != "heartbeat":
            seen.append(call)
        return await serve(self, request, context)

    monkeypatch.setattr(StudyServicer, "_session_call", counted)
    return seen


def test_optimize_asks_the_next_trial_with_each_tell(client, study_name, session_calls):
    study = client.create_study(name=study_name, sampler={"type": "random", "seed": 0})
    study.optimize(lambda t: t.params["x"], n_trials=5, search_space=SPACE)
    # One message per trial: the first ask, four tells carrying the next ask, the last tell.
    assert session_calls == ["ask_trials"] + ["tell_and_ask"] * 4 + ["tell_trial"]
    trials = study.trials
    assert [(t.number, t.state) for t in trials] == [(n, "complete") for n in range(5)]
    assert [t.value for t in trials] == [t.params["x"] for t in trials]
    assert not client._heartbeat.open_trials()  # none left running


def test_optimize_with_a_callback_asks_on_its_own(client, study_name, session_calls):
    # A callback may stop the study after seeing a trial: no trial may be asked before it runs.
    study = client.create_study(name=study_name, sampler={"type": "random", "seed": 0})
    study.optimize(lambda t: 0.0, n_trials=3, callbacks=[lambda s, t: None], search_space=SPACE)
    assert session_calls == ["ask_trials", "tell_trial"] * 3


def _running(stub, study_name: str, *, directions: int = 1) -> tuple[str, pb.Trial]:
    study = stub.CreateStudy(
        pb.CreateStudyRequest(
            parent="namespaces/default",
            study_id=study_name,
            directions=[types_pb2.MINIMIZE] * directions,
        )
    )
    (trial,) = stub.AskTrials(pb.AskTrialsRequest(parent=study.name, search_space=[_X])).trials
    return study.name, trial


def _request(study: str, trial: str, **ask: object) -> pb.TellAndAskRequest:
    return pb.TellAndAskRequest(
        tell=pb.TellTrialRequest(trial=trial, state=types_pb2.COMPLETE, values=[0.5]),
        ask=pb.AskTrialsRequest(parent=study, search_space=[_X], **ask),  # type: ignore[arg-type]
    )


_BAD, _NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (lambda r: setattr(r.ask, "parent", "namespaces/default/studies/o"), _BAD, "ask.parent"),
        (lambda r: setattr(r.ask, "count", 100_000), _BAD, "ask.count"),
        (lambda r: r.tell.ClearField("values"), _BAD, "tell.values"),
        (lambda r: setattr(r.tell, "trial", f"{r.ask.parent}/trials/7"), _NOT_FOUND, ""),
    ],
    ids=["another-study", "count", "tell-values", "tell-trial"],
)
def test_a_refused_request_changes_nothing(stub, study_name, change, code, field):
    study, trial = _running(stub, study_name)
    request = _request(study, trial.name)
    change(request)
    with pytest.raises(grpc.RpcError) as e:
        stub.TellAndAsk(request)
    assert e.value.code() == code
    error = from_rpc_error(e.value)
    assert error.field_violations[0][0] == field if code == _BAD else "trials/7" in error.message
    listed = stub.ListTrials(pb.ListTrialsRequest(parent=study)).trials
    assert [(t.number, t.state) for t in listed] == [(0, types_pb2.RUNNING)]


def test_an_ask_refused_after_the_tell_comes_back_beside_the_told_trial(stub, study_name):
    study, trial = _running(stub, study_name)
    request = _request(study, trial.name)
    # x was a float in [0, 1]: as an int the study's sampler refuses it, once the tell is in.
    request.ask.search_space[0].distribution.Clear()
    request.ask.search_space[0].distribution.int.high = 3
    answer = stub.TellAndAsk(request)
    assert answer.told.state == types_pb2.COMPLETE and not answer.asked
    assert answer.ask_error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "conflicts" in answer.ask_error.message
    assert stub.GetStudy(pb.GetStudyRequest(name=study)).trial_count == 1


def test_a_retried_request_answers_as_the_first(stub, study_name):
    study, trial = _running(stub, study_name)
    request = _request(study, trial.name, request_id="once")
    first = stub.TellAndAsk(request)
    assert [t.number for t in first.asked] == [1] and not first.HasField("ask_error")
    again = stub.TellAndAsk(request)
    assert again.told == first.told and [t.name for t in again.asked] == [first.asked[0].name]
    assert stub.GetStudy(pb.GetStudyRequest(name=study)).trial_count == 2


@pytest.mark.parametrize(
    "limits",
    [QuotaLimits(asks_per_second=2), QuotaLimits(running_trials=1)],
    ids=["asks-per-second", "running-trials"],
)
def test_optimize_under_an_ask_quota_tells_every_trial(tmp_path, study_name, limits):
    # The quota refuses a tell-and-ask whole (at one running trial, the trial it tells counts):
    # the client then tells alone at once and asks on its own, waiting for the quota.
    server = make_server("127.0.0.1:0", data_dir=tmp_path / "d", quotas=limits).start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            study = client.create_study(name=study_name, sampler={"type": "random", "seed": 0})
            study.optimize(lambda t: t.params["x"], n_trials=4, search_space=SPACE)
            assert [t.state for t in study.trials] == ["complete"] * 4
    finally:
        server.stop()


def test_a_tell_and_ask_over_the_quota_on_a_session_changes_nothing(tmp_path, study_name):
    server = make_server(
        "127.0.0.1:0", data_dir=tmp_path / "d", quotas=QuotaLimits(running_trials=1)
    ).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = study_service_pb2_grpc.StudyServiceStub(channel)
            study, trial = _running(stub, study_name)
            message = pb.SessionRequest(tell_and_ask=_request(study, trial.name))
            (answer,) = list(stub.Session(iter([message])))
            assert answer.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
            listed = stub.ListTrials(pb.ListTrialsRequest(parent=study)).trials
            assert [(t.number, t.state) for t in listed] == [(0, types_pb2.RUNNING)]
    finally:
        server.stop()
