"""Session deadlines and fallbacks, against a fake server whose Session we control."""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import pytest

from hposerve.client import ClientConfig, DeadlineExceeded
from hposerve.client._transport import Transport, make_channel
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc


class SlowSessions(study_service_pb2_grpc.StudyServiceServicer):
    """Answers ShouldPrune over sessions after ``delay`` seconds; counts unary calls."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.unary_calls = 0
        self.sessions = 0

    def Session(self, requests, context):
        self.sessions += 1
        for _ in requests:
            time.sleep(self.delay)
            yield pb.SessionResponse(should_prune=pb.ShouldPruneResponse(should_prune=True))

    def ShouldPrune(self, request, context):
        self.unary_calls += 1
        return pb.ShouldPruneResponse(should_prune=False)


@pytest.fixture
def fake():
    service = SlowSessions()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    study_service_pb2_grpc.add_StudyServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, f"127.0.0.1:{port}"
    server.stop(0)


def transport(target: str, **config) -> Transport:
    cfg = ClientConfig(**config)
    return Transport(make_channel(target, cfg, None), cfg)


def request() -> pb.ShouldPruneRequest:
    return pb.ShouldPruneRequest(trial="namespaces/default/studies/s/trials/0")


def test_session_calls_share_one_stream_per_thread(fake):
    service, target = fake
    t = transport(target)
    try:
        for _ in range(5):
            assert t.call("ShouldPrune", request()).should_prune is True
        other = threading.Thread(target=lambda: t.call("ShouldPrune", request()))
        other.start()
        other.join()
        assert service.sessions == 2 and service.unary_calls == 0
    finally:
        t.close()


def test_a_late_session_call_is_a_deadline_and_the_next_call_opens_a_new_stream(fake):
    service, target = fake
    t = transport(target, timeout=0.3, max_attempts=1)
    try:
        service.delay = 1.0
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            t.call("ShouldPrune", request())
        assert time.monotonic() - started < 0.9  # the watchdog cancelled it, not the reply
        service.delay = 0.0
        assert t.call("ShouldPrune", request()).should_prune is True
        assert service.sessions == 2
    finally:
        t.close()


def test_sessions_off_means_unary_calls(fake):
    service, target = fake
    t = transport(target, sessions=False)
    try:
        assert t.call("ShouldPrune", request()).should_prune is False
        assert service.sessions == 0 and service.unary_calls == 1
    finally:
        t.close()
