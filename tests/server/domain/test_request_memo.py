"""The one request memo (``_requests.RequestMemo``) and the live-object cache (``_cache``)."""

from __future__ import annotations

import threading
import time

import pytest

from hposerve.server.domain._cache import LiveCache
from hposerve.server.domain._requests import RequestMemo


def test_once_runs_the_work_once_per_key_and_replays_the_first_answer() -> None:
    memo: RequestMemo[str, list[int]] = RequestMemo()
    calls = []

    def work() -> list[int]:
        calls.append(1)
        return [len(calls)]

    assert memo.once("r1", work) == [1]
    assert memo.once("r1", work) == [1]
    assert memo.once("r2", work) == [2]
    assert memo.once(None, work) == [3]  # no request id: no memory
    assert memo.once(None, work) == [4]
    assert memo.get("r1") == [1] and "r2" in memo and memo.get("r3") is None


def test_once_remembers_nothing_when_the_work_fails() -> None:
    memo: RequestMemo[str, int] = RequestMemo()

    def fail() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError):
        memo.once("r", fail)
    assert "r" not in memo
    assert memo.once("r", lambda: 5) == 5


def test_recall_finds_an_answer_the_memo_does_not_hold() -> None:
    memo: RequestMemo[str, int] = RequestMemo()
    assert memo.once("r", lambda: 1, recall=lambda: 7) == 7  # found in storage: no work
    assert memo.once("r", lambda: 1, recall=lambda: 8) == 7  # and remembered
    assert memo.once("s", lambda: 1, recall=lambda: None) == 1


def test_the_memo_is_bounded_dropping_the_oldest() -> None:
    memo: RequestMemo[int, int] = RequestMemo(limit=3)
    for i in range(5):
        memo.remember(i, i)
    assert [i in memo for i in range(5)] == [False, False, True, True, True]


def test_the_cache_loads_once_under_concurrent_gets() -> None:
    cache: LiveCache[str, object] = LiveCache()
    loads = []
    started = threading.Event()

    def load() -> object:
        loads.append(1)
        started.set()
        time.sleep(0.05)
        return object()

    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("a", load))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len({id(g) for g in got}) == 1
    assert cache.peek("a") is got[0] and cache.values() == [got[0]]


def test_a_slow_load_holds_up_only_its_own_key() -> None:
    cache: LiveCache[str, str] = LiveCache()
    release = threading.Event()
    slow = threading.Thread(target=lambda: cache.get("slow", lambda: release.wait(5) and "s"))
    slow.start()
    try:
        time.sleep(0.02)
        start = time.perf_counter()
        assert cache.get("quick", lambda: "q") == "q"
        assert time.perf_counter() - start < 1.0
    finally:
        release.set()
        slow.join()
    assert cache.peek("slow") == "s"


def test_forget_and_a_failed_load() -> None:
    cache: LiveCache[str, object] = LiveCache()

    def missing() -> object:
        raise KeyError("gone")

    with pytest.raises(KeyError):
        cache.get("x", missing)
    assert cache.peek("x") is None
    first = cache.get("x", object)
    cache.forget("x", object())  # not the live one: kept
    assert cache.peek("x") is first
    cache.forget("x")
    assert cache.peek("x") is None
    assert cache.get("x", object) is not first
    assert cache._gates == {}  # nothing left behind by keys loaded or forgotten
