"""Heartbeats over a session stream answer the lease status, as the unary Heartbeat does.

``SessionRequest.heartbeat`` was routed to Heartbeat through a dispatch that read
``request.trial`` on a ``HeartbeatRequest`` that only has ``trials``: every heartbeat sent on a
session answered INTERNAL.
"""

from __future__ import annotations

from hposerve.v1 import specs_pb2, types_pb2
from hposerve.v1 import study_service_pb2 as pb

PARENT = "namespaces/default"


def _study(stub, study_id: str, sampler: specs_pb2.SamplerSpec) -> str:
    request = pb.CreateStudyRequest(
        parent=PARENT,
        study_id=study_id,
        sampler=sampler,
        options=pb.StudyOptions(lease_seconds=60),
    )
    return stub.CreateStudy(request).name


def _heartbeat(*trials: str) -> pb.SessionRequest:
    return pb.SessionRequest(heartbeat=pb.HeartbeatRequest(trials=list(trials)))


def test_heartbeat_on_a_session_renews_the_lease(stub, study_name):
    # A model-fitting sampler (TPE) and a quick one (random): the call is made on the pool for
    # the first and in place on the event loop for the second.
    samplers = {
        "tpe": specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler(seed=0)),
        "random": specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0)),
    }
    for kind, sampler in samplers.items():
        study = _study(stub, f"{study_name}-{kind}", sampler)
        (trial,) = stub.AskTrials(pb.AskTrialsRequest(parent=study)).trials
        done = stub.AskTrials(pb.AskTrialsRequest(parent=study)).trials[0]
        stub.TellTrial(pb.TellTrialRequest(trial=done.name, state=types_pb2.FAILED))
        missing = f"{study}/trials/99"
        responses = list(
            stub.Session(iter([_heartbeat(trial.name), _heartbeat(trial.name, done.name, missing)]))
        )
        assert [r.WhichOneof("result") for r in responses] == ["heartbeat", "heartbeat"]
        first, second = (r.heartbeat.leases for r in responses)
        assert [(s.trial, s.running) for s in first] == [(trial.name, True)]
        expires = first[0].expire_time.ToNanoseconds()
        assert expires >= trial.lease_expire_time.ToNanoseconds()
        assert [(s.trial, s.running) for s in second] == [
            (trial.name, True),
            (done.name, False),
            (missing, False),
        ]
        assert not second[1].HasField("expire_time")
        # The same as the unary call answers.
        unary = stub.Heartbeat(pb.HeartbeatRequest(trials=[trial.name, done.name]))
        assert [(s.trial, s.running) for s in unary.leases] == [
            (trial.name, True),
            (done.name, False),
        ]


def test_a_bad_trial_name_in_a_session_heartbeat_is_answered_in_band(stub):
    responses = list(stub.Session(iter([_heartbeat("not-a-trial"), _heartbeat()])))
    assert responses[0].WhichOneof("result") == "error"
    assert responses[0].error.code == 3  # INVALID_ARGUMENT, not INTERNAL
    assert "trials[0]" in responses[0].error.message
    assert responses[1].WhichOneof("result") == "heartbeat"
    assert list(responses[1].heartbeat.leases) == []
