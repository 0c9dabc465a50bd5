"""The live objects of the resources in use (live studies, live comparisons), loaded once.

A resource in use keeps one live object in memory (a study's ``optuna.Study`` with its
sampler's state, a comparison's plan), so a call does not reload anything. Loading takes a
lock per resource: two calls on one unloaded study load it once, and a slow load holds up only
that study.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LiveCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LiveCache(Generic[K, V]):
    """Live objects by key, each loaded once.

    Thread-safety: every method may be called from any thread. A hit takes no lock; a load
    holds a lock of its key only, and a ``forget`` of that key waits for it.
    """

    def __init__(self) -> None:
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()  # guards the two tables, held for dict operations only
        self._gates: dict[K, threading.Lock] = {}  # the keys being loaded or forgotten

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The live object of ``key``, loaded by ``load()`` if there is none.

        Raises what ``load`` raises (nothing is kept then).
        """
        item = self._items.get(key)
        if item is not None:
            return item
        gate = self._gate(key)
        with gate:
            try:
                item = self._items.get(key)
                if item is None:
                    item = load()
                    with self._lock:
                        self._items[key] = item
                return item
            finally:
                self._drop_gate(key, gate)

    def peek(self, key: K) -> V | None:
        """The live object of ``key`` if it is loaded, without loading it."""
        return self._items.get(key)

    def values(self) -> list[V]:
        """The live objects loaded now."""
        with self._lock:
            return list(self._items.values())

    def forget(self, key: K, item: V | None = None) -> None:
        """Drops the live object of ``key`` (only if it is ``item``, when given)."""
        gate = self._gate(key)
        with gate:
            try:
                with self._lock:
                    if item is None or self._items.get(key) is item:
                        self._items.pop(key, None)
            finally:
                self._drop_gate(key, gate)

    def _gate(self, key: K) -> threading.Lock:
        with self._lock:
            return self._gates.setdefault(key, threading.Lock())

    def _drop_gate(self, key: K, gate: threading.Lock) -> None:
        # Dropped once used, so that names that were never loaded (a typo, a NotFound) leave
        # nothing behind; a caller already waiting on it finds the item and returns.
        with self._lock:
            if self._gates.get(key) is gate:
                del self._gates[key]
