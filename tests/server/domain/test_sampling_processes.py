"""Sampling processes: asks of model-fitting studies sample beside the server, as in-process."""

from __future__ import annotations

import functools
import os
import signal
import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hposerve.client import Client
from hposerve.server import make_server
from hposerve.server.domain import (
    SamplingProcesses,
    StudyOptions,
    StudyRef,
    StudyRegistry,
)
from hposerve.server.storage import close_storage, mirror_of, open_storage
from hposerve.server.storage._journal import JournalFileReader, LocalJournalBackend
from hposerve.v1 import specs_pb2

SPACE = {
    "x": FloatDistribution(-5.0, 5.0),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "n": IntDistribution(1, 8),
    "act": CategoricalDistribution(["relu", "tanh"]),
}


class _Refusing(optuna.samplers.RandomSampler):
    """Stands in for the server's own sampler: any sampling in the server fails the test."""

    def sample_relative(self, *args, **kwargs):
        raise AssertionError("sampled in the server")

    def sample_independent(self, *args, **kwargs):
        raise AssertionError("sampled in the server")


def _value(params) -> float:
    return (params["x"] - 1.0) ** 2 + params["n"] * 0.1 + (params["act"] == "tanh")


@pytest.fixture
def registry(tmp_path):
    storage = open_storage(None, data_dir=tmp_path)
    sampling = SamplingProcesses(mirror_of(storage), 1, retry_after=0.0)
    registry = StudyRegistry(storage, sampling=sampling)
    yield registry, sampling
    sampling.close()
    registry.close()
    close_storage(storage)


def _create(registry: StudyRegistry, name: str, sampler: specs_pb2.SamplerSpec) -> StudyRef:
    ref = StudyRef("default", name)
    registry.create_study(
        ref,
        directions=[],
        sampler=sampler,
        pruner=None,
        options=StudyOptions(),
        load_if_exists=False,
    )
    return ref


TPE = specs_pb2.SamplerSpec(
    tpe=specs_pb2.TpeSampler(seed=3, n_startup_trials=5, multivariate=True, constant_liar=True)
)


@pytest.mark.parametrize(
    ("spec", "sampler"),
    [
        (TPE, lambda: optuna.samplers.TPESampler(
            seed=3, n_startup_trials=5, multivariate=True, constant_liar=True
        )),
        (specs_pb2.SamplerSpec(cmaes=specs_pb2.CmaEsSampler(seed=3, n_startup_trials=3)),
         lambda: optuna.samplers.CmaEsSampler(seed=3, n_startup_trials=3)),
    ],
    ids=["tpe", "cmaes"],
)  # fmt: skip
def test_seeded_asks_choose_what_optuna_chooses_in_process(registry, spec, sampler):
    registry, sampling = registry
    ref = _create(registry, "parity", spec)
    registry._catalog.live(ref).study.sampler = _Refusing()
    space = SPACE if not spec.HasField("cmaes") else {k: SPACE[k] for k in ("x", "lr", "n")}
    local = optuna.create_study(sampler=sampler())
    running = []
    for i in range(25):
        (record,) = registry.ask(ref, search_space=space)
        expected = local.ask(space)
        assert record.trial.params == expected.params, f"trial {i}"
        running.append((record, expected))
        if i % 3 != 2:  # some stay running across asks, as trainers' trials do
            continue
        for record, expected in running:
            value = _value({"act": "relu", **record.trial.params})
            registry.tell(record.ref, state=TrialState.COMPLETE, values=[value])
            local.tell(expected, value)
        running.clear()
    assert sampling.pids()[0] not in (None, os.getpid())


