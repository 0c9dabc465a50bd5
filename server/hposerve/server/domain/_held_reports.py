"""A tell's carried reports written with its outcome, as one write.

A tell that carries a trial's reports records each (Optuna's ``Trial.report``), then the
outcome: on a storage shared by replicas each write is an append to the database and a sync
after it. Within ``reports_with_outcome``, a storage may hold the calling thread's reports
(``held_reports``) and send them in the same append as the thread's next write, the outcome;
until then the thread's own reads of the trial must show them (Optuna's tell reads the trial:
a PRUNED trial takes its last report as its value). Reports still held when the block ends
were not acknowledged (the tell failed before it wrote its outcome) and are dropped with it.
A storage that never holds them (the embedded journal) writes each at once, as before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["held_reports", "reports_with_outcome"]

_local = threading.local()


@contextlib.contextmanager
def reports_with_outcome() -> Iterator[None]:
    """Lets a storage hold this thread's reports until its next write (module docstring)."""
    _local.held = []
    try:
        yield
    finally:
        _local.held = None


def held_reports() -> list[dict[str, Any]] | None:
    """The list of the logs a storage holds for this thread, to which it adds the reports it
    holds; None outside ``reports_with_outcome`` (write them at once)."""
    held: list[dict[str, Any]] | None = getattr(_local, "held", None)
    return held
