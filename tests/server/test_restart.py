"""Durability: a stopped or killed server comes back with every acknowledged write."""

from __future__ import annotations

import os
import signal

from support import SERVE, free_port, stop_gracefully, wait_serving

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


def test_every_acknowledged_write_survives_kill_9(tmp_path, study_name, spawn):
    data, port = tmp_path / "data", free_port()
    server = spawn([*SERVE, "--port", str(port), "--data-dir", str(data)], port=port)
    acknowledged: dict[int, float] = {}
    try:
        wait_serving(server)
        with Client(server.target) as client:
            study = client.create_study(name=study_name, sampler={"type": "random"})
            for i in range(40):
                trial = study.ask({"x": FloatDistribution(0, 1)})
                study.tell(trial, trial.params["x"] + i)
                acknowledged[trial.number] = trial.params["x"] + i
    finally:
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()

    restarted = make_server("127.0.0.1:0", data_dir=data).start()
    try:
        with Client(f"127.0.0.1:{restarted.port}") as client:
            trials = client.get_study(study_name).trials
        assert {t.number: t.value for t in trials} == acknowledged
    finally:
        restarted.stop()


def test_sigterm_stops_gracefully(tmp_path, spawn):
    port = free_port()
    server = spawn([*SERVE, "--port", str(port), "--data-dir", str(tmp_path / "data")], port=port)
    wait_serving(server)
    stop_gracefully(server)
    assert "stopped" in server.output()
