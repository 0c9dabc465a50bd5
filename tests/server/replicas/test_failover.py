"""Kill -9 one of two replicas on the PostgreSQL journal, ten times under load, restarting it.

Trainers reach both replicas through one round-robin target and retry UNAVAILABLE calls on the
other with the same request id. Afterwards: every acknowledged tell is in the database with its
value, no trial number was handed out twice, the trainers never saw an error, and a trial asked
on the replica about to die (and then abandoned) was reaped within two lease periods of the
kill by the replica still up.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from hposerve.client import Client, ClientConfig, FloatDistribution
from hposerve.server.domain._optuna import wrapped_backend
from hposerve.server.storage import close_storage, open_storage
from hposerve.server.storage._pg_journal import PostgresJournalBackend
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import study_service_pb2_grpc, types_pb2

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

LEASE = 4.0  # seconds: the study's lease period
KILLS = 10
TRAINERS = 4
SPACE = {"x": FloatDistribution(0.0, 1.0)}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """``hposerve serve`` on the journal, as a process that can be killed and restarted."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url, self.data_dir, self.port = url, data_dir, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "hposerve.server", "--log-level", "WARNING", "serve"]
        argv += ["--port", str(self.port), "--storage", self.url, "--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            while True:
                if self.process.poll() is not None:
                    pytest.fail(f"replica exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                try:
                    grpc.channel_ready_future(channel).result(timeout=0.5)
                    return
                except grpc.FutureTimeoutError:
                    assert time.monotonic() < deadline, "replica not serving after 60 s"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Trainer(threading.Thread):
    """Ask, report, tell in a loop; keeps what was asked and what was acknowledged."""

    def __init__(self, study: Any, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.study, self.stop_event = study, stop
        self.asked: list[int] = []
        self.acked: dict[int, float] = {}
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                trial = self.study.ask(SPACE)
                self.asked.append(trial.number)
                x = trial.params["x"]
                trial.report(x, 0)
                self.study.tell(trial, x)
                self.acked[trial.number] = x
        except BaseException as e:  # noqa: BLE001 - a trainer that stops is what we check
            self.errors.append(e)


def _orphan(replica: Replica, study: str) -> str:
    """A trial asked on ``replica`` by a trainer that then vanishes (it never heartbeats)."""
    with grpc.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
        stub = study_service_pb2_grpc.StudyServiceStub(channel)
        (trial,) = stub.AskTrials(pb.AskTrialsRequest(parent=study), timeout=30).trials
        return trial.name


def _wait_failed(replica: Replica, trial: str, deadline: float) -> float:
    """When ``trial`` was seen failed through ``replica``; fails the test past ``deadline``."""
    with grpc.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
        stub = study_service_pb2_grpc.StudyServiceStub(channel)
        while True:
            got = stub.GetTrial(pb.GetTrialRequest(name=trial), timeout=10)
            if got.state == types_pb2.FAILED:
                return time.monotonic()
            assert time.monotonic() < deadline, f"{trial} still {got.state} after 2 leases"
            time.sleep(0.1)


def test_killing_a_replica_ten_times_under_load_loses_nothing(journal_url, tmp_path):
    replicas = [Replica(journal_url, tmp_path / name) for name in "ab"]
    for replica in replicas:
        replica.start()
    target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    config = ClientConfig(load_balancing="round_robin", max_attempts=20, max_backoff=1.0)
    stop = threading.Event()
    client = Client(target, config=config)
    trainers: list[Trainer] = []
    try:
        client.create_study(
            name="failover",
            sampler={"type": "random"},
            pruner={"type": "none"},
            lease_seconds=LEASE,
        )
        trainers = [Trainer(client.get_study("failover"), stop) for _ in range(TRAINERS)]
        for trainer in trainers:
            trainer.start()
        reaped_after = []
        for kill in range(KILLS):
            victim, survivor = replicas[kill % 2], replicas[(kill + 1) % 2]
            time.sleep(0.5)  # under load
            orphan = _orphan(victim, "namespaces/default/studies/failover")
            acked_before = sum(len(t.acked) for t in trainers)
            victim.kill()
            killed = time.monotonic()
            victim.start()
            seen = _wait_failed(survivor, orphan, killed + 2 * LEASE)
            reaped_after.append(seen - killed)
            assert sum(len(t.acked) for t in trainers) > acked_before, "trainers stalled"
            assert not [e for t in trainers for e in t.errors], [t.errors for t in trainers]
        stop.set()
        for trainer in trainers:
            trainer.join(timeout=60)
        assert not [e for t in trainers for e in t.errors], [t.errors for t in trainers]
    finally:
        stop.set()
        client.close()
        for replica in replicas:
            replica.stop()

    asked = [n for t in trainers for n in t.asked]
    assert len(asked) == len(set(asked)), "a trial number was handed out twice"
    acked = {n: x for t in trainers for n, x in t.acked.items()}
    assert len(acked) > 10 * KILLS
    # What the database holds, read afresh: every acknowledged tell, with its value.
    storage = open_storage(journal_url)
    try:
        assert isinstance(wrapped_backend(storage), PostgresJournalBackend)
        study_id = storage.get_study_id_from_name("default/failover")
        trials = {t.number: t for t in storage.get_all_trials(study_id, deepcopy=False)}
    finally:
        close_storage(storage)
    assert sorted(trials) == list(range(len(trials))), "trial numbers are not dense"
    lost = [
        n for n, x in acked.items() if trials[n].state.name != "COMPLETE" or trials[n].value != x
    ]
    assert not lost, f"acknowledged tells lost: {lost[:10]}"
    print(f"{len(acked)} trials acknowledged; orphans reaped after {max(reaped_after):.1f} s max")
