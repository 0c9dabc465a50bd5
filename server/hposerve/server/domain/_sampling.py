"""Sampling processes: the samplers that fit a model run beside the server, not in it.

A server is one Python process, and the GIL runs one thread's Python at a time: a TPE, GP or
CMA-ES study fitting its model holds up every other study's calls, and the gRPC event loop,
for as long as its sampler computes. A sampling process has a GIL (and a core) of its own.

It opens the server's storage to read it (``mirror``: the embedded journal's file tailed, the
PostgreSQL journal queried as a replica does), keeps one Optuna study and sampler per study it
serves, and samples a new trial on a provisional view exactly as an in-server ask does
(``_optuna.sample_new``). The server stores the trial it returns, as it stores one it
sampled itself. Each read the process makes sees every write the server acknowledged before
the ask (the server wrote them before asking, and a call's reads are fresh: ``_consistency``).

What goes there: an ask with a search space, of a study whose sampler fits a model
(``_specs.fits_a_model``) and warm-starts from no other study. A study is served by one
process, the one given its first ask, so a seeded study draws what it would in-process. Define-
by-run suggests, enqueued trials and retried asks sample in the server with its own copy of
the sampler: a study asked both ways draws from two random streams.

A process that dies (or cannot start) is started again at a later ask; meanwhile asks sample
in the server, so a call never fails for want of a sampling process.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage

from hposerve.server.domain._config import StudyConfig
from hposerve.server.domain._optuna import Sampled
from hposerve.server.domain._specs import SAMPLER_REFUSALS

__all__ = ["SampleRequest", "SamplingProcesses"]

_logger = logging.getLogger("hposerve.server")


@dataclasses.dataclass(frozen=True)
class SampleRequest:
    """One new trial to sample, as a sampling process receives it (picklable)."""

    study_id: int
    study_name: str
    sampler: bytes  # the study's SamplerSpec, serialized
    n_objectives: int
    space: Mapping[str, BaseDistribution]
    system_attrs: Mapping[str, Any]
    number: int


class SamplingProcesses:
    """``processes`` sampling processes over ``mirror`` (how they open the server's storage).

    Thread-safety: thread-safe. Each process serves one ask at a time; asks of studies on
    other processes go on at once. Processes start at their first ask; ``close()`` stops them.
    """

    def __init__(
        self,
        mirror: Callable[[], BaseStorage],
        processes: int,
        *,
        start_timeout: float = 120.0,
        retry_after: float = 30.0,
    ) -> None:
        """``retry_after``: seconds after a process failed during which its asks sample in
        the server, before it is started again."""
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self._workers = [_Worker(mirror, start_timeout, retry_after) for _ in range(processes)]
        self._assigned: dict[int, _Worker] = {}  # study id -> the process that serves it
        self._lock = threading.Lock()

    def sample(
        self,
        study_id: int,
        study_name: str,
        config: StudyConfig,
        space: Mapping[str, BaseDistribution],
        *,
        system_attrs: Mapping[str, Any],
        number: int,
    ) -> Sampled | None:
        """The new trial sampled in the study's process; None when no process could (the
        caller samples it). Raises what the sampler raised on a space it cannot sample."""
        with self._lock:
            worker = self._assigned.get(study_id)
            if worker is None:
                worker = min(self._workers, key=lambda w: w.studies)
                worker.studies += 1
                self._assigned[study_id] = worker
        request = SampleRequest(
            study_id,
            study_name,
            config.sampler.SerializeToString(),
            len(config.directions),
            dict(space),
            dict(system_attrs),
            number,
        )
        return worker.call(request)

    def pids(self) -> list[int | None]:
        """Each process's id, None for one not running (for tests and operators)."""
        return [w.pid for w in self._workers]

    def close(self) -> None:
        """Stops the processes. Idempotent; a later ask starts them again."""
        for worker in self._workers:
            worker.stop()


class _Worker:
    """One sampling process, started on demand."""

    def __init__(
        self, mirror: Callable[[], BaseStorage], start_timeout: float, retry_after: float
    ) -> None:
        self._mirror = mirror
        self._start_timeout = start_timeout
        self._retry_after = retry_after
        self._lock = threading.Lock()  # one ask at a time on the pipe
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._failed_at = -math.inf
        self.studies = 0  # studies assigned (under the pool's lock)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def call(self, request: SampleRequest) -> Sampled | None:
        with self._lock:
            try:
                conn = self._running()
                if conn is None:
                    return None
                conn.send(request)
                ok, result = conn.recv()
            except (EOFError, OSError) as e:
                _logger.warning("a sampling process failed (%s); asks sample in the server", e)
                self._end(failed=True)
                return None
        if ok:
            assert isinstance(result, Sampled)
            return result
        if isinstance(result, SAMPLER_REFUSALS):
            raise result  # the sampler refused the space, as it would in the server
        # Anything else is the process's own trouble (its storage, a stale read): the server
        # samples this ask, and meets the real error there if there is one.
        _logger.warning("a sampling process failed an ask (%r); the server samples it", result)
        return None

    def _running(self) -> Connection | None:
        """The connection to a running process, started if need be; None while starting has
        failed recently (call with ``_lock`` held)."""
        if self._process is not None and self._process.poll() is None:
            assert self._conn is not None
            return self._conn
        self._end(failed=self._process is not None)
        if time.monotonic() - self._failed_at < self._retry_after:
            return None
        # A fresh interpreter on a socket pair, rather than multiprocessing's spawn, which
        # re-runs the caller's main module (a script without a __main__ guard, a notebook).
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "hposerve.server.domain._sampling_worker"]
                + [str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            )
        self._conn = conn = Connection(ours.detach())
        try:
            conn.send(self._mirror)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise OSError(f"the storage cannot be opened by another process: {e}") from e
        if not conn.poll(self._start_timeout):
            raise OSError(f"the sampling process did not start in {self._start_timeout:.0f} s")
        ok, error = conn.recv()
        if not ok:
            raise OSError(f"the sampling process could not open the storage: {error!r}")
        return conn

    def _end(self, *, failed: bool) -> None:
        if failed:
            self._failed_at = time.monotonic()
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
        self._process = self._conn = None

    def stop(self) -> None:
        with self._lock:
            if self._conn is not None and self._process is not None:
                try:
                    self._conn.send(None)  # asks the process to end
                    self._process.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._end(failed=False)
