"""Session deadlines and fallbacks, against a fake server whose Session we control."""

from __future__ import annotations

import threading
import time

import pytest
from client_fakes import serving

from hposerve.client import ClientConfig, DeadlineExceeded
from hposerve.client._session import SESSION_FIELDS
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
    with serving(service) as target:
        yield service, target


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


def test_every_session_call_the_proto_offers_goes_over_a_session():
    # The client and the proto agree: each SessionRequest field is the session form of the
    # unary RPC taking that field's request type (heartbeats included).
    offered = {
        field.message_type.name.removesuffix("Request"): field.name
        for field in pb.SessionRequest.DESCRIPTOR.oneofs_by_name["call"].fields
    }
    assert offered == SESSION_FIELDS
    assert "Heartbeat" in SESSION_FIELDS
