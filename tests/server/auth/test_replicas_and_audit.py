"""Replicas on one PostgreSQL agree on tokens, revocations and quotas within seconds; the audit
log holds every mutation and denial of a scripted session and survives ``kill -9``."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from support import SERVE, free_port, wait_serving

from hposerve.server import make_server
from hposerve.server.storage._identity import IdentityStore
from hposerve.server.transport import Server
from hposerve.v1 import admin_service_pb2 as apb
from hposerve.v1 import admin_service_pb2_grpc, study_service_pb2_grpc, types_pb2
from hposerve.v1 import study_service_pb2 as pb

from .conftest import code_of, metadata, populate

POSTGRES_URL = os.environ.get(
    "HPOSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _wait_until(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition()`` holds; fails after ``seconds``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def replicas() -> Iterator[tuple[Server, Server, dict[str, str]]]:
    schema = f"hps_test_{uuid.uuid4().hex[:10]}"
    identity = f"{POSTGRES_URL}?hposerve_schema={schema}"
    store = IdentityStore.open(url=identity, cache_seconds=0.0).start()
    tokens = populate(store).tokens
    store.close()
    servers = [
        make_server("127.0.0.1:0", storage=POSTGRES_URL, identity_storage=identity, auth=True)
        for _ in "ab"
    ]
    for server in servers:
        server.start()
    yield servers[0], servers[1], tokens
    for server in servers:
        server.stop()
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def _stubs(server: Server) -> tuple[Any, Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    return (
        study_service_pb2_grpc.StudyServiceStub(channel),
        admin_service_pb2_grpc.AdminServiceStub(channel),
    )


@pytest.mark.postgres
def test_a_token_and_its_revocation_reach_the_other_replica(
    replicas: tuple[Server, Server, dict[str, str]],
) -> None:
    first, second, tokens = replicas
    studies_1, admin_1 = _stubs(first)
    studies_2, admin_2 = _stubs(second)
    issued = admin_1.IssueToken(
        apb.IssueTokenRequest(principal="users/editor"), metadata=metadata(tokens["operator"])
    )
    md = metadata(issued.secret)
    study = f"r{uuid.uuid4().hex[:12]}"
    studies_2.CreateStudy(pb.CreateStudyRequest(parent="namespaces/a", study_id=study), metadata=md)
    name = f"namespaces/a/studies/{study}"
    assert studies_1.GetStudy(pb.GetStudyRequest(name=name), metadata=md).name == name
    get = lambda: studies_2.GetStudy(pb.GetStudyRequest(name=name), metadata=md)  # noqa: E731
    admin_1.RevokeToken(
        apb.RevokeTokenRequest(name=issued.token.name), metadata=metadata(tokens["operator"])
    )
    took = _wait_until(lambda: code_of(get) == grpc.StatusCode.UNAUTHENTICATED, 5.0)
    assert took <= 3.0, took  # the lookup cache holds a token for 2 s
    # A quota an operator sets on one replica binds the other as soon.
    quota = apb.Quota(name="namespaces/a/quota", max_studies=1)
    admin_2.SetQuota(apb.SetQuotaRequest(quota=quota), metadata=metadata(tokens["operator"]))
    editor = metadata(tokens["editor"])
    create = lambda: studies_1.CreateStudy(  # noqa: E731
        pb.CreateStudyRequest(parent="namespaces/a", study_id=study + "x"), metadata=editor
    )
    _wait_until(lambda: code_of(create) == grpc.StatusCode.RESOURCE_EXHAUSTED, 5.0)
    studies_1.DeleteStudy(pb.DeleteStudyRequest(name=name), metadata=metadata(tokens["admin"]))


def test_the_audit_log_holds_a_scripted_session_and_survives_kill_9(
    tmp_path: Path, spawn: Any
) -> None:
    data_dir = tmp_path / "data"
    store = IdentityStore.open(data_dir=data_dir, cache_seconds=0.0).start()
    tokens = populate(store).tokens
    store.close()
    port = free_port()
    server = spawn([*SERVE, "--auth", "--port", str(port), "--data-dir", str(data_dir)], port=port)
    wait_serving(server)
    editor, bob, admin = (metadata(tokens[k]) for k in ("editor", "other_team", "admin"))
    expected: list[tuple[str, str, str, str]] = []  # (principal, method, resource, outcome)
    with grpc.insecure_channel(server.target) as channel:
        stub = study_service_pb2_grpc.StudyServiceStub(channel)
        stub.CreateStudy(
            pb.CreateStudyRequest(parent="namespaces/a", study_id="s", request_id="r-1"),
            metadata=editor,
        )
        expected.append(("users/editor", "CreateStudy", "namespaces/a/studies/s", "OK"))
        trial = stub.AskTrials(
            pb.AskTrialsRequest(parent="namespaces/a/studies/s"), metadata=editor
        ).trials[0]
        expected.append(("users/editor", "AskTrials", "namespaces/a/studies/s", "OK"))
        stub.TellTrial(
            pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[0.5]),
            metadata=editor,
        )
        expected.append(("users/editor", "TellTrial", trial.name, "OK"))
        for who, md in (("users/bob", bob), ("", [])):
            code = code_of(
                lambda md=md: stub.AskTrials(
                    pb.AskTrialsRequest(parent="namespaces/a/studies/s"), metadata=md
                )
            )
            outcome = "PERMISSION_DENIED" if who else "UNAUTHENTICATED"
            assert code.name == outcome
            expected.append((who, "AskTrials", "namespaces/a/studies/s", outcome))
        code = code_of(
            lambda: stub.DeleteStudy(
                pb.DeleteStudyRequest(name="namespaces/a/studies/s"), metadata=editor
            )
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED
        expected.append(
            ("users/editor", "DeleteStudy", "namespaces/a/studies/s", "PERMISSION_DENIED")
        )
        code = code_of(
            lambda: stub.DeleteStudy(
                pb.DeleteStudyRequest(name="namespaces/a/studies/no"), metadata=admin
            )
        )
        assert code == grpc.StatusCode.NOT_FOUND
        expected.append(("users/admin-a", "DeleteStudy", "namespaces/a/studies/no", "NOT_FOUND"))
    time.sleep(0.5)  # the writer's batches go every 0.1 s
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    reopened = IdentityStore.open(data_dir=data_dir)
    try:
        records = reopened.audit.read(namespace=None, before=None, limit=100)
    finally:
        reopened.close()
    found = [
        (r.principal, r.method.rsplit("/", 1)[1], r.resource, r.outcome) for r in reversed(records)
    ]
    assert found == expected
    assert all(r.time > 0 for r in records)
    assert [r.request_id for r in reversed(records)][0] == "r-1"
    secrets = [s for s in tokens.values() if s]
    text = (data_dir / "identity.db").read_bytes()
    assert not any(s.encode() in text for s in secrets), "a secret in the database"
