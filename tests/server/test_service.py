"""The client over the real server, and what only a real server has (health).

What each RPC means is the conformance suite's (tests/server/conformance), run against the
domain and through gRPC.
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hposerve.client import (
    CategoricalDistribution,
    Client,
    ClientConfig,
    FloatDistribution,
    IntDistribution,
    NotFound,
    TrialPruned,
)

SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "layers": IntDistribution(1, 8),
    "schedule": CategoricalDistribution(["cosine", "step", "warmup_cosine"]),
}


def test_the_client_drives_every_study_call(target, study_name):
    # The semantics are the conformance suite's (tests/server/conformance); this walks the
    # client's own objects over the real server once.
    with Client(target, config=ClientConfig(namespace="team-a")) as client:
        study = client.create_study(
            name=study_name,
            sampler={"type": "random", "seed": 0},
            pruner={"type": "threshold", "upper": 1.0},
        )
        assert study.directions == ["minimize"]
        again = client.create_study(name=study_name, load_if_exists=True)
        assert again.resource_name == f"namespaces/team-a/studies/{study_name}"
        assert client.get_study(study_name).proto.sampler.HasField("random")
        assert study_name in {s.name for s in client.list_studies()}

        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.suggest_categorical("kind", ["a", "b"]) == "b":
            trial.suggest_int("n", 1, 3)
        assert trial.report(0.5, 0) is False and trial.should_prune() is False
        assert trial.report(2.0, 1) is True and trial.should_prune() is True
        assert study.tell(trial, state="pruned").intermediate_values == {0: 0.5, 1: 2.0}

        batch = study.ask_batch(SPACE, 2)
        assert [t.number for t in batch] == [1, 2]
        assert batch[0].suggest_int("layers", 1, 8) == batch[0].params["layers"]
        batch[0].set_user_attr("host", "gpu-3")
        assert study.tell(batch[0], x).values == [x]
        study.tell(batch[1], state="failed")

        study.enqueue_trial({"lr": 0.01, "layers": 3, "schedule": "step"}, user_attrs={"why": "p"})
        queued = study.ask(SPACE)
        assert queued.params == {"lr": 0.01, "layers": 3, "schedule": "step"}
        assert queued.user_attrs["why"] == "p"
        study.tell(queued, 0.1)

        assert [t.state for t in study.trials] == ["pruned", "complete", "failed", "complete"]
        assert [t.number for t in study.get_trials(states=["pruned", "failed"])] == [0, 2]
        assert study.trials[1].user_attrs == {"host": "gpu-3"}
        assert study.best_value == min(x, 0.1) and len(study.best_trials) == 1
        client.delete_study(study_name)
        with pytest.raises(NotFound):
            client.get_study(study_name)


def test_optimize_runs_an_optuna_style_objective(client, study_name):
    study = client.create_study(
        name=study_name,
        sampler={"type": "tpe", "seed": 0},
        pruner={"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    )

    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        trial.set_user_attr("number_seen", trial.number)
        for step in range(5):
            loss = (x - 2) ** 2 + 1.0 / (step + 1)
            trial.report(loss, step)
            if trial.should_prune():
                raise TrialPruned()
        assert trial.params["x"] == x
        return (x - 2) ** 2

    study.optimize(objective, n_trials=25)
    trials = study.trials
    assert len(trials) == 25
    assert all(t.state in ("complete", "pruned") for t in trials)
    assert all(t.user_attrs["number_seen"] == t.number for t in trials)
    assert study.best_value < 1.0
    assert study.best_params["x"] == study.best_trial.params["x"]


def test_health_service_serving(target):
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "hposerve.v1.StudyService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            assert status == health_pb2.HealthCheckResponse.SERVING
