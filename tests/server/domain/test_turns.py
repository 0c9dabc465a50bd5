"""A study's turn to sample: a blind sampler's ask hands it over once its create is queued.

The storage here stores each trial at once, says its place is fixed (``write_queued``), then
holds the first ask's create as a slow database would hold its acknowledgement.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import InMemoryStorage
from optuna.trial import TrialState

from hposerve.server import StudyOptions, StudyRef, StudyRegistry
from hposerve.server.domain._turns import write_queued
from hposerve.v1 import specs_pb2

SPACE = {"x": FloatDistribution(0.0, 1.0)}
SAMPLERS = {
    "random": specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0)),
    "tpe": specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler(seed=0)),
}


class _SlowAcknowledgements(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.held = threading.Event()  # the first ask's create is being held
        self.release = threading.Event()
        self._first = True

    def create_new_trial(self, study_id: int, template_trial: Any = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        write_queued()
        if self._first and template_trial is not None:
            self._first = False
            self.held.set()
            assert self.release.wait(10)
        return trial_id


@pytest.fixture
def pool():
    with concurrent.futures.ThreadPoolExecutor(4) as executor:
        yield executor


def _registry(sampler: str) -> tuple[StudyRegistry, _SlowAcknowledgements, StudyRef]:
    storage = _SlowAcknowledgements()
    registry = StudyRegistry(storage)
    ref = StudyRef("default", f"turns-{sampler}")
    registry.create_study(
        ref,
        directions=(),
        sampler=SAMPLERS[sampler],
        pruner=None,
        options=StudyOptions(),
        load_if_exists=False,
    )
    return registry, storage, ref


def _first_held(pool, registry, storage, ref, request_id: str = "first"):
    first = pool.submit(registry.ask, ref, search_space=SPACE, request_id=request_id)
    assert storage.held.wait(10)
    return first


def test_a_random_study_asks_the_next_trial_while_the_last_create_is_unacknowledged(pool):
    registry, storage, ref = _registry("random")
    first = _first_held(pool, registry, storage, ref)
    (second,) = registry.ask(ref, search_space=SPACE, request_id="second")
    assert not first.done()
    storage.release.set()
    (asked,) = first.result(10)
    # The creates kept the order of the draws: the first drawn is trial 0.
    assert (asked.ref.number, second.ref.number) == (0, 1)
    assert [t.state for t in storage.get_all_trials(0)] == [TrialState.RUNNING] * 2


def test_a_study_whose_sampler_reads_trials_keeps_its_turn_until_the_create_is_done(pool):
    registry, storage, ref = _registry("tpe")
    first = _first_held(pool, registry, storage, ref)
    second = pool.submit(registry.ask, ref, search_space=SPACE, request_id="second")
    with pytest.raises(concurrent.futures.TimeoutError):
        second.result(0.3)
    storage.release.set()
    assert [first.result(10)[0].ref.number, second.result(10)[0].ref.number] == [0, 1]


def test_a_retry_of_an_ask_that_handed_its_turn_over_answers_as_the_first(pool):
    registry, storage, ref = _registry("random")
    first = _first_held(pool, registry, storage, ref, request_id="once")
    retry = pool.submit(registry.ask, ref, search_space=SPACE, request_id="once")
    with pytest.raises(concurrent.futures.TimeoutError):
        retry.result(0.3)  # it waits for the first to remember its trial
    storage.release.set()
    assert retry.result(10)[0].ref == first.result(10)[0].ref
    assert len(storage.get_all_trials(0)) == 1


def test_seeded_random_draws_match_optuna_in_process_under_concurrent_asks(pool):
    registry, storage, ref = _registry("random")
    storage.release.set()
    asks = [
        pool.submit(registry.ask, ref, search_space=SPACE, request_id=f"r{i}") for i in range(40)
    ]
    for ask in asks:
        ask.result(10)
    local = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    expected = [local.ask(SPACE).params for _ in range(40)]
    assert [t.params for t in storage.get_all_trials(0)] == expected
