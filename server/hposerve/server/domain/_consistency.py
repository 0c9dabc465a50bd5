"""What a call sees: every write acknowledged before it began, and no query more than that needs.

A storage shared by replicas (the PostgreSQL journal) would otherwise re-read the database
before every one of the several storage reads one call makes. The registry marks each of its
calls with the moment it began (``each_call_sees_earlier_writes``); a storage may then answer
a read from what it already holds when it last looked after that moment (``call_started``).
That is what linearizability per call asks: a call sees everything acknowledged before it
began, and its own writes (which go to the database and bring back what came before them).
A read outside any call (a tool, a test, another thread of the storage's own) gets None and
looks every time.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["began_at", "call_started", "each_call_sees_earlier_writes", "one_call"]

C = TypeVar("C", bound=type)

_local = threading.local()


def call_started() -> float | None:
    """When (``time.monotonic()``) the registry call running on this thread began, or None."""
    started: float | None = getattr(_local, "started", None)
    return started


@contextlib.contextmanager
def began_at(moment: float) -> Iterator[None]:
    """Runs what follows as one call that began at ``moment`` (``time.monotonic()``).

    The transport gives the moment a request arrived: a call that then waits (for its study's
    turn to sample, for a thread) may answer from rows fetched while it waited. It still sees
    every write acknowledged before it began; one acknowledged while it waited is concurrent
    with it, and may or may not be seen, as linearizability allows.
    """
    outer = getattr(_local, "started", None)
    _local.started = moment
    try:
        yield
    finally:
        _local.started = outer


def one_call(method: Callable[..., Any]) -> Callable[..., Any]:
    """Marks ``method`` as one call: its reads see what was written before it began."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "started", None) is not None:
            return method(*args, **kwargs)  # a call within a call: the outer one's moment
        _local.started = time.monotonic()
        try:
            return method(*args, **kwargs)
        finally:
            _local.started = None

    return call


def each_call_sees_earlier_writes(cls: C) -> C:
    """Marks every public method of ``cls`` as one call (see the module docstring)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, one_call(member))
    return cls
