"""What a replica last fetched from the PostgreSQL journal, and which calls that answers.

Every fetch (a read, or the rows an append brings back) holds every log committed before it
was sent. A registry call must see what was committed before it began (``_consistency``): a
read in it needs no query when a fetch sent after it began holds the rows, and a read from the
replay needs no sync when the replay has read as far as such a fetch reached.
"""

from __future__ import annotations

import bisect
import math
import threading
from typing import NamedTuple

__all__ = ["PAGE", "Fetched", "Row", "Tail"]

# Logs per read query: bounds the memory a replay from log 0 needs at once.
PAGE = 10_000
# Fetches remembered for ``Fetched.holds`` (a replay further behind than that syncs).
MARKS = 256
Row = tuple[int, str]


class Tail(NamedTuple):
    """Rows fetched from log ``start`` on, by a fetch sent at ``fetched_at``."""

    start: int
    rows: list[Row]
    fetched_at: float

    @property
    def end(self) -> int:
        return self.start + len(self.rows)

    def rows_from(self, start: int, started: float | None) -> list[Row] | None:
        """The rows from log ``start`` on, if they hold every log committed before ``started``
        (a call's beginning), else None."""
        if not self.holds(started) or not self.start <= start <= self.end:
            return None
        return self.rows[start - self.start :]

    def merged(self, other: Tail) -> Tail:
        """What two fetches hold together. Reads and appends travel on two connections and
        finish in any order: the rows that reach furthest (an append's reach its own logs,
        which its writer must replay), with the later of the two moments. Both read prefixes
        of one log, and each holds every log committed before it was sent, so the longer holds
        them for both."""
        longer = other if (other.end, -other.start) >= (self.end, -self.start) else self
        return longer._replace(fetched_at=max(self.fetched_at, other.fetched_at))

    def holds(self, started: float | None) -> bool:
        """Whether the rows hold every log committed before ``started`` (a call's beginning):
        the fetch was sent after it, and was not a full page (there may be more after one)."""
        return started is not None and self.fetched_at >= started and len(self.rows) < PAGE


class Fetched:
    """The tail of all fetches so far, and where it stood after each recent one.

    Thread-safety: ``keep`` from any thread; ``tail`` and ``holds`` without a lock (the tail
    is replaced whole, the marks appended to or replaced whole).
    """

    def __init__(self) -> None:
        self.tail = Tail(0, [], -math.inf)
        self._lock = threading.Lock()
        # (end, fetched_at) of the tail after each fetch that holds what was committed before
        # it was sent; both only grow.
        self._marks: list[tuple[int, float]] = []

    def keep(self, fetch: Tail) -> None:
        with self._lock:
            tail = self.tail = self.tail.merged(fetch)
            if len(tail.rows) < PAGE:  # a full page may have more after it
                marks = self._marks
                if len(marks) >= 2 * MARKS:
                    marks = self._marks = marks[-MARKS:]
                marks.append((tail.end, tail.fetched_at))

    def holds(self, replayed: int, started: float | None) -> bool:
        """Whether a replay that has read the logs before ``replayed`` holds every log committed
        before ``started`` (a call's beginning): a fetch sent after it reached no further.

        Not only the last fetch: under load the replay is always a little behind it (the
        writes whose appends brought the last rows wait for the storage's lock to apply them),
        while an earlier fetch, also sent after the call began, is applied already.
        """
        marks = self._marks
        i = bisect.bisect_right(marks, replayed, key=_end) - 1
        return started is not None and i >= 0 and marks[i][1] >= started


def _end(mark: tuple[int, float]) -> int:
    return mark[0]
