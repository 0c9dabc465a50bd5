"""Every RPC through the real server, via the client and, where the client hides it, the stub."""

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
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2

SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "layers": IntDistribution(1, 8),
    "schedule": CategoricalDistribution(["cosine", "step", "warmup_cosine"]),
}


def test_create_get_list_delete(client, study_name):
    study = client.create_study(name=study_name, direction="maximize", sampler={"type": "random"})
    assert study.directions == ["maximize"]
    again = client.create_study(name=study_name, direction="maximize", load_if_exists=True)
    assert again.resource_name == study.resource_name == f"namespaces/default/studies/{study_name}"
    assert client.get_study(study_name).proto.sampler.HasField("random")
    names = {s.name for s in client.list_studies()}
    assert study_name in names
    client.delete_study(study_name)
    with pytest.raises(NotFound):
        client.get_study(study_name)


def test_list_studies_pages_and_namespaces(target, stub):
    with Client(target, config=ClientConfig(namespace="team-a")) as a:
        for i in range(5):
            a.create_study(name=f"s{i}")
    with Client(target, config=ClientConfig(namespace="team-b")) as b:
        b.create_study(name="other")
        assert [s.name for s in b.list_studies()] == ["other"]
        with pytest.raises(NotFound):
            b.get_study("s0")
    seen, token = [], ""
    while True:
        page = stub.ListStudies(
            pb.ListStudiesRequest(parent="namespaces/team-a", page_size=2, page_token=token)
        )
        assert len(page.studies) <= 2
        seen += [s.name.rsplit("/", 1)[-1] for s in page.studies]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"s{i}" for i in range(5)]


def test_define_by_run_with_conditional_parameters(client, study_name):
    study = client.create_study(name=study_name, sampler={"type": "random", "seed": 1})
    seen_gamma = seen_plain = False
    for _ in range(20):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        layers = trial.suggest_int("layers", 1, 8)
        sched = trial.suggest_categorical("schedule", ["cosine", "step", "warmup_cosine"])
        if sched == "step":
            gamma = trial.suggest_float("gamma", 0.05, 0.5)
            assert 0.05 <= gamma <= 0.5
            seen_gamma = True
        else:
            seen_plain = True
        assert 1e-5 <= lr <= 1e-1 and 1 <= layers <= 8
        study.tell(trial, lr * layers)
    assert seen_gamma and seen_plain
    for t in study.trials:
        assert ("gamma" in t.params) == (t.params["schedule"] == "step")


def test_fixed_space_ask_with_count(client, study_name):
    study = client.create_study(name=study_name, sampler={"type": "random", "seed": 0})
    trials = study.ask_batch(SPACE, 4)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    for t in trials:
        assert set(t.params) == set(SPACE)
        assert isinstance(t.params["layers"], int)
        assert t.suggest_int("layers", 1, 8) == t.params["layers"]
        study.tell(t, t.params["lr"])
    assert [t.state for t in study.trials] == ["complete"] * 4
    assert all(t.sample_seconds > 0 for t in study.trials)  # the sampler's own time, recorded


def test_report_returns_prune_decision_and_should_prune(client, study_name, stub):
    study = client.create_study(
        name=study_name,
        sampler={"type": "random", "seed": 0},
        pruner={"type": "threshold", "upper": 1.0},
    )
    trial = study.ask()
    assert trial.report(0.5, 0) is False
    assert trial.should_prune() is False
    assert trial.report(2.0, 1) is True
    assert trial.should_prune() is True
    raw = stub.ShouldPrune(pb.ShouldPruneRequest(trial=trial.name))
    assert raw.should_prune is True
    told = study.tell(trial, state="pruned")
    assert told.state == "pruned"
    assert told.intermediate_values == {0: 0.5, 1: 2.0}


