"""Leases, on both backends: a trial handed out lives while heartbeats renew it, and is failed
(and possibly retried) when they stop.

Expiry is driven by ``Backend.reap`` (the registry's ``reap_expired``; through gRPC the
server's reaper thread also runs, every 0.05 s). Waiting is done by polling with a deadline.
"""

from __future__ import annotations

import time

import pytest

from .backends import Backend
from .cases import X, random_sampler, refused, wait_for

LEASE = 0.3
PRECONDITION = "FAILED_PRECONDITION"


def _failed(backend: Backend, study: str, number: int) -> bool:
    backend.reap()
    return backend.get_trial(study, number).state == "failed"


def test_expired_lease_fails_the_trial(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(0), options={"lease_seconds": LEASE})
    asked_at = time.time()
    (trial,) = backend.ask(name, X)  # nobody renews the lease
    n = trial.number
    expires = trial.lease_expires
    assert expires is not None
    assert asked_at + LEASE - 0.05 <= expires <= time.time() + LEASE + 0.05
    backend.report(name, n, step=0, value=1.0)

    wait_for(lambda: _failed(backend, name, n), what="the lease to expire")
    assert time.time() >= expires
    gone = backend.get_trial(name, n)
    assert gone.lease_expires is None
    assert gone.params == trial.params and gone.intermediate_values == {0: 1.0}

    refused(PRECONDITION, lambda: backend.tell(name, n, "complete", [0.5]), gone.name, "FAIL")
    refused(PRECONDITION, lambda: backend.tell(name, n, "complete", [0.5]), "lease expired")
    report = lambda: backend.report(name, n, step=1, value=0.5)  # noqa: E731
    refused(PRECONDITION, report, "report to", "lease expired")
    refused(PRECONDITION, lambda: backend.suggest(name, n, "x", X["x"]), "lease expired")
    refused(PRECONDITION, lambda: backend.set_user_attrs(name, n, {"k": 1}), "lease expired")
    assert backend.heartbeat(name, [n]) == [None]
    # A heartbeat does not revive it, and nothing above changed it.
    assert backend.get_trial(name, n) == gone
    # The outcome it has is the one a trainer that gives up would tell: not an error.
    assert backend.tell(name, n, "failed").state == "failed"


def test_reap_fails_running_trials_once(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(0))
    running = backend.ask(name, count=3)
    (done,) = backend.ask(name)
    backend.tell(name, done.number, "complete", [1.0])
    assert all(t.lease_expires and t.lease_expires > time.time() for t in running)

    assert backend.reap() == []  # nothing has expired yet
    assert backend.reap(now=time.time() + 1000) == [(name, t.number) for t in running]
    for t in running:
        got = backend.get_trial(name, t.number)
        assert got.state == "failed" and got.lease_expires is None
        tell = lambda n=t.number: backend.tell(name, n, "complete", [2.0])  # noqa: E731
        refused(PRECONDITION, tell, "lease expired")
        report = lambda n=t.number: backend.report(name, n, step=0, value=1.0)  # noqa: E731
        refused(PRECONDITION, report, "lease expired")
    assert backend.get_trial(name, done.number).values == (1.0,)
    assert backend.heartbeat(name, [t.number for t in running]) == [None] * 3
    assert backend.reap(now=time.time() + 2000) == []  # each is failed once


def test_heartbeat_postpones_expiry(backend: Backend, name: str) -> None:
    backend.create_study(name, options={"lease_seconds": 10})
    (trial,) = backend.ask(name)
    assert trial.lease_expires is not None
    assert backend.reap(now=time.time() + 5) == []
    time.sleep(0.01)
    (renewed,) = backend.heartbeat(name, [trial.number])
    assert renewed is not None and renewed > trial.lease_expires
    assert backend.get_trial(name, trial.number).lease_expires == pytest.approx(renewed)
    assert backend.reap(now=trial.lease_expires + 0.001) == []
    assert backend.reap(now=renewed + 1) == [(name, trial.number)]


def test_heartbeats_keep_a_trial_alive(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(0), options={"lease_seconds": LEASE})
    (trial,) = backend.ask(name, X)
    until = time.monotonic() + 3 * LEASE
    while time.monotonic() < until:
        assert backend.reap() == []
        (lease,) = backend.heartbeat(name, [trial.number])
        assert lease is not None
        time.sleep(LEASE / 4)
    assert backend.tell(name, trial.number, "complete", [1.0]).state == "complete"


def test_retry_expired_trials(backend: Backend, name: str) -> None:
    options = {"lease_seconds": LEASE, "retry_expired_trials": True, "max_retries": 1}
    backend.create_study(name, sampler=random_sampler(0), options=options)
    (first,) = backend.ask(name, X)
    backend.set_user_attrs(name, first.number, {"fold": 3})

    def enqueued() -> list:
        backend.reap()
        return backend.list_trials(name, states=["waiting"])

    waiting = wait_for(enqueued, what="the expired trial to be enqueued")
    assert backend.get_trial(name, first.number).state == "failed"
    assert [t.number for t in waiting] == [first.number + 1]
    # The next ask gets the expired trial's parameters back (and its user attributes).
    (again,) = backend.ask(name, X)
    assert again.number == waiting[0].number
    assert again.params == first.params
    assert again.user_attrs == {"fold": 3}
    # A fresh ask after that samples anew.
    assert backend.ask(name, X)[0].params != first.params


@pytest.mark.parametrize(
    ("retry", "max_retries", "expected"),
    [(True, 0, 0), (True, 1, 1), (True, 2, 2), (False, 3, 0)],
    ids=["max-0", "max-1", "max-2", "retry-off"],
)
def test_max_retries_stops_retrying(
    backend: Backend, name: str, retry: bool, max_retries: int, expected: int
) -> None:
    options = {"lease_seconds": 60, "retry_expired_trials": retry, "max_retries": max_retries}
    backend.create_study(name, sampler=random_sampler(0), options=options)
    asked = backend.ask(name, X)
    for _ in range(5):
        assert backend.reap(now=time.time() + 1000) == [(name, asked[-1].number)]
        if not backend.list_trials(name, states=["waiting"]):
            break
        asked += backend.ask(name, X)
    assert len(asked) == expected + 1
    assert all(t.params == asked[0].params for t in asked)
    assert [t.state for t in backend.list_trials(name)] == ["failed"] * (expected + 1)
