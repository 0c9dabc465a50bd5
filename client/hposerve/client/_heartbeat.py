"""Lease renewal: one background thread per client keeps its open trials alive."""

from __future__ import annotations

import logging
import threading
import time

from hposerve.v1 import study_service_pb2 as pb

from ._errors import HposerveError
from ._transport import Transport
from ._trial import Trial

_logger = logging.getLogger("hposerve.client")

DEFAULT_LEASE_SECONDS = 300.0


class Heartbeat:
    """Renews the leases of all open (asked, not yet told) trials of one client.

    One daemon thread sends one Heartbeat for all open trials per interval (over its own
    session, like any thread's trial calls, or unary where sessions are off). It starts with
    the first open trial and stops on :meth:`close`. Failures are logged, never raised: a
    missed beat is retried at the next interval, well within the lease. Thread-safe.
    """

    def __init__(self, transport: Transport, interval: float | None) -> None:
        self._transport = transport
        self._fixed_interval = interval
        self._trials: dict[str, tuple[Trial, float]] = {}  # name -> (trial, its lease)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._due: float | None = None  # monotonic time of the next beat; None: no trials
        self._stopped = False
        self._thread: threading.Thread | None = None

    def register(self, trial: Trial, lease_seconds: float) -> None:
        """Starts renewing ``trial``'s lease (``lease_seconds`` long)."""
        with self._lock:
            if self._stopped:
                return
            self._trials[trial.name] = (trial, lease_seconds)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hposerve-heartbeat", daemon=True
                )
                self._thread.start()
            # Wake the thread only when this trial needs a beat sooner than it would come (a
            # wake-up per trial costs every trainer thread a context switch).
            due = time.monotonic() + self._interval_for(lease_seconds)
            if self._due is None or due < self._due:
                self._wake.notify()

    def unregister(self, name: str) -> None:
        """Stops renewing the lease of the trial named ``name``."""
        with self._lock:
            self._trials.pop(name, None)

    def open_trials(self) -> list[str]:
        """Names of the trials whose leases are being renewed."""
        with self._lock:
            return list(self._trials)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stops the thread and waits (up to ``timeout``) for it to end."""
        with self._lock:
            self._stopped = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _interval_for(self, lease_seconds: float) -> float:
        # A third of the lease: two beats may be lost before a lease expires.
        return self._fixed_interval if self._fixed_interval is not None else lease_seconds / 3

    def _run(self) -> None:
        while True:
            with self._lock:
                # A beat comes a whole interval after the last one (or after the first trial
                # appears), sooner if a trial with a shorter lease arrives meanwhile.
                self._due = None
                while not self._stopped:
                    now = time.monotonic()
                    if not self._trials:
                        self._due = None
                        self._wake.wait()
                        continue
                    shortest = min(lease for _, lease in self._trials.values())
                    due = now + self._interval_for(shortest)
                    self._due = due if self._due is None else min(self._due, due)
                    if now >= self._due:
                        break
                    self._wake.wait(self._due - now)
                if self._stopped:
                    return
                names = list(self._trials)
            self._beat(names)

    def _beat(self, names: list[str]) -> None:
        try:
            # Reports a trainer made in a burst are held until its next call: a trainer that
            # then trains for long gets them to the server now, not at its tell.
            self._transport.send_held()
            response = self._transport.call("Heartbeat", pb.HeartbeatRequest(trials=names))
        except HposerveError as error:
            _logger.warning("heartbeat for %d trial(s) failed: %s", len(names), error)
            return
        except Exception:  # the thread must survive anything, or leases silently expire
            _logger.exception("heartbeat for %d trial(s) failed", len(names))
            return
        for lease in response.leases:
            if lease.running:
                continue
            with self._lock:
                entry = self._trials.pop(lease.trial, None)
            if entry is not None:
                entry[0]._mark_finished()
                _logger.warning(
                    "trial %s is no longer running on the server (its lease expired?);"
                    " telling it will fail",
                    lease.trial,
                )
