"""A study's turn to sample, and how an ask hands it to the next before its trial is stored.

Asks of one study take turns (``LiveStudy.sample_lock``; the transport queues them on its event
loop too): a seeded sampler then draws what it would in-process, and each draw sees the trials
asked before it. On a database shared by replicas a trial's create is a round trip, and an ask
that held the turn across it kept its study's asks a round trip apart. A sampler that reads no
trials (``RandomSampler``) needs only its draws in order: its ask hands the turn to the next
once its create has its place in the storage's order of writes (so the order of creates is the
order of draws, and so is that of the trial numbers), and waits for the write after that.

The storage says when a write of this thread has its place (``write_queued``); a storage that
never says so keeps every turn to the end of its ask. The transport gives what lets its next
queued call in (``on_hand_over``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["HandedOver", "Turn", "hand_over_when_queued", "on_hand_over", "write_queued"]

_local = threading.local()


class Turn:
    """A study's sample lock, held from ``with`` until its end or until it is handed over."""

    __slots__ = ("_lock", "_held")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._held = False

    def __enter__(self) -> Turn:
        self._lock.acquire()
        self._held = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def hand_over(self) -> None:
        """Lets the next ask of the study in now (here, and the transport's next call)."""
        if self._release():
            transport = getattr(_local, "transport", None)
            if transport is not None:
                transport()

    def _release(self) -> bool:
        if not self._held:
            return False
        self._held = False
        self._lock.release()
        return True


class HandedOver:
    """The asks of a study (by request id) that handed their turn over and are still storing
    their trial: a retry of one waits for it under the turn, rather than ask anew before the
    first has remembered what it created.

    Thread-safety: thread-safe.
    """

    def __init__(self) -> None:
        self._storing: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def begin(self, request_id: str) -> None:
        """Call under the turn, before handing it over."""
        with self._lock:
            self._storing[request_id] = threading.Event()

    def done(self, request_id: str) -> None:
        """Call once the ask has remembered its trials (or failed)."""
        with self._lock:
            storing = self._storing.pop(request_id, None)
        if storing is not None:
            storing.set()

    def wait_for(self, request_id: str) -> None:
        with self._lock:
            storing = self._storing.get(request_id)
        if storing is not None:
            storing.wait()


@contextlib.contextmanager
def hand_over_when_queued(turn: Turn | None) -> Iterator[None]:
    """Hands ``turn`` over once the next write of this thread has its place (``write_queued``);
    None keeps the turn."""
    _local.queued = turn.hand_over if turn is not None else None
    try:
        yield
    finally:
        _local.queued = None


def write_queued() -> None:
    """Called by a storage once a write of this thread has its place in its order of writes."""
    hand_over = getattr(_local, "queued", None)
    if hand_over is not None:
        _local.queued = None
        hand_over()


@contextlib.contextmanager
def on_hand_over(callback: Callable[[], None]) -> Iterator[None]:
    """Calls ``callback`` if the turn of the call running within is handed over early (the
    transport's call that the next in its queue may start)."""
    _local.transport = callback
    try:
        yield
    finally:
        _local.transport = None