def test_a_killed_process_is_replaced_and_no_ask_fails(registry):
    registry, sampling = registry
    ref = _create(registry, "killed", TPE)
    for _ in range(3):
        (record,) = registry.ask(ref, search_space=SPACE)
        registry.tell(record.ref, state=TrialState.COMPLETE, values=[1.0])
    (first,) = sampling.pids()
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    (record,) = registry.ask(ref, search_space=SPACE)  # sampled in the server meanwhile
    assert set(record.trial.params) == set(SPACE)
    registry.tell(record.ref, state=TrialState.COMPLETE, values=[1.0])
    registry._catalog.live(ref).study.sampler = _Refusing()
    (record,) = registry.ask(ref, search_space=SPACE)  # a new process samples it
    (second,) = sampling.pids()
    assert second not in (None, first)
    assert registry.get_study(ref).trial_count == 5


def test_a_process_that_cannot_open_the_storage_leaves_asks_to_the_server(tmp_path):
    storage = open_storage(None, data_dir=tmp_path)
    unreadable = functools.partial(open_storage, "journal:///proc/no/such/dir/x.log")
    sampling = SamplingProcesses(unreadable, 1, retry_after=60.0)
    registry = StudyRegistry(storage, sampling=sampling)
    try:
        ref = _create(registry, "fallback", TPE)
        for _ in range(2):
            (record,) = registry.ask(ref, search_space=SPACE)
            assert set(record.trial.params) == set(SPACE)
        assert sampling.pids() == [None]
    finally:
        sampling.close()
        registry.close()
        close_storage(storage)


def test_a_process_that_fails_an_ask_leaves_it_to_the_server(tmp_path, caplog):
    storage = open_storage(None, data_dir=tmp_path / "served")
    other = open_storage(None, data_dir=tmp_path / "other")  # an empty journal
    elsewhere = mirror_of(other)
    close_storage(other)
    sampling = SamplingProcesses(elsewhere, 1)  # a process reading a storage without the study
    registry = StudyRegistry(storage, sampling=sampling)
    try:
        ref = _create(registry, "stale", TPE)
        (record,) = registry.ask(ref, search_space=SPACE)
        assert set(record.trial.params) == set(SPACE)
        assert "a sampling process failed an ask" in caplog.text
    finally:
        sampling.close()
        registry.close()
        close_storage(storage)


def test_quick_samplers_and_define_by_run_sample_in_the_server(registry):
    registry, sampling = registry
    ref = _create(registry, "quick", specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=1)))
    registry.ask(ref, search_space=SPACE)
    tpe = _create(registry, "define-by-run", TPE)
    (record,) = registry.ask(tpe, search_space={})
    assert registry.suggest(record.ref, "x", SPACE["x"]) is not None
    assert sampling.pids() == [None]  # none was needed


def test_the_journal_reader_waits_for_a_line_to_be_whole(tmp_path):
    path = tmp_path / "j.log"
    writer = LocalJournalBackend(path)
    reader = JournalFileReader(path)
    writer.append_logs([{"a": 1}, {"b": 2}])
    assert list(reader.read_logs(0)) == [{"a": 1}, {"b": 2}]
    with open(path, "ab") as f:
        f.write(b'{"c":')  # a write seen half done
    assert list(reader.read_logs(2)) == []
    with open(path, "ab") as f:
        f.write(b"3}\n")
    assert list(reader.read_logs(2)) == [{"c": 3}]
    with pytest.raises(PermissionError):
        reader.append_logs([{"d": 4}])
    with pytest.raises(ValueError, match="reader is at 3"):
        reader.read_logs(0)
    reader.close()
    writer.close()


def test_through_the_server_a_tpe_study_samples_in_its_process(tmp_path):
    server = make_server("127.0.0.1:0", data_dir=tmp_path, sampling_processes=1).start()
    try:
        assert server.sampling is not None
        with Client(f"127.0.0.1:{server.port}") as client:
            study = client.create_study(name="s", sampler={"type": "tpe", "seed": 0})
            for _ in range(12):
                trial = study.ask(SPACE)
                trial.report(_value(trial.params), 0)
                study.tell(trial, _value(trial.params))
            assert server.sampling.pids()[0] not in (None, os.getpid())
            assert len(study.get_trials(states=[TrialState.COMPLETE])) == 12
    finally:
        server.stop(grace=1)
    assert server.sampling.pids() == [None]
