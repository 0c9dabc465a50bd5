"""Shared fixtures: a real server on a free port, with a client and a raw stub."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import urllib.parse
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


# With CI=true (as .ci/run sets it) a missing database server fails its tests instead of
# skipping them, so that CI cannot pass without running them.
ON_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")

# marker -> (variable overriding the URL, the URL, default port, how .ci/run starts that server)
DATABASE_SERVERS = {
    "postgres": (
        "HPOSERVE_TEST_POSTGRES_URL",
        POSTGRES_URL,
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
    "redis": (
        "HPOSERVE_TEST_REDIS_URL",
        REDIS_URL,
        6379,
        'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    ),
}


def reachable(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@functools.cache
def missing_server(marker: str) -> str | None:
    """Why the server that tests marked ``marker`` need cannot be used, or None if it answers."""
    variable, url, default_port, _ = DATABASE_SERVERS[marker]
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    if reachable(host, port):
        return None
    # The host and port only: the URL may hold a password.
    return f"no {marker} server on {host}:{port} ({variable} points the tests elsewhere)"


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Tests that need a database server are skipped where none runs (a user's machine), and
    # fail on CI, where .ci/run starts them.
    for marker, (*_, start) in DATABASE_SERVERS.items():
        if item.get_closest_marker(marker) is None:
            continue
        reason = missing_server(marker)
        if reason is None:
            continue
        if ON_CI:
            pytest.fail(
                f"{reason}; CI=true, so the {marker} tests must run: .ci/run should have "
                f"started the server with `{start}` (or point the test URL at a running one)",
                pytrace=False,
            )
        pytest.skip(f"{reason}; set CI=true to make this a failure")


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
