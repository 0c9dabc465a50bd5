"""The identity store on SQLite (and one test on PostgreSQL): hashes only, expiry, revocation
across stores on one database within the cache's lifetime, the audit log, request ids."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from hposerve.server.domain._access import Role, Scope, Unauthenticated
from hposerve.server.domain._admin import AuditRecord
from hposerve.server.domain._exceptions import AlreadyExists, NotFound
from hposerve.server.storage._identity import IdentityStore
from hposerve.server.storage._identity_schema import identity_url
from hposerve.server.storage._tokens import TOKEN_PREFIX

from .conftest import World


def _everything_on_disk(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_tokens_are_stored_only_as_hashes(world: World, tmp_path: Path) -> None:
    world.store.audit.flush()
    data = _everything_on_disk(tmp_path / "data")
    assert data, "the store wrote nothing?"
    for secret in world.tokens.values():
        if secret.startswith(TOKEN_PREFIX) and "x" * 40 not in secret:
            assert secret.encode() not in data
            assert secret[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 16].encode() not in data
    editor = world.tokens["editor"]
    assert hashlib.sha256(editor.encode()).hexdigest().encode() in data


def test_a_token_has_256_random_bits_and_the_prefix(store: IdentityStore) -> None:
    store.directory.ensure_principal("users/u")
    secrets_ = {store.tokens.issue_token("users/u", ttl=None)[1] for _ in range(20)}
    assert len(secrets_) == 20
    for secret in secrets_:
        assert secret.startswith("hps_") and len(secret) == 4 + 43  # 32 bytes in base64url


def test_authentication(world: World) -> None:
    tokens = world.store.tokens
    editor = tokens.authenticate_token(world.tokens["editor"])
    assert editor.name == "users/editor" and editor.namespaces == {"a": Role.EDITOR}
    shared = tokens.authenticate_token(world.tokens["shared_viewer"])
    assert shared.shared == {("a", "own"): Role.VIEWER}  # the share's VIEWER caps EDITOR
    assert tokens.authenticate_token(world.tokens["operator"]).operator
    link = tokens.authenticate_token(world.tokens["link_editor"])
    assert link.scope == Scope("a", "own", Role.EDITOR) and link.name.startswith(
        "namespaces/a/studies/own/shareTokens/"
    )
    for bad, why in [
        ("revoked", "revoked"),
        ("expired_share", "expired"),
        ("bad_token", "unknown"),
        ("no_token", "not an hposerve token"),
    ]:
        with pytest.raises(Unauthenticated, match=why):
            tokens.authenticate_token(world.tokens[bad])


def test_expiry_is_checked_on_every_use_even_when_cached(tmp_path: Path) -> None:
    store = IdentityStore.open(data_dir=tmp_path, cache_seconds=60.0)
    try:
        store.directory.ensure_principal("users/u")
        _, secret = store.tokens.issue_token("users/u", ttl=0.3)
        assert store.tokens.authenticate_token(secret).name == "users/u"
        assert store.tokens.cached_token(secret) is not None
        time.sleep(0.4)
        with pytest.raises(Unauthenticated, match="expired"):
            store.tokens.cached_token(secret)
        with pytest.raises(Unauthenticated, match="expired"):
            store.tokens.authenticate_token(secret)
    finally:
        store.close()


def _revocation_reaches_a_second_store(first: IdentityStore, second: IdentityStore) -> None:
    first.directory.ensure_principal("users/u")
    info, secret = first.tokens.issue_token("users/u", ttl=None)
    assert second.tokens.authenticate_token(secret).name == "users/u"  # now cached there
    first.tokens.revoke_token(info.principal, info.token_id)
    with pytest.raises(Unauthenticated):
        first.tokens.authenticate_token(secret)
    deadline = time.monotonic() + 2.0 + 1.0  # the cache's lifetime, and a margin
    while time.monotonic() < deadline:
        try:
            second.tokens.authenticate_token(secret)
        except Unauthenticated:
            return
        time.sleep(0.05)
    pytest.fail("the second store still accepts a revoked token after its cache's lifetime")


def test_a_revocation_reaches_another_store_on_the_same_database(tmp_path: Path) -> None:
    first = IdentityStore.open(data_dir=tmp_path)
    second = IdentityStore.open(data_dir=tmp_path)
    try:
        _revocation_reaches_a_second_store(first, second)
    finally:
        first.close()
        second.close()


def test_two_stores_opening_a_fresh_database_at_once(tmp_path: Path) -> None:
    opened: list[IdentityStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(IdentityStore.open(data_dir=tmp_path))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    opened[0].directory.create_team("t")
    assert [t.team for t in opened[-1].directory.teams(after="", limit=10, only=None)] == ["t"]
    for s in opened:
        s.close()


def test_the_audit_log_appends_and_reads_newest_first(store: IdentityStore) -> None:
    for i in range(5):
        store.audit.append(
            AuditRecord(time.time(), "users/u", "a" if i % 2 else "b", "/m", f"r{i}", "", "OK")
        )
    store.audit.flush()
    records = store.audit.read(namespace=None, before=None, limit=10)
    assert [r.resource for r in records] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.resource for r in store.audit.read(namespace="a", before=None, limit=10)] == [
        "r3",
        "r1",
    ]
    page = store.audit.read(namespace=None, before=records[1].sequence, limit=2)
    assert [r.resource for r in page] == ["r2", "r1"]


def test_the_audit_log_survives_a_close_and_reopen(tmp_path: Path) -> None:
    store = IdentityStore.open(data_dir=tmp_path).start()
    store.audit.append(AuditRecord(time.time(), "users/u", "a", "/m", "r", "id-1", "OK"))
    store.close()
    again = IdentityStore.open(data_dir=tmp_path)
    try:
        [record] = again.audit.read(namespace="a", before=None, limit=10)
        assert (record.principal, record.request_id) == ("users/u", "id-1")
    finally:
        again.close()


def test_directory_rules(store: IdentityStore) -> None:
    d = store.directory
    d.create_team("t")
    with pytest.raises(AlreadyExists):
        d.create_team("t")
    with pytest.raises(NotFound):
        d.add_member("nope", "users/u", Role.VIEWER)
    with pytest.raises(NotFound):  # a service account must be created first
        d.add_member("t", "teams/t/serviceAccounts/ci", Role.EDITOR)
    name = d.create_service_account("t", "ci", role=Role.EDITOR, description="CI")
    assert [(m.principal, m.role) for m in d.members("t")] == [(name, Role.EDITOR)]
    d.add_member("t", name, Role.VIEWER)  # changes the role
    assert d.members("t")[0].role == Role.VIEWER
    d.remove_member("t", name)
    with pytest.raises(NotFound):
        d.remove_member("t", name)


def test_a_retried_issue_returns_the_same_token_with_a_fresh_secret(store: IdentityStore) -> None:
    store.directory.ensure_principal("users/u")
    first, secret1 = store.tokens.issue_token("users/u", ttl=None, request_id="r-1")
    again, secret2 = store.tokens.issue_token("users/u", ttl=None, request_id="r-1")
    assert first.name == again.name and secret1 != secret2
    assert len(store.tokens.tokens("users/u", show_inactive=True)) == 1
    with pytest.raises(Unauthenticated):
        store.tokens.authenticate_token(secret1)
    assert store.tokens.authenticate_token(secret2).name == "users/u"


def test_the_request_memo(store: IdentityStore) -> None:
    assert store.recall("users/u", "r", "CreateTeam") is None
    store.remember("users/u", "r", "CreateTeam", b"first")
    store.remember("users/u", "r", "CreateTeam", b"second")  # a racing retry: dropped
    assert store.recall("users/u", "r", "CreateTeam") == b"first"
    assert store.recall("users/other", "r", "CreateTeam") is None  # per principal


def test_where_the_identity_store_lives(tmp_path: Path) -> None:
    assert identity_url(None, data_dir=tmp_path) == (f"sqlite:///{tmp_path}/identity.db", None)
    assert identity_url("postgresql://u@h/db?hposerve_schema=team_a") == (
        "postgresql+psycopg://u@h/db",
        "team_a",
    )
    assert identity_url(f"journal:///{tmp_path}/x.log")[0] == f"sqlite:///{tmp_path}/identity.db"


@pytest.mark.postgres
def test_on_postgresql_two_replicas_agree() -> None:
    from conftest import POSTGRES_URL

    schema = f"hposerve_auth_{uuid.uuid4().hex[:10]}"
    url = f"{POSTGRES_URL}?hposerve_schema={schema}"
    opened: list[IdentityStore] = []
    threads = [
        threading.Thread(target=lambda: opened.append(IdentityStore.open(url))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first, second = opened
    try:
        _revocation_reaches_a_second_store(first, second)
        first.directory.create_team("t")
        assert second.directory.teams(after="", limit=5, only=None)[0].team == "t"
        first.audit.append(AuditRecord(time.time(), "users/u", "a", "/m", "r", "", "OK"))
        first.audit.flush()
        assert second.audit.read(namespace="a", before=None, limit=5)[0].resource == "r"
    finally:
        first.close()
        second.close()
        engine = sa.create_engine(identity_url(POSTGRES_URL)[0])
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


_KILLED_WRITER = """
import os, signal, sys, time
from hposerve.server.domain._admin import AuditRecord
from hposerve.server.storage._identity import IdentityStore
store = IdentityStore.open(data_dir=sys.argv[1]).start()
for i in range(200):
    store.audit.append(AuditRecord(time.time(), "users/u", "a", "/m", f"r{i}", "", "OK"))
store.audit.flush()
for i in range(200, 300):
    store.audit.append(AuditRecord(time.time(), "users/u", "a", "/m", f"r{i}", "", "OK"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_audit_log_survives_kill_9(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], timeout=60)
    assert done.returncode == -9
    store = IdentityStore.open(data_dir=tmp_path)
    try:
        records = store.audit.read(namespace="a", before=None, limit=1000)
        written = {r.resource for r in records}
        assert {f"r{i}" for i in range(200)} <= written  # all that was flushed, intact
        store.audit.append(AuditRecord(time.time(), "users/u", "a", "/m", "after", "", "OK"))
        store.audit.flush()
        assert store.audit.read(namespace="a", before=None, limit=1)[0].resource == "after"
    finally:
        store.close()
