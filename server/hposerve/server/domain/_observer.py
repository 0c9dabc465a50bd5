"""What the domain tells an observer (metrics): the hook, and the registry that calls it.

The domain imports no metrics library: ``Observer`` is the contract, the transport's
``_metrics.Metrics`` implements it. ``ObservedRegistry`` is a ``StudyRegistry`` that reports
every ask, define-by-run suggest, tell and lease expiry to an observer, with the sampler that
did the work, so that counts are those of the domain whichever way a call arrived (a unary
RPC, a session message, a comparison's ask).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage

from hposerve.server.domain._config import RETRIES_ATTR
from hposerve.server.domain._live_study import TrialRecord
from hposerve.server.domain._names import StudyRef, TrialRef
from hposerve.server.domain._sampling import SamplingProcesses
from hposerve.server.domain._studies import StudyRegistry

__all__ = ["ObservedRegistry", "Observer"]


class Observer(Protocol):
    """Receives what the domain did. Called from any thread, after the work; must not raise
    and must be quick (it runs on the call's path)."""

    def sampled(self, sampler: str, call: str, trials: int, seconds: float) -> None:
        """``call`` ("ask" or "suggest") of a study using ``sampler`` started ``trials`` trials
        (0 for a suggest) in ``seconds`` of sampling."""

    def told(self, sampler: str, state: str) -> None:
        """A trial of a study using ``sampler`` finished in ``state`` (COMPLETE, PRUNED, FAIL)."""

    def retried(self, trials: int) -> None:
        """``trials`` trials were handed out again after their lease expired."""

    def expired(self, trials: int) -> None:
        """``trials`` leases expired (their trials failed)."""


class ObservedRegistry(StudyRegistry):
    """A ``StudyRegistry`` that reports its asks, suggests, tells and expiries to ``observer``.

    Thread-safety: as ``StudyRegistry``; the observer is called without any lock held.
    """

    def __init__(
        self, storage: BaseStorage, observer: Observer, *, sampling: SamplingProcesses | None = None
    ) -> None:
        super().__init__(storage, sampling=sampling)
        self._observer = observer

    def _sampler(self, ref: StudyRef) -> str:
        live = self._catalog.loaded(ref)
        if live is None:
            return "unknown"
        return live.config.sampler.WhichOneof("kind") or "default"

    # Keyword arguments are passed on as they are: the facade's own signatures stay the truth.
    def ask(self, ref: StudyRef, **kwargs: Any) -> list[TrialRecord]:
        started = time.perf_counter()
        records = super().ask(ref, **kwargs)
        self._observer.sampled(self._sampler(ref), "ask", len(records), _since(started))
        retried = sum(1 for r in records if r.trial.system_attrs.get(RETRIES_ATTR))
        if retried:
            self._observer.retried(retried)
        return records

    def suggest(self, ref: TrialRef, name: str, distribution: BaseDistribution) -> Any:
        started = time.perf_counter()
        value = super().suggest(ref, name, distribution)
        self._observer.sampled(self._sampler(ref.study), "suggest", 0, _since(started))
        return value

    def tell(self, ref: TrialRef, **kwargs: Any) -> TrialRecord:
        record = super().tell(ref, **kwargs)
        self._observer.told(self._sampler(ref.study), record.trial.state.name)
        return record

    def reap_expired(self, now: float | None = None) -> list[TrialRef]:
        reaped = super().reap_expired(now)
        if reaped:
            self._observer.expired(len(reaped))
        return reaped

    def running_trials(self) -> int:
        """Trials running under a lease this server watches (in the studies it has loaded)."""
        return sum(len(live.leases) for live in self._catalog.live_studies())


def _since(started: float) -> float:
    return time.perf_counter() - started
