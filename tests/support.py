"""Helpers for tests that run the server as a separate process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE = "hposerve.v1.StudyService"
SERVING = health_pb2.HealthCheckResponse.SERVING
START_TIMEOUT = 90.0  # importing torch and optuna on a cold, busy machine is slow
STOP_TIMEOUT = 20.0
SERVE = [sys.executable, "-m", "hposerve.server", "serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_serving(server: ServerProcess, services: tuple[str, ...] = ("", SERVICE)) -> None:
    """Waits until the health service says SERVING for ``services``; fails if it exits."""
    deadline = time.monotonic() + START_TIMEOUT
    with grpc.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if server.process.poll() is not None:
                pytest.fail(f"exited {server.process.returncode} early:\n{server.output()}")
            try:
                statuses = [
                    stub.Check(health_pb2.HealthCheckRequest(service=s), timeout=2).status
                    for s in services
                ]
                if statuses == [SERVING] * len(services):
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"not SERVING after {START_TIMEOUT} s:\n{server.output()}")
            time.sleep(0.1)


def stop_gracefully(server: ServerProcess) -> None:
    """Sends SIGTERM and requires exit status 0 within STOP_TIMEOUT."""
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.process.kill()
        pytest.fail(f"still running {STOP_TIMEOUT} s after SIGTERM:\n{server.output()}")
    assert code == 0, f"exit status {code} after SIGTERM:\n{server.output()}"
