"""The lease reaper is a component that its owner starts and stops; the registry starts none.

``StudyRegistry.__init__`` used to start the reaper thread (tests passed ``reap_interval=3600``
to keep it away). A class that starts a thread now does so in ``start()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hposerve.server.domain import LeaseReaper, StudyOptions, StudyRef, StudyRegistry
from hposerve.server.storage import close_storage, open_storage
from hposerve.v1 import specs_pb2

REAPER_THREAD = "hposerve-lease-reaper"


def reaper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == REAPER_THREAD]


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[object]:
    opened = open_storage(None, data_dir=tmp_path)
    yield opened
    close_storage(opened)


def create(registry: StudyRegistry, ref: StudyRef, lease_seconds: float) -> None:
    registry.create_study(
        ref,
        directions=(),
        sampler=specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0)),
        pruner=None,
        options=StudyOptions(lease_seconds=lease_seconds),
        load_if_exists=False,
    )


def test_a_registry_starts_no_thread(storage) -> None:
    before = set(threading.enumerate())
    registry = StudyRegistry(storage)
    create(registry, StudyRef("default", "s"), lease_seconds=0.01)
    registry.ask(StudyRef("default", "s"), search_space={})
    time.sleep(0.05)
    started = {t.name for t in set(threading.enumerate()) - before}
    assert not any(name.startswith("hposerve") for name in started)
    registry.close()


def test_the_reaper_fails_expired_trials_between_start_and_stop(storage) -> None:
    registry = StudyRegistry(storage)
    ref = StudyRef("default", "reaped")
    create(registry, ref, lease_seconds=0.05)
    (record,) = registry.ask(ref, search_space={})
    running = len(reaper_threads())  # other tests' servers, if any
    reaper = LeaseReaper(registry.reap_expired, interval=0.01)
    assert len(reaper_threads()) == running  # built, not started
    reaper.start()
    try:
        assert len(reaper_threads()) == running + 1
        deadline = time.time() + 5
        while registry.get_trial(record.ref).trial.state != TrialState.FAIL:
            assert time.time() < deadline, "the reaper did not fail the expired trial"
            time.sleep(0.01)
    finally:
        reaper.stop()
    assert len(reaper_threads()) == running
    reaper.stop()  # idempotent
    # Stopped, it reaps no more.
    (late,) = registry.ask(ref, search_space={})
    time.sleep(0.2)
    assert registry.get_trial(late.ref).trial.state == TrialState.RUNNING


def test_a_failing_reap_is_retried(caplog) -> None:
    calls: list[float] = []

    def reap() -> None:
        calls.append(time.time())
        if len(calls) == 1:
            raise RuntimeError("storage blip")

    reaper = LeaseReaper(reap, interval=0.01).start()
    try:
        deadline = time.time() + 5
        while len(calls) < 3:
            assert time.time() < deadline
            time.sleep(0.01)
    finally:
        reaper.stop()
    assert "lease reaper failed" in caplog.text


def test_reap_expired_loads_the_studies_with_running_trials_itself(storage) -> None:
    # No reaper thread prepares anything: the first reap looks for running trials itself.
    ref = StudyRef("default", "restarted")
    first = StudyRegistry(storage)
    create(first, ref, lease_seconds=60)
    (record,) = first.ask(ref, search_space={})
    second = StudyRegistry(storage)  # a restart: the study is not loaded
    assert second.reap_expired() == []
    assert second.reap_expired(now=time.time() + 1000) == [record.ref]
