"""The heartbeat thread renews leases over its own session, against a real server."""

from __future__ import annotations

import threading
import time

from hposerve.client import Client, ClientConfig
from hposerve.client._session import Session
from hposerve.v1 import study_service_pb2 as pb

LEASE = 0.5  # the server fixture reaps expired leases every 0.05 s


def test_heartbeats_travel_over_the_session_and_renew_the_lease(target, study_name, monkeypatch):
    answers: list[tuple[str, str, pb.SessionResponse]] = []  # (thread, call, response)
    call = Session.call

    def spy(self, field, request, timeout):
        response = call(self, field, request, timeout)
        answers.append((threading.current_thread().name, field, response))
        return response

    monkeypatch.setattr(Session, "call", spy)
    with Client(target, config=ClientConfig(heartbeat_interval=0.1)) as client:
        unary: list[object] = []
        stub = client._transport._stub
        heartbeat = stub.Heartbeat
        stub.Heartbeat = lambda *args, **kwargs: unary.append(args) or heartbeat(*args, **kwargs)
        study = client.create_study(name=study_name, lease_seconds=LEASE)
        trial = study.ask()
        time.sleep(3 * LEASE)  # only renewals keep the trial running this long
        beats = [(thread, response) for thread, field, response in answers if field == "heartbeat"]
        assert len(beats) >= 5
        assert {thread for thread, _ in beats} == {"hposerve-heartbeat"}
        errors = [r.error for _, r in beats if r.WhichOneof("result") == "error"]
        assert not errors, errors[0]
        assert all(
            [(lease.trial, lease.running) for lease in r.heartbeat.leases] == [(trial.name, True)]
            for _, r in beats
        )
        assert not unary  # none went as a unary RPC
        assert trial.running
        assert study.tell(trial, 1.0).state == "complete"
