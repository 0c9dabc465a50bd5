"""The service's semantics, on both backends: studies, define-by-run and fixed-space asks,
pruning, tells, heartbeats, listing, enqueueing, user attributes, best trials."""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hposerve.v1 import specs_pb2

from .backends import Backend
from .cases import SPACE, random_sampler, refused


def test_create_get_list_delete(backend: Backend, name: str) -> None:
    study = backend.create_study(name, directions=["maximize"], sampler=random_sampler(None))
    assert study.directions == ("maximize",)
    again = backend.create_study(name, directions=["maximize"], load_if_exists=True)
    assert again.name == study.name == f"namespaces/default/studies/{name}"
    assert backend.get_study(name).sampler.HasField("random")
    assert name in {s.study for s in backend.list_studies()}
    backend.delete_study(name)
    refused("NOT_FOUND", lambda: backend.get_study(name))


def test_list_studies_pages_and_namespaces(backend: Backend) -> None:
    for i in range(5):
        backend.create_study(f"s{i}", namespace="team-a")
    backend.create_study("other", namespace="team-b")
    assert [s.study for s in backend.list_studies(namespace="team-b")] == ["other"]
    refused("NOT_FOUND", lambda: backend.get_study("s0", namespace="team-b"))
    pages = backend.study_pages(namespace="team-a", page_size=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [s.study for p in pages for s in p] == [f"s{i}" for i in range(5)]


def test_define_by_run_with_conditional_parameters(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(1))
    seen_gamma = seen_plain = False
    for _ in range(20):
        (trial,) = backend.ask(name)
        n = trial.number
        lr = backend.suggest(name, n, "lr", FloatDistribution(1e-5, 1e-1, log=True))
        layers = backend.suggest(name, n, "layers", IntDistribution(1, 8))
        sched = backend.suggest(name, n, "schedule", SPACE["schedule"])
        if sched == "step":
            gamma = backend.suggest(name, n, "gamma", FloatDistribution(0.05, 0.5))
            assert 0.05 <= gamma <= 0.5
            seen_gamma = True
        else:
            seen_plain = True
        assert 1e-5 <= lr <= 1e-1 and 1 <= layers <= 8
        backend.tell(name, n, "complete", [lr * layers])
    assert seen_gamma and seen_plain
    for t in backend.list_trials(name):
        assert ("gamma" in t.params) == (t.params["schedule"] == "step")


def test_fixed_space_ask_with_count(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(0))
    trials = backend.ask(name, SPACE, count=4)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    for t in trials:
        assert set(t.params) == set(SPACE)
        assert isinstance(t.params["layers"], int)
        # Asking again for a parameter the ask sampled returns its value.
        assert backend.suggest(name, t.number, "layers", SPACE["layers"]) == t.params["layers"]
        backend.tell(name, t.number, "complete", [t.params["lr"]])
    done = backend.list_trials(name)
    assert [t.state for t in done] == ["complete"] * 4
    assert all(t.sample_seconds > 0 for t in done)  # the sampler's own time, recorded


def test_report_returns_prune_decision_and_should_prune(backend: Backend, name: str) -> None:
    pruner = specs_pb2.PrunerSpec(threshold=specs_pb2.ThresholdPruner(upper=1.0))
    backend.create_study(name, sampler=random_sampler(0), pruner=pruner)
    (trial,) = backend.ask(name)
    assert backend.report(name, trial.number, step=0, value=0.5) is False
    assert backend.should_prune(name, trial.number) is False
    assert backend.report(name, trial.number, step=1, value=2.0) is True
    assert backend.should_prune(name, trial.number) is True
    told = backend.tell(name, trial.number, "pruned")
    assert told.state == "pruned"
    assert told.intermediate_values == {0: 0.5, 1: 2.0}


def test_tell_states_and_idempotent_retell(backend: Backend, name: str) -> None:
    backend.create_study(name)
    a, b, c = (backend.ask(name)[0].number for _ in range(3))
    assert backend.tell(name, a, "complete", [1.5]).values == (1.5,)
    assert backend.tell(name, a, "complete", [1.5]).values == (1.5,)  # the same again: fine
    assert backend.tell(name, b, "pruned").state == "pruned"
    assert backend.tell(name, c, "failed").state == "failed"
    assert [t.state for t in backend.list_trials(name)] == ["complete", "pruned", "failed"]
    assert [t.number for t in backend.list_trials(name, states=["pruned", "failed"])] == [1, 2]


def test_heartbeat_renews_lease(backend: Backend, name: str) -> None:
    backend.create_study(name, options={"lease_seconds": 30})
    (trial,) = backend.ask(name)
    first = backend.get_trial(name, trial.number).lease_expires
    assert first is not None
    renewed, missing = backend.heartbeat(name, [trial.number, 99])
    assert renewed is not None and renewed > first and missing is None
    backend.tell(name, trial.number, "complete", [1.0])
    assert backend.heartbeat(name, [trial.number]) == [None]


def test_get_and_list_trials_pages(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(None))
    for i in range(5):
        (t,) = backend.ask(name, SPACE)
        if i % 2 == 0:
            backend.tell(name, t.number, "complete", [float(i)])
        else:
            backend.tell(name, t.number, "failed")
    got = backend.get_trial(name, 2)
    assert got.number == 2 and got.values == (2.0,) and got.state == "complete"
    assert set(got.params) == set(SPACE)
    pages = backend.trial_pages(name, states=["complete"], page_size=2)
    assert [[t.number for t in p] for p in pages] == [[0, 2], [4]]
    assert len(backend.list_trials(name)) == 5


def test_enqueue_trial_is_asked_next(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(None))
    params = {"lr": 0.01, "layers": 3, "schedule": "step"}
    backend.enqueue(name, params, user_attrs={"why": "prior"})
    (trial,) = backend.ask(name, SPACE)
    assert trial.params == params
    assert trial.user_attrs["why"] == "prior"
    backend.tell(name, trial.number, "complete", [0.1])


def test_user_attrs(backend: Backend, name: str) -> None:
    backend.create_study(name)
    (trial,) = backend.ask(name)
    backend.set_user_attrs(name, trial.number, {"host": "gpu-3"})
    backend.set_user_attrs(name, trial.number, {"epochs": 12})
    backend.tell(name, trial.number, "complete", [0.25])
    assert backend.list_trials(name)[0].user_attrs == {"host": "gpu-3", "epochs": 12}


def test_best_trial_and_pareto_front(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(0))
    for v in (3.0, 1.0, 2.0):
        backend.tell(name, backend.ask(name)[0].number, "complete", [v])
    best = backend.best_trial(name)
    assert best.values == (1.0,) and best.number == 1
    assert [t.number for t in backend.pareto_front(name)] == [1]  # single-objective: the best

    mo = f"{name}-mo"
    nsga2 = specs_pb2.SamplerSpec(nsga2=specs_pb2.NsgaIISampler())
    backend.create_study(mo, directions=["minimize", "minimize"], sampler=nsga2)
    for values in ([1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0]):
        backend.tell(mo, backend.ask(mo)[0].number, "complete", values)
    front = sorted(t.number for t in backend.pareto_front(mo))
    assert front == [0, 1, 3]  # [3, 3] is dominated by [2, 2]


def test_categorical_choices_come_back_as_given(backend: Backend, name: str) -> None:
    backend.create_study(name, sampler=random_sampler(0))
    space = {"c": CategoricalDistribution([1, "two", 3.5, False, None])}
    for t in backend.ask(name, space, count=10):
        assert t.params["c"] in space["c"].choices
        assert t.distributions == space
