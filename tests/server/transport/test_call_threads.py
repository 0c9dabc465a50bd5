"""The server's call threads (``transport._call_threads``): calls handed in from the event loop
or as an executor's, their answers and errors, the bound on threads, and a shutdown that lets
queued work finish."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hposerve.server.transport._call_threads import CallThreads


@pytest.fixture
def threads():
    pool = CallThreads(2, "test-calls").start()
    yield pool
    pool.shutdown()


def test_a_call_from_the_loop_runs_on_a_thread_and_answers_its_future(threads) -> None:
    async def main() -> tuple[str, str]:
        name = await threads.run(lambda: threading.current_thread().name)
        with pytest.raises(ZeroDivisionError):
            await threads.run(lambda: 1 / 0)
        return name, threading.current_thread().name

    on_thread, on_loop = asyncio.run(main())
    assert on_thread.startswith("test-calls_") and on_thread != on_loop


def test_a_call_whose_awaiter_went_away_is_dropped_quietly(threads) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 1

    errors: list[object] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        task = asyncio.ensure_future(threads.run(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await threads.run(lambda: None)  # the thread is free again

    asyncio.run(main())
    assert errors == []  # answering the cancelled future raised nothing on the loop


def test_as_an_executor_with_run_in_executor_and_submit(threads) -> None:
    async def main() -> int:
        return await asyncio.get_running_loop().run_in_executor(threads, sum, [1, 2, 3])

    assert asyncio.run(main()) == 6
    assert threads.submit(pow, 2, 10).result(5) == 1024
    failed = threads.submit(int, "x")
    with pytest.raises(ValueError):
        failed.result(5)


def test_no_more_calls_run_at_once_than_there_are_threads(threads) -> None:
    running, most, lock = 0, 0, threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    for done in [threads.submit(work) for _ in range(6)]:
        done.result(5)
    assert most == 2


def test_shutdown_lets_queued_work_finish_then_refuses_more() -> None:
    pool = CallThreads(1, "test-shutdown").start()
    done: list[int] = []
    for i in range(5):
        pool.submit(lambda i=i: (time.sleep(0.01), done.append(i)))
    pool.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]
    assert not any(t.is_alive() for t in pool._threads)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(print)
    pool.shutdown()  # again: nothing to do
    with pytest.raises(ValueError, match="at least 1"):
        CallThreads(0, "none")


def test_work_handed_in_before_start_waits_for_it() -> None:
    pool = CallThreads(1, "test-start")
    early = pool.submit(lambda: 1)
    time.sleep(0.05)
    assert not early.done()
    pool.start()
    assert early.result(5) == 1
    pool.shutdown()
    CallThreads(1, "never-started").shutdown()  # nothing to join


def test_a_call_that_ends_after_its_loop_closed_leaves_its_thread_serving() -> None:
    pool = CallThreads(1, "test-closed-loop").start()
    release = threading.Event()

    async def hand_in() -> None:
        pool.run(release.wait, 5)  # not awaited: the loop closes first

    asyncio.run(hand_in())
    release.set()
    assert pool.submit(lambda: "still serving").result(5) == "still serving"
    pool.shutdown()
