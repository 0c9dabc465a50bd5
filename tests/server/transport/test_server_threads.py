"""The server's threads start in ``start()`` and end in ``stop()``: none in a constructor."""

from __future__ import annotations

import threading
import time

import grpc

from hposerve.server import make_server
from hposerve.server.transport._server import _LoopThread
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc, types_pb2


def count(name: str) -> int:
    """Threads of that name (other tests' servers may still be stopping)."""
    return sum(t.name == name for t in threading.enumerate())


def test_the_loop_thread_starts_in_start() -> None:
    before = count("hposerve-grpc")
    loop = _LoopThread()
    assert count("hposerve-grpc") == before
    loop.start()
    try:
        assert count("hposerve-grpc") == before + 1

        async def answer() -> int:
            return 42

        assert loop.run(answer()) == 42
    finally:
        loop.close()
    assert count("hposerve-grpc") == before


def test_the_server_runs_its_lease_reaper_from_start_to_stop(tmp_path) -> None:
    before = count("hposerve-lease-reaper")
    server = make_server("127.0.0.1:0", data_dir=tmp_path, reap_interval=0.02)
    try:
        assert count("hposerve-lease-reaper") == before
        server.start()
        assert count("hposerve-lease-reaper") == before + 1
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = study_service_pb2_grpc.StudyServiceStub(channel)
            study = stub.CreateStudy(
                pb.CreateStudyRequest(
                    parent="namespaces/default",
                    study_id="s",
                    options=pb.StudyOptions(lease_seconds=0.05),
                )
            ).name
            (trial,) = stub.AskTrials(pb.AskTrialsRequest(parent=study)).trials
            deadline = time.time() + 5
            while stub.GetTrial(pb.GetTrialRequest(name=trial.name)).state != types_pb2.FAILED:
                assert time.time() < deadline, "the server's reaper did not fail the trial"
                time.sleep(0.02)
    finally:
        server.stop(grace=1)
    assert count("hposerve-lease-reaper") == before
