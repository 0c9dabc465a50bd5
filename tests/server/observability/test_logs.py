"""One log line per failed RPC (and per RPC at DEBUG), with method, code, latency, request id
and principal; ``--log-format json`` writes one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.request
from collections.abc import Callable

import pytest
from support import free_port, stop_gracefully, wait_serving

from hposerve.client import Client, ClientConfig, NotFound, PermissionDenied
from hposerve.server._logging import JsonFormatter

from .conftest import Running

M = "/hposerve.v1.StudyService/"


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _rpc_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [r.rpc for r in caplog.records if r.name == "hposerve.rpc"]


def test_a_failed_rpc_is_one_line_with_its_principal(
    observed_auth: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hposerve.rpc")
    tokens = observed_auth.tokens
    with Client(
        observed_auth.target, token=tokens["a_editor"], config=ClientConfig(namespace="a")
    ) as alice:
        alice.create_study(name="mine", direction="minimize")  # succeeds: not logged at INFO
        with pytest.raises(NotFound):
            alice.get_study("missing")
    with (
        Client(
            observed_auth.target, token=tokens["b_editor"], config=ClientConfig(namespace="a")
        ) as bob,
        pytest.raises(PermissionDenied),
    ):
        bob.get_study("mine")
    # A call is logged once it is answered: the caller may hear the answer a moment before.
    _wait(lambda: len(_rpc_lines(caplog)) == 2)
    lines = _rpc_lines(caplog)
    assert [(line["method"], line["code"], line["principal"]) for line in lines] == [
        (M + "GetStudy", "NOT_FOUND", "users/alice"),
        (M + "GetStudy", "PERMISSION_DENIED", "users/bob"),
    ]
    assert all(line["latency_ms"] > 0 and line["namespace"] == "a" for line in lines)
    assert "may not" in lines[1]["details"]
    message = [r for r in caplog.records if r.name == "hposerve.rpc"][0].getMessage()
    assert message.startswith(f"rpc {M}GetStudy NOT_FOUND ") and "principal=users/alice" in message


def test_every_rpc_at_debug_with_its_request_id(
    observed: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hposerve.rpc")
    with Client(observed.target) as client:
        study = client.create_study(name="logged", direction="minimize", request_id="req-123")
        study.tell(study.ask(), 1.0)
    _wait(lambda: _rpc_lines(caplog)[-1:] and _rpc_lines(caplog)[-1]["method"] == M + "Session")
    lines = _rpc_lines(caplog)
    methods = [line["method"] for line in lines]
    assert methods[:3] == [M + "CreateStudy", M + "AskTrials", M + "TellTrial"]
    assert lines[0]["request_id"] == "req-123" and lines[0]["code"] == "OK"
    assert methods[-1] == M + "Session"  # the stream itself, when it closes


def test_json_formatter() -> None:
    record = logging.LogRecord("hposerve.rpc", logging.INFO, __file__, 1, "rpc %s", ("x",), None)
    record.rpc = {"method": M + "GetStudy", "code": "NOT_FOUND", "latency_ms": 1.5}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "rpc x" and line["level"] == "INFO" and line["code"] == "NOT_FOUND"
    assert line["time"].endswith("+00:00")


def test_serve_logs_json_lines(spawn) -> None:
    port, metrics = free_port(), free_port()
    argv = [sys.executable, "-m", "hposerve.server", "--log-level", "DEBUG", "--log-format", "json"]
    argv += ["serve", "--port", str(port), "--data-dir", "data", "--metrics-port", str(metrics)]
    server = spawn(argv, port=port)
    wait_serving(server)
    with Client(server.target) as client, pytest.raises(NotFound):
        client.get_study("missing")
    # The call is counted as it ends on the server, which may be just after the client hears it.
    counted = (
        b'hposerve_rpcs_total{code="NOT_FOUND",method="/hposerve.v1.StudyService/GetStudy"} 1.0'
    )
    deadline = time.monotonic() + 10
    while True:
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10).read()
        if counted in scraped or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert counted in scraped, scraped
    stop_gracefully(server)
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert lines, server.output()
    failed = [line for line in lines if line.get("code") == "NOT_FOUND"]
    assert len(failed) == 1 and failed[0]["method"] == M + "GetStudy", lines
    assert failed[0]["level"] == "INFO" and failed[0]["logger"] == "hposerve.rpc"
