"""Where a trial call runs: in place on the event loop when it is quick, else on the pool.

A hand-off to a thread costs more than a quick call itself (a report to a study of the
embedded storage), so those run on the loop. The others (sampling with a model, a database
round trip) run on the pool. Asks and suggests of one study take turns anyway (the study's
sampling lock), so they wait for their turn here, on the loop, rather than each on a thread: a
replica's pool then serves the reports and tells while a study's asks queue, and fewer threads
contend for the interpreter with the one ask that is sampling.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

import grpc

from hposerve.server.domain import InvalidArgument, StudyRef, StudyRegistry, TrialRef
from hposerve.server.domain import _names as names
from hposerve.server.domain._config import (
    MAX_BATCH_REPORTS,
    MAX_QUICK_REPORTS,
    MAX_QUICK_SAMPLES,
)
from hposerve.server.domain._consistency import began_at
from hposerve.server.domain._turns import on_hand_over
from hposerve.server.transport._call_threads import CallThreads
from hposerve.v1 import study_service_pb2 as pb

__all__ = ["TrialCalls", "Turns", "report_refs"]

_SAMPLING_METHODS = frozenset({"AskTrials", "SuggestParameter", "TellAndAsk"})


class TrialCalls:
    """Runs the trial calls of a servicer (see the module docstring)."""

    def __init__(self, registry: StudyRegistry, pool: CallThreads) -> None:
        self._registry = registry
        self._pool = pool
        self._samplings = Turns()  # by study

    async def run(
        self,
        servicer: Any,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
    ) -> Any:
        """``method(servicer, request, context)``, in place or on the pool, as one call that
        began when the request arrived (``began_at``)."""
        arrived = time.monotonic()
        if _is_quick(self._registry, method.__name__, request):
            return _began(arrived, method, servicer, request, context)
        loop = asyncio.get_running_loop()
        args = (arrived, method, servicer, request, context)
        if method.__name__ not in _SAMPLING_METHODS:
            return await self._pool.run(_began, *args)
        (study,) = _studies_of(method.__name__, request)  # parsed fine by _is_quick
        async with self._samplings.turn(study) as release:
            # The call may hand its turn over before it ends (``_turns``): the next then starts.
            def hand_over() -> None:
                loop.call_soon_threadsafe(release)

            return await self._pool.run(_began_handing_over, hand_over, *args)


def _began(arrived: float, method: Callable[..., Any], *args: Any) -> Any:
    with began_at(arrived):
        return method(*args)


def _began_handing_over(hand_over: Callable[[], None], *args: Any) -> Any:
    with on_hand_over(hand_over):
        return _began(*args)


class Turns:
    """One asyncio lock per key, kept while anyone holds or waits for it (on the loop only)."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[Callable[[], None]]:
        """Holds ``key``'s turn until the end, or until the function yielded is called."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                lock.release()

        try:
            await lock.acquire()
            try:
                yield release
            finally:
                release()
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _is_quick(registry: StudyRegistry, method: str, request: Any) -> bool:
    """Whether a trial call may run in place on the event loop (see ``TrialCalls``)."""
    if _samples_of(method, request) > MAX_QUICK_SAMPLES:
        return False  # however quick each sample, many of them are not
    if _reports_of(method, request) > MAX_QUICK_REPORTS:
        return False  # likewise for writes
    try:
        refs = _studies_of(method, request)
    except InvalidArgument:
        return True  # answered with the error, without touching anything
    samples = method in _SAMPLING_METHODS
    return all(registry.is_quick(ref, samples=samples) for ref in refs)


def _samples_of(method: str, request: Any) -> int:
    """How many parameters a trial call samples (count × parameters of an ask), about."""
    if method == "TellAndAsk":
        request = request.ask
    elif method != "AskTrials":
        return 1
    return (request.count or 1) * max(len(request.search_space), 1)


def _reports_of(method: str, request: Any) -> int:
    """How many intermediate values a trial call writes."""
    if method == "ReportIntermediateValues":
        return len(request.reports)
    if method in ("TellTrial", "TellAndAsk"):
        tell = request.tell if method == "TellAndAsk" else request
        return len(tell.intermediate_values)
    return 0


def _studies_of(method: str, request: Any) -> list[StudyRef]:
    """The studies a trial call touches: its parent, its trial's, or (heartbeat) its trials'."""
    if method == "AskTrials":
        return [names.study_ref_from_name(request.parent, "parent")]
    if method == "TellAndAsk":  # one study (the servicer refuses two)
        return [names.study_ref_from_name(request.ask.parent, "ask.parent")]
    if method == "Heartbeat":
        return [
            names.trial_ref_from_name(t, f"trials[{i}]").study for i, t in enumerate(request.trials)
        ]
    if method == "ReportIntermediateValues":
        return list({ref.study: None for ref in report_refs(request)})
    return [names.trial_ref_from_name(request.trial).study]


def report_refs(request: pb.ReportIntermediateValuesRequest) -> list[TrialRef]:
    """The trials of a batch of reports, one per report; refused past MAX_BATCH_REPORTS."""
    if len(request.reports) > MAX_BATCH_REPORTS:
        raise InvalidArgument(
            f"{len(request.reports)} reports in one batch, more than the limit "
            f"MAX_BATCH_REPORTS = {MAX_BATCH_REPORTS}; send them in several",
            field="reports",
        )
    return [
        names.trial_ref_from_name(r.trial, f"reports[{i}].trial")
        for i, r in enumerate(request.reports)
    ]
