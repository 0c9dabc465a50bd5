"""gRPC reflection lists the hposerve services; health follows the storage."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from hposerve.server.transport._server import make_server

from .conftest import Running, sample

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _services(target: str) -> list[str]:
    with grpc.insecure_channel(target) as channel:
        return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())


def test_reflection_lists_the_services(observed: Running) -> None:
    assert _services(observed.target) == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "hposerve.v1.ComparisonService",
        "hposerve.v1.StudyService",
    ]
    with grpc.insecure_channel(observed.target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        service = database.FindFileContainingSymbol("hposerve.v1.StudyService")
        assert service.name == "hposerve/v1/study_service.proto"


def test_reflection_is_open_with_auth_and_lists_the_admin_service(observed_auth: Running) -> None:
    assert "hposerve.v1.AdminService" in _services(observed_auth.target)


def _statuses(stub: health_pb2_grpc.HealthStub) -> set[int]:
    return {
        stub.Check(health_pb2.HealthCheckRequest(service=s), timeout=5).status
        for s in ("", "hposerve.v1.StudyService", "hposerve.v1.ComparisonService")
    }


def _wait_for(stub: health_pb2_grpc.HealthStub, status: int) -> None:
    deadline = time.monotonic() + 10
    while _statuses(stub) != {status}:
        assert time.monotonic() < deadline, f"health is {_statuses(stub)}, not {status}"
        time.sleep(0.05)


def test_health_turns_not_serving_when_the_storage_breaks(tmp_path: Path) -> None:
    db = tmp_path / "studies.db"
    server = make_server(
        "127.0.0.1:0", storage=f"sqlite:///{db}", metrics_port=0, health_interval=0.05
    ).start()
    try:
        target = f"127.0.0.1:{server.port}"
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            _wait_for(stub, SERVING)
            good = db.read_bytes()
            db.write_bytes(b"this is not a database" * 4096)  # the same file, broken
            _wait_for(stub, NOT_SERVING)
            assert server.observability is not None and not server.observability.probe.healthy
            db.write_bytes(good)  # repaired: serving again
            _wait_for(stub, SERVING)
    finally:
        server.stop(grace=1)


def test_the_storage_metric_follows_health(observed: Running) -> None:
    assert sample(observed.scrape(), "hposerve_storage_healthy") == 1
