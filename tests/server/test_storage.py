"""Storages: every kind of URL keeps a study across a restart; replicas share one PostgreSQL;
the embedded journal is locked, drops a torn last line and refuses a corrupt one."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from hposerve.client import Client, FloatDistribution
from hposerve.server import make_server, open_storage
from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.storage._journal import StorageLocked
from hposerve.server.storage._open import JOURNAL_FILE, close_storage
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc, types_pb2

# As in tests/conftest.py, which is not importable as a module.
POSTGRES_URL = os.environ.get(
    "HPOSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HPOSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

SPACE = {"x": FloatDistribution(0.0, 1.0)}


@contextmanager
def serving(**kwargs: Any) -> Iterator[Any]:
    srv = make_server("127.0.0.1:0", reap_interval=0.05, **kwargs).start()
    try:
        yield srv
    finally:
        srv.stop(grace=1)


@contextmanager
def stub_for(srv: Any) -> Iterator[study_service_pb2_grpc.StudyServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
        yield study_service_pb2_grpc.StudyServiceStub(channel)


def unique(prefix: str = "st") -> str:
    # Shared databases outlive a test run: never reuse a name.
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def summary(study: Any) -> list[tuple[Any, ...]]:
    return [
        (t.number, t.state, t.values, t.params, t.intermediate_values, t.user_attrs)
        for t in study.trials
    ]


def fill(study: Any) -> int:
    """A few trials in every state; returns the number of the one left running."""
    for i in range(3):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x + 1, 0)
        trial.report(x + 0.5, 1)
        trial.set_user_attr("i", i)
        study.tell(trial, x)
    pruned = study.ask(SPACE)
    pruned.report(9.0, 0)
    study.tell(pruned, state="pruned")
    study.tell(study.ask(SPACE), state="failed")
    running = study.ask()
    running.suggest_float("x", 0.0, 1.0)
    running.report(0.75, 0)
    study.enqueue_trial({"x": 0.25})
    return running.number


# -- every storage URL keeps a study across a restart --------------------------------------------

URLS = [
    pytest.param(lambda tmp: f"sqlite:///{tmp}/s.db", id="sqlite"),
    pytest.param(lambda tmp: f"journal://{tmp}/j.log", id="journal-file"),
    pytest.param(lambda tmp: POSTGRES_URL, id="postgres", marks=pytest.mark.postgres),
    pytest.param(lambda tmp: REDIS_URL, id="redis", marks=pytest.mark.redis),
    pytest.param(lambda tmp: None, id="embedded"),
]


@pytest.mark.parametrize("make_url", URLS)
def test_storage_keeps_studies_across_a_restart(tmp_path, make_url: Callable[[Path], str]):
    url = make_url(tmp_path)
    kwargs: dict[str, Any] = {"storage": url, "data_dir": tmp_path / "data"}
    name = unique()
    try:
        with serving(**kwargs) as srv, Client(f"127.0.0.1:{srv.port}") as client:
            study = client.create_study(
                name=name,
                sampler={"type": "random", "seed": 3},
                pruner={"type": "median", "n_warmup_steps": 1},
                lease_seconds=120,
            )
            running = fill(study)
            before = summary(study)
            best = study.best_trial

        with serving(**kwargs) as srv, Client(f"127.0.0.1:{srv.port}") as client:
            study = client.get_study(name)
            assert study.proto.sampler.random.seed == 3
            assert study.proto.pruner.median.n_warmup_steps == 1
            assert study.lease_seconds == 120
            assert summary(study) == before
            assert study.best_trial.number == best.number
            assert [t.state for t in study.trials] == [
                "complete",
                "complete",
                "complete",
                "pruned",
                "failed",
                "running",
                "waiting",
            ]
            # The running trial goes on, the waiting one is asked next, numbering continues.
            assert study.tell(running, 0.5).state == "complete"
            assert study.ask(SPACE).params == {"x": 0.25}
            assert study.ask().number == running + 2
            assert name in {s.name for s in client.list_studies()}
            if url in (POSTGRES_URL, REDIS_URL):
                client.delete_study(name)
    finally:
        if url in (POSTGRES_URL, REDIS_URL):
            _delete_quietly(url, name)


def _delete_quietly(url: str, name: str) -> None:
    storage = open_storage(url)
    try:
        storage.delete_study(storage.get_study_id_from_name(f"default/{name}"))
    except KeyError:
        pass  # deleted by the test already
    finally:
        close_storage(storage)


@pytest.mark.parametrize(
    "url",
    ["ftp://host/x", "mongodb://127.0.0.1/db", "file:///tmp/x.db", "s3://bucket/key", "nonsense"],
)
def test_unsupported_storage_scheme(tmp_path, url):
    scheme = url.split(":", 1)[0]
    with pytest.raises(InvalidArgument, match=f"unsupported storage URL scheme '{scheme}'") as exc:
        open_storage(url)
    assert exc.value.field == "storage"
    with pytest.raises(InvalidArgument, match="sqlite:///"):
        make_server("127.0.0.1:0", storage=url, data_dir=tmp_path)
    assert not (tmp_path / JOURNAL_FILE).exists()


def test_journal_url_without_a_path():
    with pytest.raises(InvalidArgument, match="journal:///path"):
        open_storage("journal://")


# -- replicas on one PostgreSQL -------------------------------------------------------------------


@pytest.fixture
def replicas() -> Iterator[tuple[Any, Any]]:
    """Two servers on one PostgreSQL database, each with a stub."""
    with (
        serving(storage=POSTGRES_URL) as a,
        serving(storage=POSTGRES_URL) as b,
        stub_for(a) as stub_a,
        stub_for(b) as stub_b,
    ):
        yield stub_a, stub_b


@pytest.fixture
def shared_study(replicas) -> Iterator[str]:
    stub_a, _ = replicas
    name = unique("replica")
    study = stub_a.CreateStudy(
        pb.CreateStudyRequest(
            parent="namespaces/default",
            study_id=name,
            sampler={"random": {}},  # unseeded: the replicas' samplers differ
            pruner={"none": {}},
        )
    )
    try:
        yield study.name
    finally:
        try:
            stub_a.DeleteStudy(pb.DeleteStudyRequest(name=study.name))
        except grpc.RpcError:
            _delete_quietly(POSTGRES_URL, name)


def _x(low: float = 0.0, high: float = 1.0) -> types_pb2.ParameterSpec:
    return types_pb2.ParameterSpec(
        name="x",
        distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(low=low, high=high)),
    )


@pytest.mark.postgres
def test_replicas_see_each_others_trials(replicas, shared_study):
    stub_a, stub_b = replicas
    # B learns of the study A created.
    assert stub_b.GetStudy(pb.GetStudyRequest(name=shared_study)).trial_count == 0
    asked = stub_a.AskTrials(
        pb.AskTrialsRequest(parent=shared_study, search_space=[_x()], count=3)
    ).trials
    assert [t.number for t in asked] == [0, 1, 2]

    # Told on B, by name, although A handed them out.
    for i, trial in enumerate(asked):
        told = stub_b.TellTrial(
            pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[float(i)])
        )
        assert told.state == types_pb2.COMPLETE and told.params == trial.params

    listed_b = stub_b.ListTrials(pb.ListTrialsRequest(parent=shared_study)).trials
    assert [(t.number, list(t.values)) for t in listed_b] == [(0, [0.0]), (1, [1.0]), (2, [2.0])]
    listed_a = stub_a.ListTrials(pb.ListTrialsRequest(parent=shared_study)).trials
    assert list(listed_a) == list(listed_b)

    # Each samples knowing the other's trials: numbers never collide.
    on_b = stub_b.AskTrials(pb.AskTrialsRequest(parent=shared_study, search_space=[_x()])).trials
    on_a = stub_a.AskTrials(pb.AskTrialsRequest(parent=shared_study, search_space=[_x()])).trials
    assert [on_b[0].number, on_a[0].number] == [3, 4]
    best = stub_a.GetBestTrial(pb.GetBestTrialRequest(parent=shared_study))
    assert best.number == 0
    study_b = stub_b.GetStudy(pb.GetStudyRequest(name=shared_study))
    assert (study_b.trial_count, study_b.complete_trial_count) == (5, 3)

    # A finished trial is finished for both: B cannot tell it another outcome.
    with pytest.raises(grpc.RpcError) as exc:
        stub_b.TellTrial(
            pb.TellTrialRequest(trial=asked[0].name, state=types_pb2.COMPLETE, values=[7.0])
        )
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.postgres
def test_replicas_share_a_define_by_run_trial(replicas, shared_study):
    # With round-robin load balancing, one trainer's calls land on either replica.
    stub_a, stub_b = replicas
    (trial,) = stub_a.AskTrials(pb.AskTrialsRequest(parent=shared_study)).trials
    x_b = stub_b.SuggestParameter(pb.SuggestParameterRequest(trial=trial.name, parameter=_x()))
    stub_b.ReportIntermediateValue(
        pb.ReportIntermediateValueRequest(trial=trial.name, step=0, value=1.0)
    )
    stub_a.ReportIntermediateValue(
        pb.ReportIntermediateValueRequest(trial=trial.name, step=1, value=0.5)
    )
    beat = stub_b.Heartbeat(pb.HeartbeatRequest(trials=[trial.name]))
    assert beat.leases[0].running
    told = stub_a.TellTrial(
        pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[0.5])
    )
    assert [p.value for p in told.params] == [x_b.value]
    assert [(v.step, v.value) for v in told.intermediate_values] == [(0, 1.0), (1, 0.5)]


@pytest.mark.postgres
def test_replicas_agree_on_a_parameter_suggested_on_the_other(replicas, shared_study):
    stub_a, stub_b = replicas
    (trial,) = stub_a.AskTrials(pb.AskTrialsRequest(parent=shared_study)).trials
    # A has a live optuna.Trial for it (it asked it); B suggests x.
    x_b = stub_b.SuggestParameter(pb.SuggestParameterRequest(trial=trial.name, parameter=_x()))
    # Asking A for x again must give B's value, as any repeated suggest does.
    x_a = stub_a.SuggestParameter(pb.SuggestParameterRequest(trial=trial.name, parameter=_x()))
    assert x_a.value == x_b.value
    got = stub_b.GetTrial(pb.GetTrialRequest(name=trial.name))
    assert [p.value for p in got.params] == [x_b.value]


# -- the embedded journal -------------------------------------------------------------------------


def test_a_second_server_on_the_same_data_dir_is_refused(server, tmp_path, client, study_name):
    study = client.create_study(name=study_name)
    with pytest.raises(StorageLocked, match="in use by another hposerve server"):
        make_server("127.0.0.1:0", data_dir=tmp_path / "data")
    with pytest.raises(StorageLocked):  # the failed attempt did not release the first's lock
        open_storage(None, data_dir=tmp_path / "data")
    # The first server is unaffected.
    assert study.tell(study.ask(), 1.0).state == "complete"
    server.stop(grace=1)
    # Once it stops, the data directory is free again.
    with serving(data_dir=tmp_path / "data") as again, Client(f"127.0.0.1:{again.port}") as c:
        assert [t.values for t in c.get_study(study_name).trials] == [[1.0]]


def _journal_with_trials(data: Path, name: str, n: int) -> list[tuple[Any, ...]]:
    with serving(data_dir=data) as srv, Client(f"127.0.0.1:{srv.port}") as client:
        study = client.create_study(name=name, sampler={"type": "random", "seed": 0})
        for i in range(n):
            trial = study.ask(SPACE)
            trial.report(float(i), 0)
            study.tell(trial, float(i))
        return summary(study)


def test_torn_last_line_is_dropped(tmp_path, study_name):
    data = tmp_path / "data"
    before = _journal_with_trials(data, study_name, 3)
    journal = data / JOURNAL_FILE
    intact = journal.read_bytes()
    assert intact.endswith(b"\n")
    with journal.open("ab") as f:
        f.write(b'{"op_code": 5, "wor')  # a write cut short by a power loss

    with serving(data_dir=data) as srv, Client(f"127.0.0.1:{srv.port}") as client:
        assert journal.read_bytes() == intact  # dropped on open
        study = client.get_study(study_name)
        assert summary(study) == before
        # Writes go on after the intact part, not glued to the torn bytes.
        trial = study.ask(SPACE)
        study.tell(trial, 9.0)
        after = summary(study)
    with serving(data_dir=data) as srv, Client(f"127.0.0.1:{srv.port}") as client:
        assert summary(client.get_study(study_name)) == after


@pytest.mark.parametrize(
    "garbage",
    [b'{"op_code": 5, "wor\n', b"not json at all\n", b"\x00\x00\x00\n"],
    ids=["torn", "text", "zeros"],
)
def test_corrupt_line_in_the_middle_is_refused(tmp_path, study_name, garbage):
    data = tmp_path / "data"
    _journal_with_trials(data, study_name, 2)
    journal = data / JOURNAL_FILE
    lines = journal.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    journal.write_bytes(b"".join([*lines[:middle], garbage, *lines[middle:]]))
    with pytest.raises(ValueError, match=f"line {middle + 1} is corrupt"):
        open_storage(None, data_dir=data)
    # Nothing was dropped or rewritten: the file is as it was found.
    assert journal.read_bytes().count(b"\n") == len(lines) + 1


def test_corrupt_journal_can_be_retried_in_the_same_process(tmp_path, study_name):
    data = tmp_path / "data"
    _journal_with_trials(data, study_name, 1)
    journal = data / JOURNAL_FILE
    good = journal.read_bytes()
    journal.write_bytes(b"garbage\n" + good)
    with pytest.raises(ValueError):
        open_storage(None, data_dir=data)
    journal.write_bytes(good)  # repaired by hand
    close_storage(open_storage(None, data_dir=data))  # the failed open released its lock


@pytest.mark.postgres
def test_report_step_beyond_int32_on_postgres(replicas, shared_study):
    # Optuna's schema keeps steps in a 32-bit INTEGER column; the journal takes any int64.
    stub_a, _ = replicas
    (trial,) = stub_a.AskTrials(pb.AskTrialsRequest(parent=shared_study)).trials
    request = pb.ReportIntermediateValueRequest(trial=trial.name, step=2**31, value=1.0)
    with pytest.raises(grpc.RpcError) as exc:
        stub_a.ReportIntermediateValue(request)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()


@pytest.mark.postgres
def test_replicas_opening_a_fresh_database_at_once_both_open_it():
    # Both race to create Optuna's schema; the one that loses must open it, not fail.
    import psycopg

    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    database = f"hposerve_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + database

    def open_at_once(barrier: threading.Barrier) -> Any:
        barrier.wait()
        return open_storage(url)

    try:
        for _ in range(3):  # the race is not won the same way every time
            with ThreadPoolExecutor(2) as pool:  # map raises what either thread raised
                opened = list(pool.map(open_at_once, [threading.Barrier(2)] * 2))
            for storage in opened:
                close_storage(storage)
            with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
