"""The client's token, TLS settings and quota retries, against fakes.

The token rides on every call as ``authorization: Bearer`` metadata, comes from the environment
when the code gives none, never goes in plaintext to another machine, and never shows in a
repr, a log record or an exception. A call refused RESOURCE_EXHAUSTED with a retry delay (a
quota) is retried once the delay has passed, when that is safe and fits; else it is raised
with the delay. Through a real authenticated server: tests/server/auth/test_client_*.py.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator

import grpc
import pytest
from client_fakes import FakeStudyService, SessionQuotaService, serving

from hposerve.client import Client, ClientConfig, HposerveError, ResourceExhausted
from hposerve.client._security import is_loopback
from hposerve.client._transport import RETRY, Retry

TOKEN = "hps_" + "s3cr3t" * 7


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HPOSERVE_ setting of the machine running the tests leaks in (HPOSERVE_TEST_ ones stay)."""
    for variable in [v for v in os.environ if re.match(r"HPOSERVE_(?!TEST_)", v)]:
        monkeypatch.delenv(variable)


@pytest.fixture
def fake() -> Iterator[tuple[FakeStudyService, str]]:
    service = FakeStudyService()
    with serving(service) as target:
        yield service, target


def _authorization(service: FakeStudyService) -> list[str | None]:
    with service.lock:
        return [metadata.get("authorization") for _, _, _, metadata in service.calls]


# Where a token may go in plaintext.


@pytest.mark.parametrize(
    "target",
    [
        "localhost:50051",
        "LOCALHOST:1",
        "localhost",
        "127.0.0.1:50051",
        "127.3.2.1:50051",
        "[::1]:50051",
        "::1",
        "[::ffff:127.0.0.1]:50051",
        "dns:///localhost:50051",
        "dns://8.8.8.8/localhost:50051",
        "dns:127.0.0.1:50051",
        "ipv4:127.0.0.1:50051,127.0.0.2:50051",
        "ipv6:[::1]:50051",
        "unix:/tmp/hposerve.sock",
        "unix:///tmp/hposerve.sock",
        "unix-abstract:hposerve",
    ],
)
def test_loopback_addresses(target):
    assert is_loopback(target)


@pytest.mark.parametrize(
    "target",
    [
        "hpo.lab:50051",
        "localhost.evil.com:50051",
        "mylocalhost:50051",
        "10.0.0.7:50051",
        "0.0.0.0:50051",
        "[2001:db8::1]:50051",
        "dns:///hpo.lab:50051",
        "dns://127.0.0.1/hpo.lab:50051",  # the authority is the DNS server, not the target
        "ipv4:127.0.0.1:50051,10.0.0.7:50051",
        "xds:///hpo",
    ],
)
def test_other_addresses_are_not_loopback(target):
    assert not is_loopback(target)


@pytest.mark.parametrize(
    "settings",
    [{"token": TOKEN}, {"config": ClientConfig(metadata=(("Authorization", "Bearer x"),))}],
)
def test_a_token_is_refused_in_plaintext_beyond_loopback(settings):
    with pytest.raises(ValueError, match="refusing to send a token in plaintext") as raised:
        Client("hpo.lab:50051", **settings)
    message = str(raised.value)
    assert TOKEN not in message and "Bearer x" not in message
    # The message names the fixes.
    assert "tls=True" in message and "root_certificates" in message
    assert "allow_insecure_token=True" in message and "HPOSERVE_TLS" in message


def test_the_token_from_the_environment_is_refused_in_plaintext_too(monkeypatch):
    monkeypatch.setenv("HPOSERVE_TOKEN", TOKEN)
    with pytest.raises(ValueError, match="plaintext"):
        Client("dns:///hpo.lab:50051")


@pytest.mark.parametrize(
    "config",
    [
        ClientConfig(tls=True),
        ClientConfig(allow_insecure_token=True),
        ClientConfig(root_certificates=b"-----BEGIN CERTIFICATE-----\n"),
    ],
)
def test_tls_or_the_opt_out_lets_a_token_go_beyond_loopback(config):
    # Channels connect lazily: nothing is sent here, only the settings are checked.
    Client("hpo.lab:50051", token=TOKEN, config=config).close()


