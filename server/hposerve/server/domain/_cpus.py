"""The CPUs a server runs on (``hposerve serve --cpus``).

A server is one Python process whose threads (the event loop, the call threads, gRPC's own)
hand the interpreter to one another thousands of times a second: every call that crosses to a
thread, every write that releases the GIL while another thread waits for it. When those
threads run on different CPUs, each hand-off wakes a thread on the other core, which then
waits for the GIL and finds its caches cold. Confined to one CPU the hand-offs stay on one
core, and the same work costs less CPU (BENCHMARKS.md, "One CPU per server"): one replica on
PostgreSQL, whose calls all cross to threads, served 1.6-2.1 times the trials a second. The
interpreter runs one thread at a time anyway, so a process gives up little by it, save where
it fits models itself (numpy beside the event loop); what wants more cores runs in processes
of its own (sampling processes, more replicas), and those keep the CPUs the server was given
before (``unpin_child``).

So on a machine of several servers give each its own CPU (``--cpus 0``, ``--cpus 1``...). In a
container, the CPUs are what its cpuset allows (Kubernetes' static CPU manager gives a pod
whole CPUs of its own, and then a server has nothing to gain from the flag).
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["allowed_cpus", "parse_cpus", "pin", "unpin_child"]

# The CPUs a server had before ``pin``, for the processes it starts (sampling processes).
_BEFORE = "HPOSERVE_CPUS_BEFORE_PIN"


def parse_cpus(text: str) -> frozenset[int]:
    """CPU numbers as ``taskset -c`` writes them: ``"0"``, ``"0-3"``, ``"0,2,4-5"``.

    Raises:
        ValueError: Not such a list, or empty.
    """
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not (first.isdigit() and (not dash or last.isdigit())):
            raise ValueError(
                f"CPUs {text!r}: {part.strip()!r} is neither a CPU number nor a range like 0-3"
            )
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(f"CPUs {text!r}: the range {part.strip()!r} is backwards")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def allowed_cpus() -> frozenset[int]:
    """The CPUs this process may run on (its affinity, as its cpuset and ``taskset`` left it);
    none where the platform has no CPU affinity (nothing can be pinned there)."""
    if not hasattr(os, "sched_getaffinity"):
        return frozenset()
    return frozenset(os.sched_getaffinity(0))


def pin(cpus: frozenset[int]) -> None:
    """Confines every thread of this process, and those it starts, to ``cpus``.

    Raises:
        ValueError: A CPU this process may not run on, or the platform has no CPU affinity.
    """
    allowed = allowed_cpus()
    if not allowed:
        raise ValueError("--cpus needs CPU affinity, which this platform does not offer")
    if not cpus <= allowed:
        raise ValueError(
            f"CPU {min(cpus - allowed)} is not among those this process may run on: "
            f"{_format(allowed)}"
        )
    os.environ.setdefault(_BEFORE, _format(allowed))
    # Threads that exist already (gRPC starts some on import) are set one by one; the
    # threads started later inherit their creator's.
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(int(task), cpus)


def unpin_child() -> None:
    """In a process a pinned server started: back to the CPUs the server had before ``pin``."""
    before = os.environ.get(_BEFORE)
    if before and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, parse_cpus(before))


def _format(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
