"""Two replicas on the PostgreSQL journal: what one is told, the other's next ask knows."""

from __future__ import annotations

import grpc
import pytest

from hposerve.server import make_server
from hposerve.server.domain._optuna import wrapped_backend
from hposerve.server.storage import close_storage, open_storage
from hposerve.server.storage._pg_journal import PostgresJournalBackend
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc, types_pb2

pytestmark = pytest.mark.postgres

X = types_pb2.ParameterSpec(
    name="x", distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(high=1.0))
)


@pytest.fixture
def stubs(journal_url):
    """Stubs of two replicas on one PostgreSQL journal."""
    a = make_server("127.0.0.1:0", storage=journal_url).start()
    b = make_server("127.0.0.1:0", storage=journal_url).start()
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{a.port}") as ca,
            grpc.insecure_channel(f"127.0.0.1:{b.port}") as cb,
        ):
            yield (
                study_service_pb2_grpc.StudyServiceStub(ca),
                study_service_pb2_grpc.StudyServiceStub(cb),
            )
    finally:
        a.stop(grace=1)
        b.stop(grace=1)


def test_a_trial_told_on_one_replica_is_known_to_the_next_ask_on_the_other(stubs):
    stub_a, stub_b = stubs
    study = stub_a.CreateStudy(
        pb.CreateStudyRequest(parent="namespaces/default", study_id="stale", sampler={"random": {}})
    )
    for i in range(20):
        told_on, asked_on = stubs[i % 2], stubs[(i + 1) % 2]
        (trial,) = told_on.AskTrials(
            pb.AskTrialsRequest(parent=study.name, search_space=[X])
        ).trials
        assert trial.number == 2 * i
        value = 100.0 - i  # each told trial is the best so far
        told_on.TellTrial(
            pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=[value])
        )
        # Right away, on the other replica: its ask numbers after it, and what it
        # reads (the study as a sampler sees it) holds the told trial.
        (other,) = asked_on.AskTrials(
            pb.AskTrialsRequest(parent=study.name, search_space=[X])
        ).trials
        assert other.number == 2 * i + 1
        best = asked_on.GetBestTrial(pb.GetBestTrialRequest(parent=study.name))
        assert (best.number, list(best.values)) == (2 * i, [value])
        counted = asked_on.GetStudy(pb.GetStudyRequest(name=study.name))
        assert counted.complete_trial_count == i + 1
        asked_on.TellTrial(pb.TellTrialRequest(trial=other.name, state=types_pb2.FAILED))


def test_a_postgres_url_opens_the_journal(journal_url):
    storage = open_storage(journal_url)
    try:
        assert isinstance(wrapped_backend(storage), PostgresJournalBackend)
    finally:
        close_storage(storage)


def test_a_delete_retried_on_the_other_replica_answers_ok(stubs):
    stub_a, stub_b = stubs
    parent = "namespaces/default"
    study = stub_a.CreateStudy(pb.CreateStudyRequest(parent=parent, study_id="gone"))
    delete = pb.DeleteStudyRequest(name=study.name, request_id="del-1")
    stub_a.DeleteStudy(delete)
    stub_b.DeleteStudy(delete)  # the retry, after A's answer was lost: OK
    with pytest.raises(grpc.RpcError) as e:
        stub_b.DeleteStudy(pb.DeleteStudyRequest(name=study.name, request_id="del-2"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
