"""The client over TLS and mTLS to a real authenticated server, with certificates made in the
test: root certificates as bytes, a path or ``HPOSERVE_TLS_ROOT_CERTS``; a client without the
CA refused; a client certificate (the principal) from the config or the environment; one from
another CA, or none, refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hposerve.client import (
    Client,
    ClientConfig,
    FloatDistribution,
    PermissionDenied,
    Unavailable,
)
from hposerve.server.domain._access import Role

from .conftest import AuthServer, World
from .test_client_auth import clean_environment  # noqa: F401 - autouse: no HPOSERVE_ settings
from .test_mtls import PKI

PRINCIPAL = "certificates/CN=trainer-1,O=acme"


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI()


@pytest.fixture
def files(pki: PKI, tmp_path: Path) -> dict[str, Path]:
    paths = {"ca": pki.ca, "cert": pki.client[1], "key": pki.client[0]}
    for name, data in paths.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    return {name: tmp_path / f"{name}.pem" for name in paths}


def _server(world: World, tmp_path: Path, pki: PKI, *, mtls: bool) -> AuthServer:
    credentials = grpc.ssl_server_credentials(
        [pki.server], root_certificates=pki.ca if mtls else None, require_client_auth=mtls
    )
    return AuthServer(world.store, tmp_path / "studies", credentials=credentials)


@pytest.fixture
def tls_server(world: World, tmp_path: Path, pki: PKI) -> Iterator[AuthServer]:
    server = _server(world, tmp_path, pki, mtls=False)
    yield server
    server.stop()


@pytest.fixture
def mtls_server(world: World, tmp_path: Path, pki: PKI) -> Iterator[AuthServer]:
    server = _server(world, tmp_path, pki, mtls=True)
    yield server
    server.stop()


def _work(client: Client, name: str) -> None:
    """Unary calls, then trial calls over a session."""
    study = client.create_study(name=name)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=2)
    trial = study.ask({"x": FloatDistribution(0, 1)})
    study.tell(trial, 0.5)
    assert len(study.trials) == 3
    assert client._transport._sessions_paused_until == 0.0  # the sessions worked too


@pytest.mark.parametrize("roots", ["bytes", "path", "str", "environment"])
def test_tls_with_a_test_ca(
    world: World,
    tls_server: AuthServer,
    pki: PKI,
    files: dict[str, Path],
    roots: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = {"bytes": pki.ca, "path": files["ca"], "str": str(files["ca"]), "environment": None}
    if roots == "environment":
        monkeypatch.setenv("HPOSERVE_TLS_ROOT_CERTS", str(files["ca"]))
        monkeypatch.setenv("HPOSERVE_TOKEN", world.tokens["editor"])
        config = ClientConfig(namespace="a")
        token = None
    else:
        config = ClientConfig(namespace="a", root_certificates=given[roots])
        token = world.tokens["editor"]
    with Client(f"localhost:{tls_server.port}", token=token, config=config) as client:
        _work(client, "tls")


@pytest.mark.parametrize("client", ["system roots", "plaintext"])
def test_a_client_without_the_ca_is_refused(
    world: World, tls_server: AuthServer, client: str
) -> None:
    tls = client == "system roots"
    config = ClientConfig(namespace="a", tls=tls, max_attempts=1, timeout=5.0)
    refused = Client(f"localhost:{tls_server.port}", token=world.tokens["editor"], config=config)
    with refused, pytest.raises(Unavailable):
        refused.create_study(name="never")
    world.store.audit.flush()
    assert world.store.audit.read(namespace=None, before=None, limit=10) == []  # nothing came


@pytest.mark.parametrize("given", ["config", "environment"])
def test_mtls_with_a_client_certificate(
    world: World,
    mtls_server: AuthServer,
    pki: PKI,
    files: dict[str, Path],
    given: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if given == "environment":
        monkeypatch.setenv("HPOSERVE_TLS_ROOT_CERTS", str(files["ca"]))
        monkeypatch.setenv("HPOSERVE_TLS_CLIENT_CERT", str(files["cert"]))
        monkeypatch.setenv("HPOSERVE_TLS_CLIENT_KEY", str(files["key"]))
        config = ClientConfig(namespace="a")
    else:
        key, cert = pki.client
        config = ClientConfig(
            namespace="a", root_certificates=pki.ca, client_certificate=cert, client_key=key
        )
    target = f"localhost:{mtls_server.port}"
    with Client(target, config=config) as client:  # no token: the certificate is the principal
        with pytest.raises(PermissionDenied):
            client.create_study(name="mtls")
        world.store.directory.add_member("a", PRINCIPAL, Role.EDITOR)
        _work(client, "mtls")
    world.store.audit.flush()
    records = world.store.audit.read(namespace="a", before=None, limit=100)
    assert {r.principal for r in records} == {PRINCIPAL}


@pytest.mark.parametrize("client", ["foreign", "none"])
def test_mtls_refuses_a_certificate_of_another_ca_or_none(
    world: World, mtls_server: AuthServer, pki: PKI, client: str
) -> None:
    key, cert = pki.foreign_client if client == "foreign" else (None, None)
    config = ClientConfig(
        namespace="a",
        root_certificates=pki.ca,
        client_certificate=cert,
        client_key=key,
        max_attempts=1,
        timeout=5.0,
    )
    refused = Client(f"localhost:{mtls_server.port}", token=world.tokens["editor"], config=config)
    with refused, pytest.raises(Unavailable):
        refused.create_study(name="never")
