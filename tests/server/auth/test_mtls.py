"""mTLS: a client certificate's subject is a principal; certificates the CA did not sign, and
clients without one, are refused. Certificates are made here with ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hposerve.server.domain._access import Role
from hposerve.v1 import admin_service_pb2 as apb
from hposerve.v1 import admin_service_pb2_grpc, study_service_pb2_grpc
from hposerve.v1 import study_service_pb2 as pb

from .conftest import AuthServer, World, code_of, create_study, metadata

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

Pair = tuple[bytes, bytes]  # (key PEM, certificate PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _certificate(
    cn: str, issuer: tuple[ec.EllipticCurvePrivateKey, x509.Name] | None, *, server: bool = False
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    signer, issuer_name = issuer if issuer else (key, _name(cn))
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return key, builder.sign(signer, hashes.SHA256())


def _pem(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> Pair:
    return (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert.public_bytes(serialization.Encoding.PEM),
    )


class PKI:
    def __init__(self) -> None:
        ca_key, ca = _certificate("test ca", None)
        self.ca = ca.public_bytes(serialization.Encoding.PEM)
        issuer = (ca_key, ca.subject)
        self.server = _pem(*_certificate("localhost", issuer, server=True))
        self.client = _pem(*_certificate("trainer-1", issuer))
        other_key, other_ca = _certificate("another ca", None)
        self.foreign_client = _pem(*_certificate("trainer-1", (other_key, other_ca.subject)))


@pytest.fixture
def pki() -> PKI:
    return PKI()


@pytest.fixture
def mtls_server(world: World, tmp_path: Path, pki: PKI) -> Iterator[AuthServer]:
    credentials = grpc.ssl_server_credentials(
        [pki.server], root_certificates=pki.ca, require_client_auth=True
    )
    server = AuthServer(world.store, tmp_path / "studies", credentials=credentials)
    yield server
    server.stop()


def _channel(server: AuthServer, pki: PKI, client: Pair | None) -> grpc.Channel:
    key, cert = client if client else (None, None)
    credentials = grpc.ssl_channel_credentials(pki.ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(f"localhost:{server.port}", credentials)


def test_the_certificate_subject_is_the_principal(
    world: World, mtls_server: AuthServer, pki: PKI
) -> None:
    with _channel(mtls_server, pki, pki.client) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        principal = admin.WhoAmI(apb.WhoAmIRequest()).principal
        assert principal == "certificates/CN=trainer-1,O=acme", principal
        studies = study_service_pb2_grpc.StudyServiceStub(channel)
        get = pb.GetStudyRequest(name="namespaces/a/studies/own")
        assert code_of(lambda: studies.GetStudy(get)) == grpc.StatusCode.PERMISSION_DENIED
        world.store.directory.add_member("a", principal, Role.VIEWER)
        create_study(channel, world.tokens["operator"], "a", "own")  # a token wins over it
        assert studies.GetStudy(get).name == get.name
        assert (
            admin.WhoAmI(apb.WhoAmIRequest(), metadata=metadata(world.tokens["viewer"])).principal
            == "users/viewer"
        )  # noqa: E501


@pytest.mark.parametrize("client", ["foreign", "none"])
def test_clients_the_ca_did_not_certify_are_refused(
    mtls_server: AuthServer, pki: PKI, client: str
) -> None:
    with _channel(mtls_server, pki, pki.foreign_client if client == "foreign" else None) as ch:
        admin = admin_service_pb2_grpc.AdminServiceStub(ch)
        code = code_of(lambda: admin.WhoAmI(apb.WhoAmIRequest(), timeout=5))
    assert code == grpc.StatusCode.UNAVAILABLE


def test_a_client_without_the_ca_refuses_the_server(mtls_server: AuthServer, pki: PKI) -> None:
    key, cert = pki.client
    credentials = grpc.ssl_channel_credentials(private_key=key, certificate_chain=cert)
    with grpc.secure_channel(f"localhost:{mtls_server.port}", credentials) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        assert code_of(lambda: admin.WhoAmI(apb.WhoAmIRequest(), timeout=5)) == (
            grpc.StatusCode.UNAVAILABLE
        )
