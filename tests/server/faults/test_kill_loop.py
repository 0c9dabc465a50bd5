"""kill -9 the server, again and again, under trainers asking and telling at full speed.

Trainers retry each call with its request id until it is answered, as the client does. After
the last restart: every acknowledged tell is there with its value, no ask request created two
trials nor two requests one trial, and once the leases run out nothing is left running.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import grpc
import pytest
from support import SERVE, free_port, wait_serving

from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2

from ._session import NS, RANDOM, Stubs, X

KILLS = 5
TRAINERS = 6
UP_SECONDS = 1.5  # load between two kills
LEASE_SECONDS = 2.0
STUDY = f"{NS}/studies/loop"

pytestmark = pytest.mark.slow


class _Trainer(threading.Thread):
    """Asks, tells, and remembers what the server acknowledged."""

    def __init__(self, target: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.stubs = Stubs(target)
        self.stop = stop
        self.asked: dict[str, int] = {}  # ask request id -> the trial it answered
        self.told: dict[int, float] = {}  # acknowledged tells
        self.requests = 0

    def _until_answered(self, rpc, request):  # type: ignore[no-untyped-def]
        while not self.stop.is_set():
            try:
                return rpc(request, timeout=5)
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):  # type: ignore[attr-defined]
                    raise
                time.sleep(0.05)
        return None

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.stubs.close()

    def _run(self) -> None:
        while not self.stop.is_set():
            request_id = uuid.uuid4().hex
            self.requests += 1
            ask = pb.AskTrialsRequest(parent=STUDY, search_space=X, request_id=request_id)
            answer = self._until_answered(self.stubs.study.AskTrials, ask)
            if answer is None:
                return
            (trial,) = answer.trials
            self.asked[request_id] = trial.number
            value = trial.params[0].value.double_value
            tell = pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[value])
            try:
                if self._until_answered(self.stubs.study.TellTrial, tell) is not None:
                    self.told[trial.number] = value
            except grpc.RpcError as e:
                # Its lease ran out while the server was down: failed, not acknowledged.
                assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e  # type: ignore[attr-defined]


def _all_trials(stubs: Stubs) -> dict[int, pb.Trial]:
    trials: dict[int, pb.Trial] = {}
    token = ""
    while True:
        request = pb.ListTrialsRequest(parent=STUDY, page_size=1000, page_token=token)
        page = stubs.study.ListTrials(request)
        trials.update((t.number, t) for t in page.trials)
        if not (token := page.next_page_token):
            return trials


def test_kill_9_under_load_loses_and_duplicates_nothing(tmp_path, spawn) -> None:
    data, port = tmp_path / "data", free_port()
    argv = [*SERVE, "--port", str(port), "--data-dir", str(data)]
    server = spawn(argv, port=port)
    wait_serving(server)
    setup = Stubs(server.target)
    setup.study.CreateStudy(
        pb.CreateStudyRequest(
            parent=NS,
            study_id="loop",
            sampler=RANDOM,
            options=pb.StudyOptions(lease_seconds=LEASE_SECONDS),
        )
    )
    setup.close()
    stop = threading.Event()
    trainers = [_Trainer(server.target, stop) for _ in range(TRAINERS)]
    for trainer in trainers:
        trainer.start()
    try:
        for _ in range(KILLS):
            time.sleep(UP_SECONDS)
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()
            server = spawn(argv, port=port)
            wait_serving(server)
        time.sleep(UP_SECONDS)
    finally:
        stop.set()
        for trainer in trainers:
            trainer.join(timeout=30)

    stubs = Stubs(server.target)
    try:
        time.sleep(LEASE_SECONDS + 1.5)  # the trials asked but never told expire
        trials = _all_trials(stubs)
    finally:
        stubs.close()
    told = {n: v for t in trainers for n, v in t.told.items()}
    asked = [n for t in trainers for n in t.asked.values()]
    assert len(told) > 50, "too little load to mean anything"
    # Every acknowledged tell is there, with its value.
    lost = {
        n: v
        for n, v in told.items()
        if trials[n].state != types_pb2.COMPLETE or list(trials[n].values) != [v]
    }
    assert lost == {}
    # No trial handed to two ask requests, and no request made more than its one trial.
    assert len(asked) == len(set(asked))
    assert len(trials) <= sum(t.requests for t in trainers)
    # No orphan: what was asked and never told has expired.
    running = [n for n, t in trials.items() if t.state == types_pb2.RUNNING]
    assert running == []
