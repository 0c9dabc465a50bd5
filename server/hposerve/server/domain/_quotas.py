"""Quotas per namespace: studies, running trials, and asks per second (a token bucket).

QuotaLimits come from the server's defaults (``serve`` flags) laid under what an operator set for
a namespace (kept in the identity store, so that replicas agree; read again every
``limits_seconds``). A call that would exceed one raises ``ResourceExhausted`` naming the
quota and when to retry, before anything is done.

What is exact and what is not:

* studies: counted in the storage at every create (creates are rare).
* running trials: counted in the storage at most every ``running_seconds`` (0.5 s); the asks
  admitted since are added, so one replica never admits past the limit, and replicas together
  by at most what the others admitted in that window.
* asks per second: a token bucket per namespace and replica, one second deep. The hammering
  namespace is refused at the cost of a dictionary lookup, which is what keeps it from
  starving the others (see ``hposerve.lab._bench_fairness``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Protocol

from optuna.storages import BaseStorage
from optuna.trial import TrialState

from hposerve.server.domain._exceptions import InvalidArgument, ResourceExhausted
from hposerve.server.domain._names import StudyRef

__all__ = ["QUOTAS", "QuotaLimits", "QuotaOverride", "Quotas", "StorageUsage", "Usage"]

QUOTAS = ("studies", "running_trials", "asks_per_second")
# Retry delays of the quotas that no clock refills: a study or a trial must end first.
_STUDIES_RETRY = 60.0
_RUNNING_RETRY = 1.0


@dataclasses.dataclass(frozen=True)
class QuotaLimits:
    """A namespace's limits; 0 is no limit."""

    studies: int = 0
    running_trials: int = 0
    asks_per_second: float = 0.0

    def __post_init__(self) -> None:
        for quota in QUOTAS:
            value = getattr(self, quota)
            if not value >= 0 or value == float("inf"):
                raise InvalidArgument(f"{quota} must be 0 (no limit) or positive", field=quota)

    @property
    def limited(self) -> bool:
        """Whether any quota is set."""
        return any(getattr(self, q) for q in QUOTAS)


@dataclasses.dataclass(frozen=True)
class QuotaOverride:
    """What an operator set for one namespace; None takes the server's default."""

    studies: int | None = None
    running_trials: int | None = None
    asks_per_second: float | None = None

    def over(self, defaults: QuotaLimits) -> QuotaLimits:
        """The limits in effect: these values where set, ``defaults`` elsewhere."""
        return QuotaLimits(
            **{
                q: getattr(defaults, q) if getattr(self, q) is None else getattr(self, q)
                for q in QUOTAS
            }
        )


class Usage(Protocol):
    """What the quotas count."""

    def studies(self, namespace: str) -> int: ...

    def running_trials(self, namespace: str) -> int: ...

    def has_study(self, ref: StudyRef) -> bool: ...


class StorageUsage:
    """Counts in an Optuna storage (every replica's view of the same data)."""

    def __init__(self, storage: BaseStorage) -> None:
        self._storage = storage

    def _names(self, namespace: str) -> list[str]:
        prefix = namespace + "/"
        return [
            s.study_name for s in self._storage.get_all_studies() if s.study_name.startswith(prefix)
        ]

    def studies(self, namespace: str) -> int:
        return len(self._names(namespace))

    def running_trials(self, namespace: str) -> int:
        total = 0
        for name in self._names(namespace):
            try:
                study_id = self._storage.get_study_id_from_name(name)
                running = self._storage.get_all_trials(
                    study_id, deepcopy=False, states=(TrialState.RUNNING,)
                )
            except KeyError:
                continue  # deleted meanwhile
            total += len(running)
        return total

    def has_study(self, ref: StudyRef) -> bool:
        try:
            self._storage.get_study_id_from_name(ref.optuna_name)
        except KeyError:
            return False
        return True


@dataclasses.dataclass
class _Namespace:
    """One namespace's state on this replica."""

    limits: QuotaLimits
    limits_at: float
    tokens: float = 0.0
    tokens_at: float = 0.0
    running: int = 0  # as last counted
    running_at: float = float("-inf")
    admitted: int = 0  # asks admitted since


