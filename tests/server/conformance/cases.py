"""What the cases share: the usual spaces and samplers, and ``refused`` (the suite's expect)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hposerve.v1 import specs_pb2

from .backends import BackendError

X = {"x": FloatDistribution(0.0, 1.0)}
SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "layers": IntDistribution(1, 8),
    "schedule": CategoricalDistribution(["cosine", "step", "warmup_cosine"]),
}


def random_sampler(seed: int | None = 0) -> specs_pb2.SamplerSpec:
    inner = specs_pb2.RandomSampler() if seed is None else specs_pb2.RandomSampler(seed=seed)
    return specs_pb2.SamplerSpec(random=inner)


def refused(code: str, call: Callable[[], Any], *needles: str) -> BackendError:
    """Calls ``call``, expects status ``code`` with every needle in the message."""
    with pytest.raises(BackendError) as exc:
        call()
    error = exc.value
    assert error.code == code, error
    for needle in needles:
        assert needle in error.message, f"{needle!r} not in {error.message!r}"
    return error


def wait_for(predicate: Callable[[], Any], *, timeout: float = 5.0, what: str = "") -> Any:
    """Polls ``predicate`` until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)
