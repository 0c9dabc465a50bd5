"""The ``backend`` fixture: every case in this package runs once per backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hposerve.server.domain import StudyRegistry

from ._domain import DomainBackend
from ._grpc import GrpcBackend
from .backends import Backend, Trial
from .cases import X, random_sampler


def new_registry(storage: Any) -> StudyRegistry:
    """The domain backend's registry. It starts no reaper: the suite reaps (``Backend.reap``)."""
    return StudyRegistry(storage)


@pytest.fixture(params=["domain", "grpc"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    data_dir = tmp_path / "data"
    made: Backend
    if request.param == "domain":
        made = DomainBackend(data_dir, registry=new_registry)
    else:
        made = GrpcBackend(data_dir)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def name() -> str:
    """A fresh study id."""
    return f"study-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def study(backend: Backend, name: str) -> str:
    """A single-objective random-sampler study with one complete trial (parameter ``x``)."""
    backend.create_study(name, sampler=random_sampler(0))
    (done,) = backend.ask(name, X)
    backend.tell(name, done.number, "complete", [0.5])
    return name


@pytest.fixture
def running(backend: Backend, study: str) -> Trial:
    """A running trial of ``study`` that has parameter ``x`` and one intermediate value."""
    (trial,) = backend.ask(study, X)
    backend.report(study, trial.number, step=0, value=1.0)
    return backend.get_trial(study, trial.number)


@pytest.fixture
def two_objective(backend: Backend, name: str) -> str:
    """A study minimizing one objective and maximizing another."""
    mo = f"{name}-mo"
    backend.create_study(mo, directions=["minimize", "maximize"], sampler=random_sampler(0))
    return mo