class Quotas:
    """Admits or refuses the calls that a namespace's quotas bound.

    Thread-safety: every method may be called from any thread. ``needs_io`` says whether an
    ``admit_*`` call would read the storage or the identity store (the transport then makes it
    on a thread, not on its event loop).

    Args:
        defaults: The server's limits for every namespace.
        usage: Where studies and running trials are counted.
        overrides: A namespace's override, or None (read at most every ``limits_seconds``).
    """

    def __init__(
        self,
        defaults: QuotaLimits,
        usage: Usage,
        overrides: Callable[[str], QuotaOverride | None] | None = None,
        *,
        limits_seconds: float = 2.0,
        running_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.defaults = defaults
        self._usage = usage
        self._overrides = overrides
        self._limits_seconds = limits_seconds
        self._running_seconds = running_seconds
        self._clock = clock
        self._namespaces: dict[str, _Namespace] = {}
        self._lock = threading.Lock()

    def limits(self, namespace: str) -> QuotaLimits:
        """The limits in effect for ``namespace``."""
        return self._state(namespace).limits

    def forget(self, namespace: str) -> None:
        """Reads ``namespace``'s override again at the next call (it was just set here)."""
        with self._lock:
            self._namespaces.pop(namespace, None)

    def needs_io(self, namespace: str) -> bool:
        """Whether admitting an ask in ``namespace`` now would read a database."""
        now = self._clock()
        state = self._namespaces.get(namespace)
        if state is None or now - state.limits_at > self._limits_seconds:
            return self._overrides is not None
        return bool(state.limits.running_trials) and now - state.running_at > self._running_seconds

    def admit_studies(
        self, namespace: str, count: int = 1, *, loading: StudyRef | None = None
    ) -> None:
        """Raises ResourceExhausted if creating ``count`` studies would exceed the studies
        quota (loading study ``loading``, which exists, creates nothing)."""
        limit = self._state(namespace).limits.studies
        if not limit or self._usage.studies(namespace) + count <= limit:
            return
        if loading is not None and self._usage.has_study(loading):
            return
        raise ResourceExhausted(
            f"namespaces/{namespace} is at its quota of {limit} studies: delete some, or "
            "ask an operator for more",
            quota="studies",
            retry_after=_STUDIES_RETRY,
        )

    def admit_asks(self, namespace: str, count: int = 1) -> None:
        """Takes ``count`` asks from the namespace's rate and running-trials quotas, or raises
        ResourceExhausted and takes nothing."""
        state = self._state(namespace)
        limits = state.limits
        if limits.running_trials:
            self._count_running(namespace, state)
        now = self._clock()
        with self._lock:
            if (
                limits.running_trials
                and state.running + state.admitted + count > limits.running_trials
            ):
                raise ResourceExhausted(
                    f"namespaces/{namespace} is at its quota of {limits.running_trials} "
                    "running trials: tell some first",
                    quota="running_trials",
                    retry_after=_RUNNING_RETRY,
                )
            rate = limits.asks_per_second
            if rate:
                depth = max(rate, 1.0)  # one second's worth, and at least one ask
                state.tokens = min(depth, state.tokens + (now - state.tokens_at) * rate)
                state.tokens_at = now
                needed = min(float(count), depth)
                if state.tokens < needed:
                    raise ResourceExhausted(
                        f"namespaces/{namespace} is over its quota of {rate:g} asks per second",
                        quota="asks_per_second",
                        retry_after=(needed - state.tokens) / rate,
                    )
                state.tokens -= count
            state.admitted += count

    def _count_running(self, namespace: str, state: _Namespace) -> None:
        if self._clock() - state.running_at <= self._running_seconds:
            return
        counted = self._usage.running_trials(namespace)  # outside the lock: it reads storage
        with self._lock:
            state.running, state.admitted, state.running_at = counted, 0, self._clock()

    def _state(self, namespace: str) -> _Namespace:
        now = self._clock()
        state = self._namespaces.get(namespace)
        if state is not None and now - state.limits_at <= self._limits_seconds:
            return state
        override = self._overrides(namespace) if self._overrides is not None else None
        limits = override.over(self.defaults) if override is not None else self.defaults
        with self._lock:
            state = self._namespaces.get(namespace)
            if state is None:
                depth = max(limits.asks_per_second, 1.0)
                state = self._namespaces[namespace] = _Namespace(limits, now, depth, now)
            state.limits, state.limits_at = limits, now
            return state
