"""Who the client says it is and how its channel is protected: the token, TLS, mTLS.

Settings come from :class:`ClientConfig` and, where it leaves them unset, from the environment,
so that a training script written for a local server runs unchanged against a shared one:

- ``HPOSERVE_TOKEN``: the bearer token (``hps_...``).
- ``HPOSERVE_TLS=1``: TLS, verifying the server with the system's root certificates.
- ``HPOSERVE_TLS_ROOT_CERTS``: a PEM file of root certificates (implies TLS).
- ``HPOSERVE_TLS_CLIENT_CERT``, ``HPOSERVE_TLS_CLIENT_KEY``: a client certificate and its key
  (mTLS; implies TLS).
- ``HPOSERVE_ALLOW_INSECURE_TOKEN=1``: see ``ClientConfig.allow_insecure_token``.

The token travels as ``authorization: Bearer`` call metadata that the transport attaches to
every call itself. gRPC's call credentials would be dropped silently on an insecure channel;
metadata is not, so the rule that a token never crosses a network in plaintext is enforced
here: on an insecure channel, only to a loopback address.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import grpc

from ._config import ClientConfig, PemSource

ENV_TOKEN = "HPOSERVE_TOKEN"
ENV_TLS = "HPOSERVE_TLS"
ENV_ROOT_CERTS = "HPOSERVE_TLS_ROOT_CERTS"
ENV_CLIENT_CERT = "HPOSERVE_TLS_CLIENT_CERT"
ENV_CLIENT_KEY = "HPOSERVE_TLS_CLIENT_KEY"
ENV_ALLOW_INSECURE_TOKEN = "HPOSERVE_ALLOW_INSECURE_TOKEN"

Metadata = tuple[tuple[str, str], ...]


def channel_security(
    target: str,
    config: ClientConfig,
    *,
    token: str | None,
    credentials: grpc.ChannelCredentials | None,
) -> tuple[grpc.ChannelCredentials | None, Metadata]:
    """The channel credentials and the call metadata of a client of ``target``.

    Args:
        target: The server address.
        config: The client's settings.
        token: The token given to the client itself; None: ``config.token``, else
            ``HPOSERVE_TOKEN``. An empty string sends no token.
        credentials: Channel credentials given to the client; they exclude the TLS settings.

    Raises:
        ValueError: The settings contradict each other, or a token would go in plaintext to
            an address that is not a loopback one. The message never holds the token.
        OSError: A certificate file cannot be read.
    """
    secret = _token(token, config)
    metadata = config.metadata
    if secret:
        if any(key.lower() == "authorization" for key, _ in metadata):
            raise ValueError("a token and authorization metadata were both given; give one")
        metadata = (*metadata, ("authorization", f"Bearer {secret}"))
    if credentials is not None:
        if config.tls or any(
            v is not None
            for v in (config.root_certificates, config.client_certificate, config.client_key)
        ):
            raise ValueError("give either credentials or the TLS settings of ClientConfig")
    else:
        credentials = _tls_credentials(config)
    sends_token = any(key.lower() == "authorization" for key, _ in metadata)
    allowed = config.allow_insecure_token or _flag(ENV_ALLOW_INSECURE_TOKEN)
    if sends_token and credentials is None and not allowed and not is_loopback(target):
        raise ValueError(_plaintext_refusal(target))
    return credentials, metadata


def _token(token: str | None, config: ClientConfig) -> str:
    if token is None:
        token = config.token
    if token is None:
        token = os.environ.get(ENV_TOKEN, "")
    # A token read from a file or pasted often ends with a newline, which gRPC refuses.
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[len("bearer ") :].strip()
    if any(not (0x20 < ord(c) < 0x7F) for c in token):
        raise ValueError("the token holds characters a token never has (spaces, non-ASCII)")
    return token


def _tls_credentials(config: ClientConfig) -> grpc.ChannelCredentials | None:
    roots = _pem(config.root_certificates, ENV_ROOT_CERTS)
    chain = _pem(config.client_certificate, ENV_CLIENT_CERT)
    key = _pem(config.client_key, ENV_CLIENT_KEY)
    if (chain is None) != (key is None):
        raise ValueError(
            "client_certificate and client_key go together (mTLS): give both or neither"
            f" (or {ENV_CLIENT_CERT} and {ENV_CLIENT_KEY})"
        )
    if not (config.tls or _flag(ENV_TLS) or roots is not None or chain is not None):
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=roots, private_key=key, certificate_chain=chain
    )


def _pem(value: PemSource | None, variable: str) -> bytes | None:
    """PEM bytes given as bytes, as PEM text, or as a path (the config's, else the variable's)."""
    if value is None:
        value = os.environ.get(variable) or None
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    return Path(value).expanduser().read_bytes()


def _flag(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")


def _plaintext_refusal(target: str) -> str:
    return (
        f"refusing to send a token in plaintext to {target!r}, which is not a loopback address"
        " (anyone on the path could read it): connect with TLS, e.g."
        " ClientConfig(tls=True) to verify the server with the system's root certificates or"
        f" ClientConfig(root_certificates='ca.pem') for a private CA ({ENV_TLS}=1 or"
        f" {ENV_ROOT_CERTS}=ca.pem in the environment); only if the network below gRPC is"
        " encrypted already (a service-mesh sidecar), ClientConfig(allow_insecure_token=True)"
        f" ({ENV_ALLOW_INSECURE_TOKEN}=1)"
    )


# -- loopback ----------------------------------------------------------------------------------

_LOCAL_SOCKETS = ("unix:", "unix-abstract:")
_ADDRESS_LISTS = ("ipv4:", "ipv6:")
_NAME_SCHEMES = ("dns:", "passthrough:")


def is_loopback(target: str) -> bool:
    """Whether every address ``target`` names is on this machine: ``localhost``, 127.0.0.0/8,
    ``::1``, or a unix socket. Any other DNS name is not, whatever it resolves to now."""
    lowered = target.strip().lower()
    if lowered.startswith(_LOCAL_SOCKETS):
        return True
    if lowered.startswith(_ADDRESS_LISTS):
        addresses = lowered.split(":", 1)[1].split(",")
        return all(_loopback_host(_host(a)) for a in addresses)
    for scheme in _NAME_SCHEMES:
        if lowered.startswith(scheme):
            rest = lowered[len(scheme) :]
            if rest.startswith("//"):  # dns://authority/host:port: the authority is the resolver
                rest = rest[2:].partition("/")[2]
            return _loopback_host(_host(rest))
    return _loopback_host(_host(lowered))


def _host(address: str) -> str:
    address = address.strip()
    if address.startswith("["):  # [::1]:50051
        return address[1:].partition("]")[0]
    if _ip(address) is not None:  # a bare IPv6 address has colons of its own
        return address
    return address.rpartition(":")[0] if ":" in address else address


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


def _loopback_host(host: str) -> bool:
    if host.rstrip(".") == "localhost":
        return True
    ip = _ip(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip is not None and ip.is_loopback
