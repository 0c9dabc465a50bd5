"""What the observing interceptor records is unchanged by its shortcuts (per-call cost).

Metrics keep their children per (method, code) instead of asking ``labels()`` each call, and
a call's request id and namespace are read from its request only when a log line or a refusal
metric needs them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from hposerve.server.transport._access_rules import session_method
from hposerve.server.transport._metrics import Metrics
from hposerve.server.transport._observe import ObservingInterceptor
from hposerve.v1 import study_service_pb2 as pb

M = "/hposerve.v1.StudyService/"
TRIAL = "namespaces/team-a/studies/s/trials/3"


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_cached_children_count_each_method_and_code_apart() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.rpc(M + "ShouldPrune", grpc.StatusCode.OK, 0.001, "")
    metrics.rpc(M + "ShouldPrune", grpc.StatusCode.NOT_FOUND, 0.002, "team-a")
    metrics.rpc(M + "TellTrial", grpc.StatusCode.OK, 0.003, "")
    metrics.rpc(M + "TellTrial", grpc.StatusCode.PERMISSION_DENIED, 0.001, "team-a")

    assert _value(metrics, "hposerve_rpcs_total", method=M + "ShouldPrune", code="OK") == 3
    assert _value(metrics, "hposerve_rpcs_total", method=M + "ShouldPrune", code="NOT_FOUND") == 1
    assert _value(metrics, "hposerve_rpcs_total", method=M + "TellTrial", code="OK") == 1
    assert _value(metrics, "hposerve_rpc_seconds_count", method=M + "ShouldPrune") == 4
    assert _value(metrics, "hposerve_rpc_seconds_count", method=M + "TellTrial") == 2
    denied = {"namespace": "team-a", "code": "PERMISSION_DENIED"}
    assert _value(metrics, "hposerve_auth_denials_total", **denied) == 1


def test_session_method_is_the_same_from_its_cache() -> None:
    for _ in range(2):
        assert session_method("should_prune", pb.ShouldPruneRequest()) == M + "ShouldPrune"
        assert session_method("tell_trial", pb.TellTrialRequest()) == M + "TellTrial"


class _Context:
    def invocation_metadata(self) -> tuple[()]:
        return ()


def _session(metrics: Metrics, answers: list[pb.SessionResponse]) -> list[pb.SessionResponse]:
    """Runs a session of one message per answer through the interceptor."""

    async def behaviour(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        replies = iter(answers)
        async for _ in requests:
            yield next(replies)

    async def requests() -> AsyncIterator[pb.SessionRequest]:
        for _ in answers:
            yield pb.SessionRequest(should_prune=pb.ShouldPruneRequest(trial=TRIAL))

    async def run() -> list[pb.SessionResponse]:
        session = ObservingInterceptor(metrics)._session(behaviour)
        return [r async for r in session(requests(), _Context())]

    return asyncio.run(run())


def _rpc_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.rpc for r in caplog.records if r.name == "hposerve.rpc" and hasattr(r, "rpc")]


def test_a_failed_session_call_is_logged_with_its_namespace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hposerve.rpc")
    metrics = Metrics()
    ok = pb.SessionResponse(should_prune=pb.ShouldPruneResponse())
    denied = pb.SessionResponse(error=pb.Status(code=7, message="no"))  # PERMISSION_DENIED
    _session(metrics, [ok, denied, ok])

    lines = _rpc_lines(caplog)
    assert [(line["method"], line["code"]) for line in lines] == [
        (M + "ShouldPrune", "PERMISSION_DENIED")
    ]
    assert lines[0]["namespace"] == "team-a" and lines[0]["details"] == "no"
    assert _value(metrics, "hposerve_rpcs_total", method=M + "ShouldPrune", code="OK") == 2
    denials = {"namespace": "team-a", "code": "PERMISSION_DENIED"}
    assert _value(metrics, "hposerve_auth_denials_total", **denials) == 1


def test_every_session_call_at_debug_names_its_namespace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hposerve.rpc")
    _session(Metrics(), [pb.SessionResponse(should_prune=pb.ShouldPruneResponse())] * 2)

    lines = _rpc_lines(caplog)
    assert [line["method"] for line in lines] == [M + "ShouldPrune"] * 2 + [M + "Session"]
    assert [line["namespace"] for line in lines] == ["team-a", "team-a", ""]
    assert all(line["code"] == "OK" and line["request_id"] == "" for line in lines)
