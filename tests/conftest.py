"""Shared fixtures: a real server on a free port, with a client and a raw stub."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

import grpc
import pytest
from support import ServerProcess

from hposerve.client import Client
from hposerve.server import make_server
from hposerve.v1 import study_service_pb2_grpc

POSTGRES_URL = os.environ.get(
    "HPOSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HPOSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that need a database server are skipped where none runs (a user's machine).
    for marker, port in (("postgres", 5432), ("redis", 6379)):
        if not reachable("127.0.0.1", port):
            skip = pytest.mark.skip(reason=f"no {marker} server on 127.0.0.1:{port}")
            for item in items:
                if marker in item.keywords:
                    item.add_marker(skip)


@pytest.fixture
def server(tmp_path):
    srv = make_server("127.0.0.1:0", data_dir=tmp_path / "data", reap_interval=0.05).start()
    yield srv
    srv.stop(grace=1)


@pytest.fixture
def target(server) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def client(target):
    with Client(target) as c:
        yield c


@pytest.fixture
def stub(target):
    with grpc.insecure_channel(target) as channel:
        yield study_service_pb2_grpc.StudyServiceStub(channel)


@pytest.fixture
def study_name() -> str:
    return f"study-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def spawn(tmp_path):
    """Starts a server process listening on ``port``; killed at teardown if still running."""
    started: list[ServerProcess] = []

    def _spawn(argv: list[str], *, port: int, env: dict[str, str] | None = None):
        log = tmp_path / f"server-{len(started)}.log"
        with log.open("wb") as out:
            # cwd: a data dir left relative lands in tmp_path, never in the repository.
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(ServerProcess(process, port, log))
        return started[-1]

    yield _spawn
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
