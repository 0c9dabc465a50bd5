"""No trial left running without a lease, and no INTERNAL answer to a call racing a delete."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from hposerve.server import make_server
from hposerve.server.domain import _optuna
from hposerve.server.domain._catalog import StudyCatalog
from hposerve.server.domain._config import StudyOptions
from hposerve.server.domain._leases import LeaseExpiry
from hposerve.server.domain._names import StudyRef
from hposerve.server.storage import close_storage, open_storage
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2

from ._session import NS, RANDOM, Call, Stubs, X


@pytest.fixture
def stubs(tmp_path: Path):
    server = make_server("127.0.0.1:0", data_dir=tmp_path / "data", reap_interval=0.05).start()
    made = Stubs(f"127.0.0.1:{server.port}")
    try:
        yield made
    finally:
        made.close()
        server.stop(grace=0)


def _create(stubs: Stubs, study: str) -> str:
    stubs.study.CreateStudy(pb.CreateStudyRequest(parent=NS, study_id=study, sampler=RANDOM))
    return f"{NS}/studies/{study}"


def _states(stubs: Stubs, parent: str) -> list[str]:
    trials = stubs.study.ListTrials(pb.ListTrialsRequest(parent=parent)).trials
    return [types_pb2.TrialState.Name(t.state) for t in trials]


def test_a_failed_ask_of_an_enqueued_trial_fails_it(stubs: Stubs) -> None:
    parent = _create(stubs, "enqueued")
    abc = types_pb2.Value(string_value="abc")
    stubs.study.EnqueueTrial(pb.EnqueueTrialRequest(parent=parent, params={"x": abc}))
    ask = Call("study", "AskTrials", pb.AskTrialsRequest(parent=parent, search_space=X))
    assert stubs.call(ask) == grpc.StatusCode.INVALID_ARGUMENT
    # Failed, as Optuna's optimize fails a trial whose objective raised: never left running.
    assert _states(stubs, parent) == ["FAILED"]
    (trial,) = stubs.call(ask).trials  # type: ignore[union-attr]
    assert trial.number == 1 and trial.state == types_pb2.RUNNING


def test_a_failed_retried_ask_runs_afresh(stubs: Stubs) -> None:
    parent = _create(stubs, "retried")
    abc = types_pb2.Value(string_value="abc")
    stubs.study.EnqueueTrial(pb.EnqueueTrialRequest(parent=parent, params={"x": abc}))
    ask = Call(
        "study", "AskTrials", pb.AskTrialsRequest(parent=parent, search_space=X, request_id="r")
    )
    assert stubs.call(ask) == grpc.StatusCode.INVALID_ARGUMENT
    # The failed trial answers no retry: the retry asks (and gets a new trial).
    (trial,) = stubs.call(ask).trials  # type: ignore[union-attr]
    assert trial.number == 1
    assert stubs.call(ask).trials[0].number == 1  # type: ignore[union-attr]
    assert _states(stubs, parent) == ["FAILED", "RUNNING"]


def test_the_sole_writer_scans_for_running_trials_it_holds_no_lease_of(tmp_path: Path) -> None:
    storage = open_storage(None, data_dir=tmp_path)
    try:
        catalog = StudyCatalog(storage, exclusive=True)
        ref = StudyRef("default", "stray")
        catalog.create_study(
            ref,
            directions=[],
            sampler=RANDOM,
            pruner=None,
            options=StudyOptions(lease_seconds=1.0),
            load_if_exists=False,
        )
        live = catalog.live(ref)
        expiry = LeaseExpiry(catalog.live_studies, lambda: None, exclusive=True, scan_interval=0)
        # A running trial made behind the leases' back (what a bug in some path would leave).
        stray = live.study.ask({"x": FloatDistribution(0, 1)})
        assert stray.number not in live.leases
        assert expiry.reap_expired() == []  # found and leased...
        assert stray.number in live.leases
        reaped = expiry.reap_expired(now=time.time() + 5)  # ...and failed once that expires
        assert [r.number for r in reaped] == [stray.number]
        assert live.frozen(stray.number).state == TrialState.FAIL
    finally:
        close_storage(storage)


def test_the_internals_the_asks_use_exist() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = {"x": FloatDistribution(0, 1)}
    trial = _optuna.new_trial(study, space, system_attrs={"k": "v"})
    assert study.trials[0].system_attrs == {"k": "v"} and set(trial.params) == {"x"}
    study.enqueue_trial({"x": 0.5})
    assert _optuna.should_skip_enqueue(study, {"x": 0.5})
    assert not _optuna.should_skip_enqueue(study, {"x": 0.25})
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    started = _optuna.start_waiting(study, waiting, space, system_attrs={"a": 1})
    assert started is not None and started.params == {"x": 0.5}
    assert study.trials[1].system_attrs["a"] == 1
    resumed = _optuna.resume_trial(study, _optuna.trial_id_of(started), {**space, "y": space["x"]})
    assert set(resumed.params) == {"x", "y"}


DELETE_RACE_SECONDS = 3.0


def test_calls_racing_a_delete_answer_not_found_never_internal(stubs: Stubs) -> None:
    parent = _create(stubs, "doomed")
    stop = threading.Event()
    codes: dict[str, set[str]] = {}

    def calls() -> list[Call]:
        trial = f"{parent}/trials/0"
        return [
            Call("study", "AskTrials", pb.AskTrialsRequest(parent=parent, search_space=X)),
            Call("study", "EnqueueTrial", pb.EnqueueTrialRequest(parent=parent)),
            Call(
                "study",
                "ReportIntermediateValue",
                pb.ReportIntermediateValueRequest(trial=trial, step=1, value=1.0),
            ),
            Call("study", "GetBestTrial", pb.GetBestTrialRequest(parent=parent)),
            Call("study", "GetParetoFront", pb.GetParetoFrontRequest(parent=parent)),
            Call("study", "ListTrials", pb.ListTrialsRequest(parent=parent)),
            Call(
                "study",
                "TellTrial",
                pb.TellTrialRequest(trial=trial, state=types_pb2.COMPLETE, values=[1.0]),
            ),
            Call("study", "Heartbeat", pb.HeartbeatRequest(trials=[trial])),
        ]

    def hammer() -> None:
        while not stop.is_set():
            for call in calls():
                answer = stubs.call(call)
                code = answer.name if isinstance(answer, grpc.StatusCode) else "OK"
                codes.setdefault(call.rpc, set()).add(code)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DELETE_RACE_SECONDS
    deletes = 0
    try:
        while time.monotonic() < deadline:
            stubs.study.DeleteStudy(pb.DeleteStudyRequest(name=parent))
            _create(stubs, "doomed")
            deletes += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert deletes > 3
    bad = {rpc: c for rpc, c in codes.items() if c & {"INTERNAL", "UNKNOWN"}}
    assert bad == {}
    assert "NOT_FOUND" in set().union(*codes.values())
