"""Fixtures: an identity store with a small company in it, and a real authenticated server.

The company: teams ``a`` (owns namespace ``a``), ``b`` (owns ``b``), ``s1`` and ``s2`` (own
nothing; study ``a/own`` is shared with ``s1`` as VIEWER and with ``s2`` as EDITOR).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from hposerve.server.domain import ComparisonRegistry, StudyRegistry
from hposerve.server.domain._access import Role, Scope
from hposerve.server.domain._admin import AdminOps
from hposerve.server.domain._names import StudyRef
from hposerve.server.storage import close_storage, open_storage
from hposerve.server.storage._identity import IdentityStore
from hposerve.server.transport._access_rules import RULES, Rule
from hposerve.server.transport._admin_servicer import AdminServicer
from hposerve.server.transport._auth import AuthInterceptor
from hposerve.server.transport._call_threads import CallThreads
from hposerve.server.transport._comparison_servicer import ComparisonServicer
from hposerve.server.transport._study_servicer import StudyServicer
from hposerve.v1 import (
    admin_service_pb2_grpc,
    comparison_service_pb2_grpc,
    study_service_pb2,
    study_service_pb2_grpc,
)

# Principal key -> (name, memberships)
MEMBERS: dict[str, tuple[str, dict[str, Role]]] = {
    "viewer": ("users/viewer", {"a": Role.VIEWER}),
    "editor": ("users/editor", {"a": Role.EDITOR}),
    "admin": ("users/admin-a", {"a": Role.ADMIN}),
    "other_team": ("users/bob", {"b": Role.EDITOR}),
    "shared_viewer": ("users/sv", {"s1": Role.EDITOR}),  # share is VIEWER: it caps the role
    "shared_editor": ("users/se", {"s2": Role.EDITOR}),
    "operator": ("users/root", {}),
}
OWN = StudyRef("a", "own")


@dataclasses.dataclass
class World:
    """The store and a secret per principal key (plus the bad ones)."""

    store: IdentityStore
    tokens: dict[str, str]


def populate(store: IdentityStore, *, link_ttl: float = 3600.0) -> World:
    d = store.directory
    for team in ("a", "b", "s1", "s2"):
        d.create_team(team)
    d.create_namespace("a", "a")
    d.create_namespace("b", "b")
    d.share(OWN, "s1", Role.VIEWER)
    d.share(OWN, "s2", Role.EDITOR)
    tokens: dict[str, str] = {}
    for key, (name, teams) in MEMBERS.items():
        d.ensure_principal(name, operator=key == "operator")
        for team, role in teams.items():
            d.add_member(team, name, role)
        tokens[key] = store.tokens.issue_token(name, ttl=None)[1]
    for key, role in (("link_viewer", Role.VIEWER), ("link_editor", Role.EDITOR)):
        tokens[key] = store.tokens.issue_share_token(Scope("a", "own", role), ttl=link_ttl)[1]
    revoked, secret = store.tokens.issue_token("users/editor", ttl=None)
    store.tokens.revoke_token(revoked.principal, revoked.token_id)
    tokens["revoked"] = secret
    tokens["expired_share"] = store.tokens.issue_share_token(
        Scope("a", "own", Role.EDITOR), ttl=0.001
    )[1]
    tokens["bad_token"] = "hps_" + "x" * 43
    tokens["no_token"] = ""
    return World(store, tokens)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IdentityStore]:
    # No cache: the tests that need one make their own store.
    opened = IdentityStore.open(data_dir=tmp_path / "data", cache_seconds=0.0).start()
    yield opened
    opened.close()


@pytest.fixture
def world(store: IdentityStore) -> World:
    return populate(store)


class AuthServer:
    """A grpc.aio server with the auth interceptor, on a loop thread of its own."""

    def __init__(
        self,
        store: IdentityStore,
        data_dir: Path,
        rules: dict[str, Rule] | None = None,
        *,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self._credentials = credentials
        self.storage = open_storage(None, data_dir=data_dir)
        self.registry = StudyRegistry(self.storage)
        self.pool = CallThreads(8, "test-auth").start()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.study_servicer = StudyServicer(self.registry, pool=self.pool, max_sessions=16)
        interceptor = AuthInterceptor(
            store,
            rules=rules if rules is not None else RULES,
            trust_certificates=credentials is not None,
        )
        self.server, self.port = self._run(self._build(interceptor, store))

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def _build(
        self, interceptor: AuthInterceptor, store: IdentityStore
    ) -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(migration_thread_pool=self.pool, interceptors=[interceptor])
        study_service_pb2_grpc.add_StudyServiceServicer_to_server(self.study_servicer, server)
        comparison_service_pb2_grpc.add_ComparisonServiceServicer_to_server(
            ComparisonServicer(ComparisonRegistry(self.registry)), server
        )
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(AdminOps(store)), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        if self._credentials is not None:
            port = server.add_secure_port("127.0.0.1:0", self._credentials)
        else:
            port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    def stop(self) -> None:
        self.study_servicer.close_sessions()
        self._run(self.server.stop(0.5))
        self.pool.shutdown(wait=True)  # plain handlers may still be ending a refused call
        self._run(asyncio.sleep(0.05))  # and their answers reaching the loop
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
        close_storage(self.storage)


@pytest.fixture
def auth_server(world: World, tmp_path: Path) -> Iterator[AuthServer]:
    server = AuthServer(world.store, tmp_path / "studies")
    yield server
    server.stop()


@pytest.fixture
def channel(auth_server: AuthServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{auth_server.port}") as opened:
        yield opened


def metadata(secret: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {secret}")] if secret else []


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def create_study(channel: grpc.Channel, secret: str, namespace: str, study: str) -> None:
    study_service_pb2_grpc.StudyServiceStub(channel).CreateStudy(
        study_service_pb2.CreateStudyRequest(parent=f"namespaces/{namespace}", study_id=study),
        metadata=metadata(secret),
    )
