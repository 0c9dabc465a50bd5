"""Fixtures: real servers with metrics and the dashboard on, with and without auth.

With auth, the company is two teams: ``a`` owns namespace ``a`` (``a_editor``, ``a_viewer``),
``b`` owns namespace ``b`` (``b_editor``); ``tokens`` holds a secret per key.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hposerve.server.domain._access import Role
from hposerve.server.transport._server import Server, make_server

MEMBERS = {
    "a_editor": ("users/alice", "a", Role.EDITOR),
    "a_viewer": ("users/val", "a", Role.VIEWER),
    "b_editor": ("users/bob", "b", Role.EDITOR),
}


@dataclasses.dataclass
class Running:
    """A started server and what a test needs of it."""

    server: Server
    tokens: dict[str, str]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def metrics_url(self) -> str:
        assert self.server.observability is not None
        return f"http://127.0.0.1:{self.server.observability.metrics_port}/metrics"

    @property
    def dashboard_url(self) -> str:
        assert self.server.observability is not None
        return f"http://127.0.0.1:{self.server.observability.dashboard_port}"

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics``: (name, sorted labels) -> value."""
        text = urllib.request.urlopen(self.metrics_url, timeout=10).read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    """One sample's value; 0 when it was never recorded."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _start(tmp_path: Path, **kwargs: Any) -> Server:
    return make_server(
        "127.0.0.1:0",
        data_dir=tmp_path / "data",
        metrics_port=0,
        dashboard_port=0,
        reap_interval=0.05,
        health_interval=0.1,
        **kwargs,
    ).start()


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[Running]:
    server = _start(tmp_path)
    yield Running(server, {})
    server.stop(grace=1)


@pytest.fixture
def observed_auth(tmp_path: Path) -> Iterator[Running]:
    server = _start(tmp_path, auth=True)
    store = server.identity
    assert store is not None
    tokens = {}
    for team in ("a", "b"):
        store.directory.create_team(team)
        store.directory.create_namespace(team, team)
    for key, (name, team, role) in MEMBERS.items():
        store.directory.ensure_principal(name)
        store.directory.add_member(team, name, role)
        tokens[key] = store.tokens.issue_token(name, ttl=None)[1]
    yield Running(server, tokens)
    server.stop(grace=1)


def screenshot_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
