"""Lease expiry: failing the trials whose trainers stopped renewing them, and the reaper thread.

``LeaseExpiry.reap_expired`` fails every trial whose lease has expired and, if its study asks
for it, enqueues its parameters again (up to ``max_retries`` times). ``LeaseReaper`` calls it
every few seconds on a thread of its own, between ``start()`` and ``stop()``; the server owns
one. Before the first reap, the studies with running trials are loaded: after a restart
nothing else may touch a study whose trainers died, and its leases must still be watched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from hposerve.server.domain._config import (
    EXPIRED_ATTR,
    LEASE_ATTR,
    RETRIES_ATTR,
    RETRY_OF_ATTR,
)
from hposerve.server.domain._live_study import LiveStudy
from hposerve.server.domain._names import TrialRef

__all__ = ["LeaseExpiry", "LeaseReaper"]

_logger = logging.getLogger(__name__)

# How often a sole writer scans its studies for running trials it holds no lease of.
SAFETY_SCAN_SECONDS = 60.0


class LeaseExpiry:
    """Fails the trials of the live studies whose leases expired.

    Thread-safety: ``reap_expired`` may be called from any thread; it takes each study's
    ``lock`` for one trial at a time (and ``sample_lock`` to enqueue a retry).
    """

    def __init__(
        self,
        live_studies: Callable[[], list[LiveStudy]],
        load_running: Callable[[], None],
        *,
        exclusive: bool,
        scan_interval: float = SAFETY_SCAN_SECONDS,
    ) -> None:
        self._live_studies = live_studies
        self._load_running = load_running
        self._exclusive = exclusive
        self._scan_interval = scan_interval
        self._next_scan = 0.0
        self._loaded = False
        self._load_lock = threading.Lock()

    def reap_expired(self, now: float | None = None) -> list[TrialRef]:
        """Fails the trials whose lease expired by ``now`` (default: now); returns them."""
        now = time.time() if now is None else now
        self._load_running_once()  # so that a trial from before a restart is not missed
        reaped = []
        # A sole writer leased every running trial it made, so it scans for others only now
        # and then, as a safety net; replicas adopt each other's trials at every reap.
        scan = not self._exclusive or time.monotonic() >= self._next_scan
        if scan:
            self._next_scan = time.monotonic() + self._scan_interval
        for live in self._live_studies():
            if scan:
                _adopt_running(live, warn=self._exclusive)
            expired = [n for n, lease in list(live.leases.items()) if lease.expires < now]
            for number in expired:
                if self._expire(live, number, now):
                    reaped.append(TrialRef(live.ref, number))
        return reaped

    def _load_running_once(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                try:
                    self._load_running()
                finally:
                    self._loaded = True  # tried once; a failure is raised to the caller

    @staticmethod
    def _expire(live: LiveStudy, number: int, now: float) -> bool:
        with live.trial_lock(number):
            with live.lock:
                lease = live.leases.get(number)
                if lease is None or lease.expires >= now:
                    return False
                try:
                    trial = live.storage.get_trial(lease.trial_id)
                except KeyError:  # the study was deleted
                    live.leases.pop(number, None)
                    return False
                stored = float(trial.system_attrs.get(LEASE_ATTR) or 0.0)
                if trial.state != TrialState.RUNNING:
                    live.leases.pop(number, None)
                    return False
                if stored >= now:  # renewed through another replica
                    lease.expires = stored
                    return False
                live.leases.pop(number)
            try:
                live.storage.set_trial_system_attr(lease.trial_id, EXPIRED_ATTR, True)
                live.tell(number, None, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                return False  # told through another replica since it was read: not expired
        _logger.info("%s/trials/%d: lease expired, trial failed", live.ref, number)
        options = live.config.options
        retries = int(trial.system_attrs.get(RETRIES_ATTR, 0))
        if options.retry_expired_trials and retries < options.max_retries:
            with live.sample_lock:
                live.waiting += 1
                live.study.add_trial(
                    optuna.trial.create_trial(
                        state=TrialState.WAITING,
                        system_attrs={
                            "fixed_params": trial.params,
                            RETRY_OF_ATTR: number,
                            RETRIES_ATTR: retries + 1,
                        },
                        user_attrs=trial.user_attrs,
                    )
                )
        return True


def _adopt_running(live: LiveStudy, *, warn: bool) -> None:
    # Trials handed out by another replica that may have died: watch their leases too. With
    # ``warn`` (a sole writer) one found is a trial some path started without a lease.
    if warn:
        # An ask holds ``sample_lock`` from creating its trial to leasing it: wait for it.
        with live.sample_lock:
            _adopt(live, warn=True)
    else:
        _adopt(live, warn=False)


def _adopt(live: LiveStudy, *, warn: bool) -> None:
    try:
        running = live.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    except KeyError:  # the study was deleted
        return
    with live.lock:
        for trial in running:
            if trial.number not in live.leases:
                live.adopt(trial)
                if warn:
                    _logger.warning(
                        "%s/trials/%d was running without a lease; it has one now",
                        live.ref,
                        trial.number,
                    )


class LeaseReaper:
    """Calls ``reap()`` every ``interval`` seconds on a daemon thread, from ``start()`` on.

    The first call is made at once (it loads the studies with running trials). A failing call
    is logged and retried at the next interval: the reaper outlives any one bad study.

    Thread-safety: ``start`` and ``stop`` may be called from any thread; ``stop`` is idempotent
    and waits for the thread to end.
    """

    def __init__(self, reap: Callable[[], object], *, interval: float = 1.0) -> None:
        self._reap = reap
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> LeaseReaper:
        """Starts the thread (once)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hposerve-lease-reaper", daemon=True
                )
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stops the thread and waits for it to end."""
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join()

    def _run(self) -> None:
        while True:
            try:
                self._reap()
            except Exception:
                _logger.exception("lease reaper failed; retrying")
            if self._stopping.wait(self._interval):
                return