def test_tell_states_and_idempotent_retell(client, study_name):
    study = client.create_study(name=study_name)
    a, b, c = study.ask(), study.ask(), study.ask()
    assert study.tell(a, 1.5).values == [1.5]
    assert study.tell(a, 1.5).values == [1.5]  # same outcome again: not an error
    assert study.tell(b, state="pruned").state == "pruned"
    assert study.tell(c, state="failed").state == "failed"
    states = [t.state for t in study.get_trials()]
    assert states == ["complete", "pruned", "failed"]
    assert [t.number for t in study.get_trials(states=["pruned", "failed"])] == [1, 2]


def test_heartbeat_renews_lease(client, study_name, stub):
    study = client.create_study(name=study_name, lease_seconds=30)
    trial = study.ask()
    first = stub.GetTrial(pb.GetTrialRequest(name=trial.name)).lease_expire_time.ToNanoseconds()
    beat = stub.Heartbeat(pb.HeartbeatRequest(trials=[trial.name, trial.name[:-1] + "99"]))
    assert [lease.running for lease in beat.leases] == [True, False]
    assert beat.leases[0].expire_time.ToNanoseconds() > first
    study.tell(trial, 1.0)
    beat = stub.Heartbeat(pb.HeartbeatRequest(trials=[trial.name]))
    assert beat.leases[0].running is False


def test_get_and_list_trials_pages(client, study_name, stub):
    study = client.create_study(name=study_name, sampler={"type": "random"})
    for i in range(5):
        t = study.ask(SPACE)
        study.tell(t, float(i)) if i % 2 == 0 else study.tell(t, state="failed")
    got = stub.GetTrial(pb.GetTrialRequest(name=f"{study.resource_name}/trials/2"))
    assert got.number == 2 and list(got.values) == [2.0] and got.state == types_pb2.COMPLETE
    assert {p.name for p in got.params} == set(SPACE)
    numbers, token = [], ""
    while True:
        page = stub.ListTrials(
            pb.ListTrialsRequest(
                parent=study.resource_name,
                states=[types_pb2.COMPLETE],
                page_size=2,
                page_token=token,
            )
        )
        numbers += [t.number for t in page.trials]
        token = page.next_page_token
        if not token:
            break
    assert numbers == [0, 2, 4]
    assert len(study.trials) == 5


def test_enqueue_trial_is_asked_next(client, study_name):
    study = client.create_study(name=study_name, sampler={"type": "random"})
    study.enqueue_trial({"lr": 0.01, "layers": 3, "schedule": "step"}, user_attrs={"why": "prior"})
    trial = study.ask(SPACE)
    assert trial.params == {"lr": 0.01, "layers": 3, "schedule": "step"}
    assert trial.user_attrs["why"] == "prior"
    study.tell(trial, 0.1)


def test_user_attrs(client, study_name):
    study = client.create_study(name=study_name)
    trial = study.ask()
    trial.set_user_attr("host", "gpu-3")
    trial.set_user_attr("epochs", 12)
    study.tell(trial, 0.25)
    frozen = study.trials[0]
    assert frozen.user_attrs == {"host": "gpu-3", "epochs": 12}


def test_best_trial_and_pareto_front(client, study_name):
    single = client.create_study(name=study_name, sampler={"type": "random", "seed": 0})
    for v in (3.0, 1.0, 2.0):
        single.tell(single.ask(), v)
    assert single.best_value == 1.0 and single.best_trial.number == 1

    multi = client.create_study(
        name=study_name + "-mo", directions=["minimize", "minimize"], sampler={"type": "nsga2"}
    )
    for values in ([1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0]):
        multi.tell(multi.ask(), values)
    front = sorted(t.number for t in multi.best_trials)
    assert front == [0, 1, 3]  # [3, 3] is dominated by [2, 2]


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
    assert {t.state for t in trials} <= {"complete", "pruned"}
    assert all(t.user_attrs["number_seen"] == t.number for t in trials)
    assert study.best_value < 1.0
    assert study.best_params["x"] == study.best_trial.params["x"]


def test_health_service_serving(target):
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "hposerve.v1.StudyService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            assert status == health_pb2.HealthCheckResponse.SERVING
