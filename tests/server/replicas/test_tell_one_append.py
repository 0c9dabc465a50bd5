"""A tell that carries its trial's reports writes them and its outcome in one append to the
PostgreSQL journal, and answers as if each had been written alone."""

from __future__ import annotations

import json

import grpc
import pytest
from conftest import POSTGRES_URL

from hposerve.server import make_server
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc, types_pb2

pytestmark = pytest.mark.postgres

X = types_pb2.ParameterSpec(
    name="x", distribution=types_pb2.Distribution(float=types_pb2.FloatDistribution(high=1.0))
)


def _appends(journal_url: str) -> list[list[int]]:
    """The op codes of the journal's logs, one list per append (its first row has the id)."""
    import psycopg

    schema = journal_url.split("hposerve_schema=")[1]
    with psycopg.connect(POSTGRES_URL.replace("+psycopg", "")) as conn:
        rows = conn.execute(
            f'SELECT batch, log FROM "{schema}".hposerve_journal ORDER BY seq'
        ).fetchall()
    appends: list[list[int]] = []
    for batch, log in rows:
        if batch is not None:
            appends.append([])
        appends[-1].append(json.loads(log)["op_code"])
    return appends


@pytest.fixture
def stub(journal_url):
    server = make_server("127.0.0.1:0", storage=journal_url).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield study_service_pb2_grpc.StudyServiceStub(channel)
    finally:
        server.stop(grace=1)


@pytest.mark.parametrize("state", [types_pb2.COMPLETE, types_pb2.PRUNED])
def test_a_tell_writes_its_carried_reports_with_its_outcome_in_one_append(stub, journal_url, state):
    study = stub.CreateStudy(
        pb.CreateStudyRequest(
            parent="namespaces/default", study_id="one", sampler={"random": {}}, pruner={"none": {}}
        )
    )
    (trial,) = stub.AskTrials(pb.AskTrialsRequest(parent=study.name, search_space=[X])).trials
    before = len(_appends(journal_url))
    tell = pb.TellTrialRequest(
        trial=trial.name,
        state=state,
        values=[0.25] if state == types_pb2.COMPLETE else [],
        intermediate_values=[pb.IntermediateValue(step=s, value=1.0 / (s + 1)) for s in (0, 3, 7)],
    )
    told = stub.TellTrial(tell)
    assert _appends(journal_url)[before:] == [[7, 7, 7, 6]]  # three reports, then the state
    # A PRUNED trial takes its last report as its value, as Optuna's tell does.
    assert list(told.values) == ([0.25] if state == types_pb2.COMPLETE else [1.0 / 8])
    got = stub.GetTrial(pb.GetTrialRequest(name=trial.name))
    assert {iv.step: iv.value for iv in got.intermediate_values} == {0: 1.0, 3: 0.25, 7: 0.125}
    # A retried tell answers the same, and writes nothing.
    again = stub.TellTrial(tell)
    assert list(again.values) == list(told.values)
    assert len(_appends(journal_url)) == before + 1
