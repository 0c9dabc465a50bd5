"""``make_server`` with auth, TLS and mTLS from files, the loopback rule, and lists that show
only what the caller may see; through real servers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hposerve.server import make_server
from hposerve.server.storage._identity import IdentityStore
from hposerve.server.transport import RefusedToStart, Server
from hposerve.server.transport._server import ADMIN_SERVICE_NAME
from hposerve.v1 import admin_service_pb2 as apb
from hposerve.v1 import admin_service_pb2_grpc, study_service_pb2_grpc
from hposerve.v1 import study_service_pb2 as pb

from .conftest import World, code_of, create_study, metadata, populate
from .test_mtls import PKI


def _world(data_dir: Path) -> World:
    store = IdentityStore.open(data_dir=data_dir, cache_seconds=0.0).start()
    world = populate(store)
    store.close()
    return world


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, World]]:
    world = _world(tmp_path / "data")
    server = make_server("127.0.0.1:0", data_dir=tmp_path / "data", auth=True).start()
    yield server, world
    server.stop()


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0", "example.org:0"])
def test_beyond_loopback_without_auth_it_refuses_to_start(address: str, tmp_path: Path) -> None:
    with pytest.raises(RefusedToStart, match="--insecure"):
        make_server(address, data_dir=tmp_path)
    assert not (tmp_path / "identity.db").exists()


def test_beyond_loopback_it_starts_with_auth_or_insecure(tmp_path: Path) -> None:
    for kwargs in ({"auth": True}, {"insecure": True}):
        make_server("0.0.0.0:0", data_dir=tmp_path / str(len(kwargs)), **kwargs).stop()


def test_the_serve_command_says_why_it_refuses(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "hposerve.server", "serve", "--host", "0.0.0.0"]
    done = subprocess.run(
        [*argv, "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--insecure" in done.stderr and "--auth" in done.stderr, done.stderr


def test_half_a_tls_configuration_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "cert.pem"
    pem.write_bytes(b"")
    with pytest.raises(RefusedToStart, match="--tls-key"):
        make_server("127.0.0.1:0", data_dir=tmp_path, tls_cert=pem)
    with pytest.raises(RefusedToStart, match="needs TLS"):
        make_server("127.0.0.1:0", data_dir=tmp_path, tls_client_ca=pem)


def test_the_admin_service_is_served_and_healthy(served: tuple[Server, World]) -> None:
    server, world = served
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service=ADMIN_SERVICE_NAME))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        md = metadata(world.tokens["editor"])
        assert admin.WhoAmI(apb.WhoAmIRequest(), metadata=md).principal == "users/editor"


def test_lists_show_only_what_the_caller_may_see(served: tuple[Server, World]) -> None:
    server, world = served
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for study in ("hidden", "own", "zeta"):
            create_study(channel, world.tokens["editor"], "a", study)
        stub = study_service_pb2_grpc.StudyServiceStub(channel)

        def listed(who: str, page_size: int = 0) -> list[str]:
            request = pb.ListStudiesRequest(parent="namespaces/a", page_size=page_size)
            answer = stub.ListStudies(request, metadata=metadata(world.tokens[who]))
            return [s.name.rsplit("/", 1)[1] for s in answer.studies]

        assert listed("viewer") == ["hidden", "own", "zeta"]
        assert listed("operator") == ["hidden", "own", "zeta"]
        for who in ("shared_viewer", "shared_editor", "link_viewer"):
            assert listed(who) == ["own"], who
            assert listed(who, page_size=1) == ["own"], who  # filtered before paging
        assert code_of(lambda: listed("other_team")) == grpc.StatusCode.PERMISSION_DENIED


def _files(tmp_path: Path, pki: PKI) -> dict[str, Path]:
    files = {
        "cert": pki.server[1],
        "key": pki.server[0],
        "ca": pki.ca,
    }
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(content)
    return paths


def test_tls_with_a_token(tmp_path: Path) -> None:
    pki = PKI()
    files = _files(tmp_path, pki)
    world = _world(tmp_path / "data")
    server = make_server(
        "127.0.0.1:0",
        data_dir=tmp_path / "data",
        auth=True,
        tls_cert=files["cert"],
        tls_key=files["key"],
    ).start()
    try:
        credentials = grpc.ssl_channel_credentials(pki.ca)
        with grpc.secure_channel(f"localhost:{server.port}", credentials) as channel:
            admin = admin_service_pb2_grpc.AdminServiceStub(channel)
            md = metadata(world.tokens["viewer"])
            assert admin.WhoAmI(apb.WhoAmIRequest(), metadata=md).principal == "users/viewer"
            assert code_of(lambda: admin.WhoAmI(apb.WhoAmIRequest())) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
        with grpc.secure_channel(f"localhost:{server.port}", grpc.ssl_channel_credentials()) as ch:
            stub = admin_service_pb2_grpc.AdminServiceStub(ch)
            assert code_of(lambda: stub.WhoAmI(apb.WhoAmIRequest(), timeout=5)) == (
                grpc.StatusCode.UNAVAILABLE
            )  # a client without the CA refuses the server
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as plain:
            stub = admin_service_pb2_grpc.AdminServiceStub(plain)
            assert code_of(lambda: stub.WhoAmI(apb.WhoAmIRequest(), timeout=5)) == (
                grpc.StatusCode.UNAVAILABLE
            )
    finally:
        server.stop()


def test_mtls_from_files(tmp_path: Path) -> None:
    pki = PKI()
    files = _files(tmp_path, pki)
    _world(tmp_path / "data")
    server = make_server(
        "127.0.0.1:0",
        data_dir=tmp_path / "data",
        auth=True,
        tls_cert=files["cert"],
        tls_key=files["key"],
        tls_client_ca=files["ca"],
    ).start()
    try:
        for client, expected in (
            (pki.client, None),
            (pki.foreign_client, "refused"),
            (None, "refused"),
        ):
            key, cert = client if client else (None, None)
            credentials = grpc.ssl_channel_credentials(
                pki.ca, private_key=key, certificate_chain=cert
            )
            with grpc.secure_channel(f"localhost:{server.port}", credentials) as channel:
                admin = admin_service_pb2_grpc.AdminServiceStub(channel)
                if expected is None:
                    principal = admin.WhoAmI(apb.WhoAmIRequest(), timeout=5).principal
                    assert principal == "certificates/CN=trainer-1,O=acme"
                else:
                    code = code_of(lambda admin=admin: admin.WhoAmI(apb.WhoAmIRequest(), timeout=5))
                    assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()
