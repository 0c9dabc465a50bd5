"""Sessions: a thread's trial calls over one stream, with unary calls as the fallback."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from hposerve.client import (
    Client,
    ClientConfig,
    FailedPrecondition,
    FloatDistribution,
    InvalidArgument,
)
from hposerve.server import make_server

SPACE = {"x": FloatDistribution(0.0, 1.0)}


def run_trials(client: Client, name: str, n: int) -> list[tuple[dict, float]]:
    study = client.create_study(name=name, sampler={"type": "tpe", "seed": 3}, load_if_exists=True)
    out = []
    for _ in range(n):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, 0)
        trial.set_user_attr("k", 1)
        out.append((dict(trial.params), study.tell(trial, (x - 0.3) ** 2).values[0]))
    return out


def test_session_and_unary_calls_give_the_same_results(target, study_name):
    with Client(target, config=ClientConfig(sessions=True)) as a:
        over_session = run_trials(a, study_name + "-s", 15)
    with Client(target, config=ClientConfig(sessions=False)) as b:
        over_unary = run_trials(b, study_name + "-u", 15)
    assert over_session == over_unary


def test_errors_come_back_in_band_and_the_session_goes_on(client, study_name):
    study = client.create_study(name=study_name)
    trial = study.ask()
    with pytest.raises(InvalidArgument) as info:
        trial.report(float("nan"), 0)
    assert info.value.field_violations and info.value.field_violations[0][0] == "value"
    with pytest.raises(InvalidArgument, match="step"):
        trial.report(1.0, -1)
    assert trial.report(1.0, 0) is False  # the same stream still serves
    study.tell(trial, 1.0)
    with pytest.raises(FailedPrecondition):
        study.tell(trial, 2.0)


def test_no_session_free_falls_back_to_unary(tmp_path, study_name, caplog):
    # One session at most: the other trainer threads are refused one and go unary.
    caplog.set_level(logging.INFO, logger="hposerve.client")
    server = make_server("127.0.0.1:0", data_dir=tmp_path / "d", max_sessions=1).start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            client.create_study(name=study_name, sampler={"type": "random"})
            results: list[int] = []
            errors: list[BaseException] = []

            def trainer() -> None:
                try:
                    study = client.get_study(study_name)
                    for _ in range(5):
                        trial = study.ask(SPACE)
                        trial.report(trial.params["x"], 0)
                        study.tell(trial, trial.params["x"])
                        results.append(trial.number)
                except BaseException as e:  # surfaced below
                    errors.append(e)

            threads = [threading.Thread(target=trainer) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            assert sorted(results) == list(range(15))
            assert "sessions unavailable (RESOURCE_EXHAUSTED)" in caplog.text
    finally:
        server.stop()


def test_a_broken_stream_is_retried_on_a_new_one(tmp_path, study_name):
    data = tmp_path / "d"
    server = make_server("127.0.0.1:0", data_dir=data).start()
    port = server.port
    config = ClientConfig(initial_backoff=0.05, max_backoff=0.2, max_attempts=20)
    with Client(f"127.0.0.1:{port}", config=config) as client:
        study = client.create_study(name=study_name)
        trial = study.ask()
        assert trial.report(1.0, 0) is False
        server.stop()  # the session's stream breaks
        restarted: list = []
        threading.Timer(
            0.5, lambda: restarted.append(make_server(f"127.0.0.1:{port}", data_dir=data).start())
        ).start()
        try:
            # UNAVAILABLE while the server is down: retried until it is back, on a new stream.
            assert trial.report(2.0, 1) is False
            assert study.tell(trial, 2.0).values == [2.0]
        finally:
            deadline = time.monotonic() + 10
            while not restarted and time.monotonic() < deadline:
                time.sleep(0.05)
            for s in restarted:
                s.stop()


def test_a_sampling_study_does_not_hold_up_quick_calls_of_others(client, study_name, monkeypatch):
    # Quick calls run on the server's event loop; sampling that fits a model runs on its pool.
    import optuna

    sampling = threading.Event()
    release = threading.Event()

    def slow_sample(self, study, trial, name, distribution):
        sampling.set()
        release.wait(timeout=30)
        return distribution.low

    monkeypatch.setattr(optuna.samplers.TPESampler, "sample_independent", slow_sample)
    slow = client.create_study(name=study_name + "-tpe", sampler={"type": "tpe"})
    quick = client.create_study(name=study_name + "-random", sampler={"type": "random"})
    asked: list = []
    asker = threading.Thread(target=lambda: asked.append(slow.ask(SPACE)))
    asker.start()
    try:
        assert sampling.wait(timeout=30)
        for _ in range(3):  # over this thread's session, while the other ask is sampling
            trial = quick.ask(SPACE)
            assert trial.report(0.5, 0) is False
            assert quick.tell(trial, 0.5).values == [0.5]
        assert not asked  # still sampling: the calls above did not wait for it
    finally:
        release.set()
        asker.join()
    assert asked[0].params == {"x": 0.0}


def test_stopping_ends_idle_sessions_at_once(tmp_path, study_name):
    server = make_server("127.0.0.1:0", data_dir=tmp_path / "d").start()
    with Client(f"127.0.0.1:{server.port}") as client:
        study = client.create_study(name=study_name)
        trial = study.ask()
        assert trial.report(1.0, 0) is False  # this thread's session is open, and idle now
        start = time.monotonic()
        server.stop(grace=30)
        assert time.monotonic() - start < 10  # not held for the grace period


# -- reports on a study that never prunes: sent without waiting for their answer ---------------


def _never_pruning(client: Client, name: str):
    return client.create_study(
        name=name, sampler={"type": "random", "seed": 0}, pruner={"type": "none"}
    )


def test_a_report_that_cannot_prune_costs_no_round_trip_and_lands_before_the_tell(
    client, study_name
):
    study = _never_pruning(client, study_name)
    transport = study._transport
    trial = study.ask(SPACE)
    before = transport.round_trips
    for step in range(5):
        assert trial.report(float(step), step) is False
        assert trial.should_prune() is False
    assert transport.round_trips == before  # nothing waited for an answer
    told = study.tell(trial, 1.0)
    assert transport.round_trips == before + 1
    assert told.intermediate_values == {s: float(s) for s in range(5)}


def test_a_study_with_a_pruner_still_answers_each_report(client, study_name):
    study = client.create_study(name=study_name)  # Optuna's default: MedianPruner
    transport = study._transport
    trial = study.ask(SPACE)
    before = transport.round_trips
    trial.report(1.0, 0)
    assert transport.round_trips == before + 1


def test_a_deferred_report_refused_by_the_server_is_raised_by_the_next_call_that_waits(
    client, study_name
):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)
    other = client.get_study(study_name)
    other.tell(trial.number, 1.0)  # finished behind this trial's back
    trial.report(1.0, 0)  # refused on the server; the answer has not been read yet
    trial.report(2.0, 1)
    with pytest.raises(FailedPrecondition, match="report"):
        study.tell(trial, 1.0)  # reads the reports' answers: the first refusal is raised
    trial = study.ask(SPACE)
    # Bad values are refused at once, as the server would refuse them.
    with pytest.raises(InvalidArgument) as info:
        trial.report(float("nan"), 2)
    assert info.value.field_violations[0][0] == "value"


def test_a_trial_reported_on_one_thread_and_told_on_another_keeps_its_reports(client, study_name):
    study = _never_pruning(client, study_name)
    trial = study.ask(SPACE)

    def train() -> None:
        for step in range(20):
            trial.report(float(step), step)

    worker = threading.Thread(target=train)
    worker.start()
    worker.join()  # the worker's session still holds the reports' answers unread
    told = study.tell(trial, 0.5)
    assert told.intermediate_values == {s: float(s) for s in range(20)}


def test_deferred_reports_reach_the_server_when_the_client_closes(target, study_name):
    with Client(target) as writer:
        study = _never_pruning(writer, study_name)
        trial = study.ask(SPACE)
        for step in range(10):
            trial.report(float(step), step)
    with Client(target) as reader:
        got = reader.get_study(study_name).get_trial(trial.number)
    assert got.intermediate_values == {s: float(s) for s in range(10)}
