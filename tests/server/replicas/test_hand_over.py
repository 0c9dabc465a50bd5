"""Asks of a random study on a replica hand their turn over once their create is queued
(``_turns``): the draws still follow the order of the trials, as Optuna's own would."""

from __future__ import annotations

import concurrent.futures

import optuna
import pytest
from optuna.distributions import FloatDistribution

from hposerve.client import Client
from hposerve.server import make_server

pytestmark = pytest.mark.postgres

SPACE = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(-5.0, 5.0)}


@pytest.fixture
def targets(journal_url):
    servers = [make_server("127.0.0.1:0", storage=journal_url).start() for _ in range(2)]
    try:
        yield [f"127.0.0.1:{s.port}" for s in servers]
    finally:
        for server in servers:
            server.stop(grace=1)


def test_concurrent_asks_of_a_seeded_random_study_draw_as_optuna_in_process(targets):
    with Client(targets[0]) as client:
        study = client.create_study(name="hand-over", sampler={"type": "random", "seed": 7})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            asked = list(pool.map(lambda _: study.ask(SPACE), range(64)))
        numbers = sorted(t.number for t in asked)
        assert numbers == list(range(64))  # none handed out twice, none skipped
        by_number = {t.number: t.params for t in asked}
    local = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    assert [by_number[n] for n in numbers] == [local.ask(SPACE).params for _ in numbers]


def test_a_trial_enqueued_on_one_replica_is_the_next_asked_on_the_other(targets):
    with Client(targets[0]) as a, Client(targets[1]) as b:
        on_a = a.create_study(name="enqueued", sampler={"type": "random"})
        on_b = b.get_study("enqueued")
        on_b.tell(on_b.ask(SPACE), 1.0)  # the study is live on b before the enqueue
        on_a.enqueue_trial({"x": 0.25, "y": 1.5})
        trial = on_b.ask(SPACE)
        assert trial.params == {"x": 0.25, "y": 1.5}
        assert on_b.ask(SPACE).params != {"x": 0.25, "y": 1.5}  # started once