@pytest.mark.parametrize("variable", ["HPOSERVE_TLS", "HPOSERVE_ALLOW_INSECURE_TOKEN"])
def test_the_environment_can_say_tls_or_opt_out(monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    Client("hpo.lab:50051", token=TOKEN).close()


def test_no_token_needs_no_tls():
    Client("hpo.lab:50051").close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"config": ClientConfig(client_certificate=b"-----BEGIN")}, "go together"),
        ({"config": ClientConfig(client_key=b"-----BEGIN")}, "go together"),
        (
            {"config": ClientConfig(tls=True), "credentials": grpc.ssl_channel_credentials()},
            "either credentials or the TLS settings",
        ),
        ({"token": "hps_with space"}, "characters a token never has"),
        (
            {"token": TOKEN, "config": ClientConfig(metadata=(("authorization", "Bearer y"),))},
            "give one",
        ),
    ],
)
def test_contradictory_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message) as raised:
        Client("localhost:1", **settings)
    assert "with space" not in str(raised.value)


def test_a_missing_certificate_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        Client("localhost:1", config=ClientConfig(root_certificates=tmp_path / "none.pem"))


# The token on the wire.


def test_the_token_goes_with_every_call(fake):
    service, target = fake
    with Client(target, token=TOKEN) as client:
        study = client.create_study(name="s")
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.report(0.5, step=1)
        study.tell(trial, 0.5)
        client.list_studies()
        client.delete_study("s")
    assert len(service.calls) >= 7
    assert set(_authorization(service)) == {f"Bearer {TOKEN}"}


def test_the_token_is_taken_from_hposerve_token(fake, monkeypatch):
    service, target = fake
    monkeypatch.setenv("HPOSERVE_TOKEN", f"{TOKEN}\n")  # as a file would give it
    with Client(target) as client:
        client.create_study(name="s")
    with Client(target, config=ClientConfig(token="hps_config")) as client:
        client.get_study("s")  # the config's wins over the environment
    with Client(target, token="hps_argument", config=ClientConfig(token="hps_config")) as client:
        client.get_study("s")  # and the argument over the config's
    with Client(target, token="") as client:
        client.get_study("s")  # "": none at all
    assert _authorization(service) == [
        f"Bearer {TOKEN}",
        "Bearer hps_config",
        "Bearer hps_argument",
        None,
    ]


def test_the_namespace_is_taken_from_hposerve_namespace(fake, monkeypatch):
    service, target = fake
    monkeypatch.setenv("HPOSERVE_NAMESPACE", "vision")
    with Client(target) as client:
        assert client.create_study(name="s").resource_name == "namespaces/vision/studies/s"
    assert ClientConfig(namespace="nlp").namespace == "nlp"


# The token is never shown.


def test_no_repr_shows_a_secret():
    config = ClientConfig(
        token=TOKEN,
        client_key=b"-----BEGIN PRIVATE KEY-----secret",
        metadata=(("authorization", f"Bearer {TOKEN}"), ("x-team", "vision")),
    )
    text = repr(config)
    assert TOKEN not in text and "PRIVATE KEY" not in text
    assert "token=<hidden>" in text and "'x-team', 'vision'" in text
    assert "client_key=<hidden>" in text and "namespace='default'" in text
    client = Client("localhost:1", token=TOKEN, config=config.__class__(timeout=3.0))
    assert TOKEN not in repr(client) and TOKEN not in repr(client.config)
    client.close()
    assert "token=None" in repr(ClientConfig())
    assert "client_key='key.pem'" in repr(ClientConfig(client_key="key.pem"))


