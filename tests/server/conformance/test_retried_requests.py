"""Retried mutating requests, on both backends: the first answer again, nothing changed twice."""

from __future__ import annotations

import uuid

import pytest

from .backends import Backend, Trial
from .cases import X, refused


@pytest.mark.parametrize("space", [{}, X], ids=["define-by-run", "fixed-space"])
def test_retried_ask_returns_the_same_trials(backend: Backend, study: str, space: dict) -> None:
    first = backend.ask(study, space, count=3, request_id="ask-1")
    after_first = backend.snapshot(study)
    again = backend.ask(study, space, count=3, request_id="ask-1")
    assert [t.number for t in again] == [t.number for t in first]
    assert [t.params for t in again] == [t.params for t in first]
    assert backend.snapshot(study) == after_first
    # Another request id is another request.
    other = backend.ask(study, space, count=3, request_id="ask-2")
    assert {t.number for t in other}.isdisjoint(t.number for t in first)


def test_retried_ask_after_the_trial_was_told(backend: Backend, study: str) -> None:
    request_id = uuid.uuid4().hex
    (first,) = backend.ask(study, request_id=request_id)
    backend.tell(study, first.number, "complete", [1.0])
    after = backend.snapshot(study)
    (again,) = backend.ask(study, request_id=request_id)
    assert again.number == first.number and again.state == "complete"
    assert backend.snapshot(study) == after


def test_retried_enqueue_enqueues_once(backend: Backend, study: str) -> None:
    first = backend.enqueue(study, {"x": 0.125}, request_id="enq-1")
    assert first is not None
    after_first = backend.snapshot(study)
    assert backend.enqueue(study, {"x": 0.125}, request_id="enq-1") == first
    assert backend.snapshot(study) == after_first
    assert [t.number for t in backend.list_trials(study, states=["waiting"])] == [first.number]


def test_retried_enqueue_that_was_skipped(backend: Backend, study: str) -> None:
    backend.enqueue(study, {"x": 0.125})
    skipped = {"skip_if_exists": True, "request_id": "enq-skip"}
    assert backend.enqueue(study, {"x": 0.125}, **skipped) is None  # type: ignore[arg-type]
    after = backend.snapshot(study)
    assert backend.enqueue(study, {"x": 0.125}, **skipped) is None  # type: ignore[arg-type]
    assert backend.snapshot(study) == after


def test_retried_create_returns_the_study(backend: Backend, name: str) -> None:
    first = backend.create_study(name, request_id="create-1")
    assert backend.create_study(name, request_id="create-1") == first
    assert sum(n == first.name for n in backend.study_names()) == 1
    # Another request for the same study is not a retry.
    refused("ALREADY_EXISTS", lambda: backend.create_study(name, request_id="create-2"), first.name)


def test_retried_tell_and_report(backend: Backend, study: str, running: Trial) -> None:
    # Idempotent by what they name (the step, the outcome): a retry needs no request id.
    n = running.number
    first = backend.report(study, n, step=3, value=0.5)
    after = backend.snapshot(study)
    assert backend.report(study, n, step=3, value=0.5) == first
    backend.report(study, n, step=3, value=0.75)  # retried with another value
    assert backend.snapshot(study) == after  # the first value of a step stays
    told = backend.tell(study, n, "complete", [0.25])
    after = backend.snapshot(study)
    assert backend.tell(study, n, "complete", [0.25]) == told
    assert backend.snapshot(study) == after
