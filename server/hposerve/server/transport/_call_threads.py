"""The server's threads for calls that do not run on the event loop.

An executor as ``concurrent.futures.ThreadPoolExecutor`` is (a bound on its threads; queued work
done before shutdown lets them go), with one more way in:
``run`` hands a call to a thread and answers an asyncio future with one
``call_soon_threadsafe``. ``loop.run_in_executor`` builds a ``concurrent.futures.Future`` (and
its ``threading.Condition``) per call and chains an asyncio future to it, all on the event
loop, which every call of the server passes through: on a replica, whose trial calls all cross
to a thread, that bookkeeping was a tenth of the loop's time, and taking it away gave the
concurrent case 6% more trials a second (every one of six alternating pairs faster) and tells
12% sooner at the median (BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

__all__ = ["CallThreads"]

T = TypeVar("T")

_STOP = None  # what a thread takes from the queue to end


class CallThreads(futures.Executor):
    """``max_workers`` threads, named ``{name}_{i}``. Thread-safe."""

    def __init__(self, max_workers: int, name: str) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}_{i}", daemon=True)
            for i in range(max_workers)
        ]

    def start(self) -> CallThreads:
        """Starts every thread now (work handed in before waits for this): counting idle
        threads to start them as needed takes a lock and a semaphore per call, which is what
        ``run`` is here to save."""
        for thread in self._threads:
            thread.start()
        return self

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on a thread; call on the event loop, whose future it answers."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()

        def call() -> None:
            outcome: tuple[Any, BaseException | None]
            try:
                outcome = (fn(*args), None)
            except BaseException as error:  # noqa: BLE001 - handed to the awaiting call
                outcome = (None, error)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits it
                loop.call_soon_threadsafe(_settle, answer, *outcome)

        self._put(call)
        return answer

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> futures.Future[T]:
        """As ``Executor.submit`` (``loop.run_in_executor`` and gRPC's plain handlers)."""
        done: futures.Future[T] = futures.Future()

        def call() -> None:
            if not done.set_running_or_notify_cancel():
                return
            try:
                done.set_result(fn(*args, **kwargs))
            except BaseException as error:  # noqa: BLE001 - handed to the future
                done.set_exception(error)

        self._put(call)
        return done

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Lets the threads go once the work queued before it is done (``cancel_futures`` is
        not supported: queued work runs). Call once nothing hands in work any more (the server
        stops its gRPC server first)."""
        if not self._closed:
            self._closed = True
            for _ in self._threads:
                self._work.put(_STOP)
        if wait:
            for thread in self._threads:
                if thread.ident is not None:  # started
                    thread.join()

    def _put(self, call: Callable[[], None]) -> None:
        if self._closed:
            raise RuntimeError("cannot schedule new calls after shutdown")
        self._work.put(call)

    def _serve(self) -> None:
        while (call := self._work.get()) is not _STOP:
            call()


def _settle(answer: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if answer.cancelled():  # the RPC went away meanwhile
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(result)