def test_no_log_record_nor_error_shows_the_token(fake, caplog):
    service, target = fake
    service.failures["GetStudy"] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED]
    service.hooks["Heartbeat"] = lambda request, context: context.abort(
        grpc.StatusCode.PERMISSION_DENIED, "no"
    )
    config = ClientConfig(initial_backoff=0.01, heartbeat_interval=0.05)
    caplog.set_level(logging.DEBUG)
    with Client(target, token=TOKEN, config=config) as client:
        study = client.create_study(name="s")
        trial = study.ask()
        deadline = time.monotonic() + 5
        while "heartbeat" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(HposerveError) as raised:
            client.get_study("s")  # retried after UNAVAILABLE (logged), then refused
        study.tell(trial, 1.0)
    assert "heartbeat" in caplog.text and "unavailable" in caplog.text.lower()
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(record.args) for record in caplog.records)
    assert TOKEN not in str(raised.value) and TOKEN not in repr(raised.value)


# Quotas: RESOURCE_EXHAUSTED with a retry delay.


@pytest.fixture
def quota_fake() -> Iterator[tuple[SessionQuotaService, str]]:
    pytest.importorskip("grpc_status")
    service = SessionQuotaService()
    with serving(service) as target:
        yield service, target


def test_a_quota_refusal_is_retried_after_its_delay(quota_fake):
    service, target = quota_fake
    with Client(target, config=ClientConfig(sessions=False)) as client:
        client.create_study(name="s")
        service.quota["GetStudy"] = [0.3]
        started = time.monotonic()
        client.get_study("s")
        elapsed = time.monotonic() - started
    assert len(service.calls_of("GetStudy")) == 2
    assert 0.3 <= elapsed < 2.0


def test_a_quota_refusal_in_a_session_is_retried_after_its_delay(quota_fake):
    service, target = quota_fake
    with Client(target) as client:
        study = client.create_study(name="s")
        trial = study.ask()
        service.session_quota["TellTrial"] = [0.3]
        started = time.monotonic()
        study.tell(trial, 1.0)
        elapsed = time.monotonic() - started
        assert client._transport._sessions_paused_until == 0.0  # the session went on
    assert len(service.calls_of("TellTrial")) == 1  # the refused message did nothing
    assert 0.3 <= elapsed < 2.0


@pytest.mark.parametrize(
    ("config", "delay"),
    [
        (ClientConfig(sessions=False, max_retry_delay=0.5), 1.0),  # longer than we accept
        (ClientConfig(sessions=False, timeout=0.5), 1.0),  # past the call's deadline
        (ClientConfig(sessions=False, max_attempts=1), 0.1),  # no retries at all
    ],
)
def test_a_quota_refusal_that_does_not_fit_is_raised_with_its_delay(quota_fake, config, delay):
    service, target = quota_fake
    with Client(target, config=config) as client:
        client.create_study(name="s")
        service.quota["GetStudy"] = [delay]
        started = time.monotonic()
        with pytest.raises(ResourceExhausted) as raised:
            client.get_study("s")
        assert time.monotonic() - started < delay  # raised at once
    assert raised.value.retry_delay == pytest.approx(delay)
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "quota" in raised.value.message
    assert len(service.calls_of("GetStudy")) == 1


def test_a_quota_refusal_of_a_call_not_safe_to_retry_is_raised(quota_fake, monkeypatch):
    service, target = quota_fake
    monkeypatch.setitem(RETRY, "GetStudy", Retry.NEVER)
    with Client(target, config=ClientConfig(sessions=False)) as client:
        client.create_study(name="s")
        service.quota["GetStudy"] = [0.1]
        with pytest.raises(ResourceExhausted) as raised:
            client.get_study("s")
    assert raised.value.retry_delay == pytest.approx(0.1)
    assert len(service.calls_of("GetStudy")) == 1


def test_resource_exhausted_without_a_delay_is_raised_at_once(fake):
    service, target = fake
    service.failures["GetStudy"] = [grpc.StatusCode.RESOURCE_EXHAUSTED]
    with Client(target) as client, pytest.raises(ResourceExhausted) as raised:
        client.get_study("s")
    assert raised.value.retry_delay is None
    assert len(service.calls_of("GetStudy")) == 1
