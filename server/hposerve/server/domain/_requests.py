"""Request ids: a retried request gets the first answer, and changes nothing twice.

One bounded memo serves every idempotent call: a study's asks and enqueues (the trial numbers
they created), a comparison's asks (the member and trial), and deletes. The oldest entries are
dropped past a bound, so a retry must come within the last ``MAX_REMEMBERED_REQUESTS`` of its
kind. Where a first answer is also written to storage (a trial's or study's ``hposerve:request``
attribute), the owner reloads the memo from there, or recalls it, after a restart.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from hposerve.server.domain._config import MAX_REMEMBERED_REQUESTS

__all__ = ["RequestMemo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MISSING = object()


class RequestMemo(Generic[K, V]):
    """Remembers the answers of requests by key (a request id, or a resource and request id).

    Thread-safety: each method is atomic. ``once`` is atomic for one key only when its callers
    serialize on that key (they hold the lock of the resource the request is for), so that the
    work runs once.
    """

    def __init__(self, limit: int = MAX_REMEMBERED_REQUESTS) -> None:
        self._answers: collections.OrderedDict[K, V] = collections.OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._answers

    def get(self, key: K) -> V | None:
        """The remembered answer, or None."""
        with self._lock:
            return self._answers.get(key)

    def remember(self, key: K, answer: V) -> None:
        """Keeps ``answer`` for ``key``, dropping the oldest past the bound."""
        with self._lock:
            self._answers[key] = answer
            while len(self._answers) > self._limit:
                self._answers.popitem(last=False)

    def once(
        self,
        key: K | None,
        work: Callable[[], V],
        *,
        recall: Callable[[], V | None] | None = None,
    ) -> V:
        """The first answer for ``key``: remembered, else recalled, else ``work()`` (remembered).

        A None key (no request id) always runs ``work``. ``recall`` finds an answer that this
        memo does not hold (one written to storage before a restart); None if there is none.
        Exceptions from ``work`` propagate and nothing is remembered.
        """
        if key is None:
            return work()
        with self._lock:
            found = self._answers.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        answer = recall() if recall is not None else None
        if answer is None:
            answer = work()
        self.remember(key, answer)
        return answer
