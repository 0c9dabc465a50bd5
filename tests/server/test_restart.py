"""Durability: a stopped or killed server comes back with every acknowledged write."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hposerve.client import Client, FloatDistribution
from hposerve.server import make_server


def test_restart_keeps_studies_and_trials(tmp_path, study_name):
    data = tmp_path / "data"
    server = make_server("127.0.0.1:0", data_dir=data).start()
    with Client(f"127.0.0.1:{server.port}") as client:
        study = client.create_study(
            name=study_name, sampler={"type": "tpe", "seed": 1}, pruner={"type": "median"}
        )
        for i in range(12):
            trial = study.ask()
            x = trial.suggest_float("x", -3, 3)
            trial.report(x * x + 1, 0)
            trial.set_user_attr("i", i)
            study.tell(trial, x * x)
        running = study.ask()
        running.suggest_float("x", -3, 3)
        before = [(t.number, t.state, t.values, t.params, t.user_attrs) for t in study.trials]
        best = study.best_value
    server.stop()

    server = make_server("127.0.0.1:0", data_dir=data).start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            study = client.get_study(study_name)
            assert study.proto.sampler.tpe.seed == 1 and study.proto.pruner.HasField("median")
            after = [(t.number, t.state, t.values, t.params, t.user_attrs) for t in study.trials]
            assert after == before
            assert study.best_value == best
            # The trial that was running goes on under a fresh lease and can be finished.
            assert study.tell(running.number, 0.5).state == "complete"
            # And the study continues where it was.
            trial = study.ask()
            assert trial.number == 13
            study.tell(trial, trial.suggest_float("x", -3, 3) ** 2)
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_serving(target: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server at {target} did not start")
            time.sleep(0.1)


def test_every_acknowledged_write_survives_kill_9(tmp_path, study_name):
    data, port = tmp_path / "data", _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hposerve.server",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = f"127.0.0.1:{port}"
    acknowledged: dict[int, float] = {}
    try:
        _wait_serving(target)
        with Client(target) as client:
            study = client.create_study(name=study_name, sampler={"type": "random"})
            for i in range(40):
                trial = study.ask({"x": FloatDistribution(0, 1)})
                study.tell(trial, trial.params["x"] + i)
                acknowledged[trial.number] = trial.params["x"] + i
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    server = make_server("127.0.0.1:0", data_dir=data).start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            trials = client.get_study(study_name).trials
        assert {t.number: t.value for t in trials} == acknowledged
    finally:
        server.stop()


def test_sigterm_stops_gracefully(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hposerve.server",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_serving(f"127.0.0.1:{port}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert b"stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
