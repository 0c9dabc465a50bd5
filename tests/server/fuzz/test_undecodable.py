"""Requests that cannot be decoded are the caller's error: INVALID_ARGUMENT, one log line, no
traceback; on a session, answered in-band and the stream goes on.

The bytes are sent as they are (identity serializers), so that gRPC's own decoder on the
server meets them: corrupt wire format, invalid UTF-8 in a string field, nesting past
protobuf's depth limit.
"""

from __future__ import annotations

import logging
import time

import grpc
import pytest

from hposerve.v1 import comparison_service_pb2, study_service_pb2
from hposerve.v1 import study_service_pb2 as pb

from . import _wire

SERVICES = [
    study_service_pb2.DESCRIPTOR.services_by_name["StudyService"],
    comparison_service_pb2.DESCRIPTOR.services_by_name["ComparisonService"],
]
UNARY = [
    method
    for service in SERVICES
    for method in service.methods
    if not method.client_streaming and not method.server_streaming
]


def undecodable(descriptor) -> list[bytes]:
    cases = [*_wire.CORRUPT, _wire.deep_groups()]
    cases += [b for b in (_wire.invalid_utf8(descriptor), _wire.too_deep(descriptor)) if b]
    return cases


@pytest.fixture
def channel(target):
    with grpc.insecure_channel(target) as channel:
        yield channel


@pytest.mark.parametrize("method", UNARY, ids=lambda m: m.name)
def test_unary_answers_invalid_argument(channel, method, caplog):
    call = channel.unary_unary(f"/{method.containing_service.full_name}/{method.name}")
    caplog.set_level(logging.INFO)
    cases = undecodable(method.input_type)
    for raw in cases:
        with pytest.raises(grpc.RpcError) as e:
            call(raw, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (raw, e.value.details())
        assert "cannot be decoded" in e.value.details()
    deadline = time.monotonic() + 5  # the server logs a call just after answering it
    while refusals(caplog) < len(cases) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert refusals(caplog) == len(cases)  # one line each
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def refusals(caplog) -> int:
    return sum("cannot be decoded" in r.getMessage() for r in caplog.records)


def test_session_answers_in_band_and_goes_on(channel, client, study_name, caplog):
    client.create_study(name=study_name)
    good = pb.SessionRequest(
        should_prune=pb.ShouldPruneRequest(
            trial=f"namespaces/default/studies/{study_name}/trials/0"
        )
    ).SerializeToString()
    bad = [
        *_wire.CORRUPT,
        _wire.deep_groups(),
        _wire.invalid_utf8(pb.SessionRequest.DESCRIPTOR) or b"",
        _wire.too_deep(pb.SessionRequest.DESCRIPTOR),
    ]
    bad = [b for b in bad if b]
    messages = [good, *[m for b in bad for m in (b, good)]]
    session = channel.stream_stream("/hposerve.v1.StudyService/Session")
    caplog.set_level(logging.INFO)
    answers = [pb.SessionResponse.FromString(r) for r in session(iter(messages), timeout=30)]
    assert len(answers) == len(messages)  # the stream went on to the end
    for i, answer in enumerate(answers):
        assert answer.WhichOneof("result") == "error"
        if i % 2:  # an undecodable message
            assert answer.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            assert "cannot be decoded" in answer.error.message
        else:  # trial 0 does not exist: the next good message was served
            assert answer.error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
