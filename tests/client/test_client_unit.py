"""Unit tests of the thin client against a small fake StudyService run in-process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import grpc
import pytest
from client_fakes import FakeStudyService, serving

from hposerve.client import (
    AlreadyExists,
    CategoricalDistribution,
    Client,
    ClientConfig,
    DeadlineExceeded,
    FailedPrecondition,
    FloatDistribution,
    FrozenTrial,
    HposerveError,
    IntDistribution,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ServerError,
    TrialPruned,
    Unauthenticated,
    Unavailable,
    pruner_spec,
    sampler_spec,
)
from hposerve.client._distributions import (
    distribution_from_proto,
    distribution_to_proto,
    value_from_proto,
    value_to_proto,
)
from hposerve.v1 import specs_pb2, types_pb2
from hposerve.v1 import study_service_pb2 as pb


@pytest.fixture
def fake() -> Iterator[tuple[FakeStudyService, str]]:
    service = FakeStudyService()
    with serving(service) as target:
        yield service, target


FAST = ClientConfig(initial_backoff=0.01, max_backoff=0.02, timeout=5.0, ask_timeout=20.0)


@pytest.fixture
def client(fake: tuple[FakeStudyService, str]) -> Iterator[Client]:
    with Client(fake[1], config=FAST) as c:
        yield c


@pytest.fixture
def service(fake: tuple[FakeStudyService, str]) -> FakeStudyService:
    return fake[0]


# Transport: retries, deadlines, metadata, errors.


def test_unavailable_is_retried_with_the_same_request_id(service, client):
    service.failures["CreateStudy"] = [grpc.StatusCode.UNAVAILABLE] * 2
    study = client.create_study(name="s", direction="maximize")
    requests = service.calls_of("CreateStudy")
    assert len(requests) == 3
    assert requests[0].request_id and len({r.request_id for r in requests}) == 1
    assert study.name == "s" and study.resource_name == "namespaces/default/studies/s"
    assert study.directions == ["maximize"]


def test_each_mutating_call_gets_a_fresh_request_id_unless_given(service, client):
    study = client.create_study(name="s")
    study.ask()
    study.ask(request_id="mine")
    ids = [r.request_id for r in service.calls_of("AskTrials")]
    assert ids[0] and ids[0] != service.calls_of("CreateStudy")[0].request_id
    assert ids[1] == "mine"


def test_unavailable_gives_up_after_max_attempts(fake):
    service, target = fake
    service.failures["GetStudy"] = [grpc.StatusCode.UNAVAILABLE] * 10
    config = ClientConfig(max_attempts=3, initial_backoff=0.001, max_backoff=0.001)
    with Client(target, config=config) as client, pytest.raises(Unavailable) as info:
        client.get_study("s")
    assert len(service.calls_of("GetStudy")) == 3
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_invalid_argument_is_not_retried(service, client):
    service.failures["CreateStudy"] = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(InvalidArgument):
        client.create_study(name="s")
    assert len(service.calls_of("CreateStudy")) == 1


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExists),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.INTERNAL, ServerError),
        (grpc.StatusCode.UNIMPLEMENTED, ServerError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted),
    ],
)
def test_status_codes_map_to_our_exceptions(fake, code, error_class):
    service, target = fake
    service.failures["GetStudy"] = [code] * 10
    config = ClientConfig(max_attempts=2, initial_backoff=0.001, max_backoff=0.001)
    with Client(target, config=config) as client:
        try:
            client.get_study("s")
        except grpc.RpcError:  # pragma: no cover - the point of the test
            pytest.fail("a raw grpc.RpcError leaked")
        except HposerveError as error:
            assert type(error) is error_class
            assert error.code == code
            assert error.message == f"planned {code.name}"
        else:  # pragma: no cover
            pytest.fail("no error raised")


def test_status_details_become_field_violations(fake):
    status_pb2 = pytest.importorskip("google.rpc.status_pb2")
    error_details_pb2 = pytest.importorskip("google.rpc.error_details_pb2")
    rpc_status = pytest.importorskip("grpc_status.rpc_status")
    service, target = fake

    def create(request, context):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="sampler.tpe.n_startup_trials", description="must be >= 0"
                )
            ]
        )
        status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="bad")
        status.details.add().Pack(bad)
        context.abort_with_status(rpc_status.to_status(status))

    service.hooks["CreateStudy"] = create
    with Client(target, config=FAST) as client, pytest.raises(InvalidArgument) as info:
        client.create_study(name="s")
    assert info.value.message == "bad"
    assert info.value.field_violations == [("sampler.tpe.n_startup_trials", "must be >= 0")]
    assert "must be >= 0" in str(info.value)


def test_every_call_has_a_deadline_and_the_metadata(fake):
    service, target = fake
    config = ClientConfig(
        timeout=7.0,
        ask_timeout=40.0,
        metadata=(("x-team", "vision"),),
        heartbeat_interval=0.02,
        sessions=False,  # every unary RPC is exercised here; sessions are tested elsewhere
    )
    with Client(target, config=config) as client:
        study = client.create_study(name="s")
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        trial.should_prune()
        trial.report(0.5, 0)
        trial.set_user_attr("k", "v")
        while not service.calls_of("Heartbeat"):
            time.sleep(0.01)
        study.tell(trial, 0.5)
        study.enqueue_trial({"x": 0.5})
        client.get_study("s")
        assert len(client.list_studies()) == 1
        assert len(study.trials) == 1
        assert study.get_trial(0).value == 0.5
        assert study.best_trial.number == 0
        assert len(study.best_trials) == 1
        study.set_user_attr("n", 3)
        assert study.user_attrs == {"n": 3}  # an int stays an int
        study.add_trial(study.get_trial(0))
        study.optimize(lambda t: 0.25, n_trials=2, search_space={"x": FloatDistribution(0, 1)})
        study.delete()
    # A batch of reports is sent on a session only (unary only to resend one a broken stream
    # left unanswered: tests/server/test_sessions.py).
    all_rpcs = set(pb.DESCRIPTOR.services_by_name["StudyService"].methods_by_name) - {
        "Session",
        "ReportIntermediateValues",
    }
    assert set(service.methods()) == all_rpcs
    for method, _, remaining, metadata in service.calls:
        limit = 40.0 if method in ("AskTrials", "SuggestParameter", "TellAndAsk") else 7.0
        # A little slack: the server's clock reading is not the client's.
        assert remaining is not None and 0 < remaining <= limit + 0.5, method
        if limit == 40.0:
            assert remaining > 7.0, method
        assert metadata.get("x-team") == "vision", method


def test_deadline_exceeded_is_raised_and_not_retried(fake):
    service, target = fake

    service.hooks["GetStudy"] = lambda request, context: time.sleep(0.5)
    config = ClientConfig(timeout=0.1)
    with Client(target, config=config) as client, pytest.raises(DeadlineExceeded):
        client.get_study("s")
    assert len(service.calls_of("GetStudy")) == 1


def test_calls_after_close_raise_our_error(fake):
    _, target = fake
    client = Client(target)
    client.close()
    client.close()  # idempotent
    with pytest.raises(HposerveError):
        client.get_study("s")


def test_round_robin_sets_the_service_config(fake):
    service, target = fake
    with Client(target, config=ClientConfig(load_balancing="round_robin")) as client:
        client.create_study(name="s")
    assert len(service.calls_of("CreateStudy")) == 1


# Studies.


def test_create_study_request(service, client):
    client.create_study(
        name="mlp-digits",
        direction="minimize",
        sampler={"type": "tpe", "seed": 0},
        pruner={"type": "median", "n_warmup_steps": 2},
        load_if_exists=True,
        lease_seconds=60,
        retry_expired_trials=True,
        max_retries=2,
    )
    (request,) = service.calls_of("CreateStudy")
    assert request.parent == "namespaces/default"
    assert request.study_id == "mlp-digits"
    assert list(request.directions) == [types_pb2.MINIMIZE]
    assert request.sampler.tpe.seed == 0 and request.sampler.tpe.HasField("seed")
    assert request.pruner.median.n_warmup_steps == 2
    assert request.load_if_exists
    assert request.options.lease_seconds == 60
    assert request.options.retry_expired_trials and request.options.max_retries == 2


def test_create_study_defaults_leave_fields_unset(service, client):
    client.create_study(name="s")
    (request,) = service.calls_of("CreateStudy")
    assert not request.directions
    assert not request.HasField("sampler") and not request.HasField("pruner")
    assert not request.options.HasField("lease_seconds")
    assert not request.options.HasField("max_retries")


def test_create_study_bad_arguments_make_no_call(service, client):
    with pytest.raises(InvalidArgument):
        client.create_study(name="s", direction="minimize", directions=["minimize"])
    with pytest.raises(InvalidArgument):
        client.create_study(name="s", direction="up")
    with pytest.raises(InvalidArgument, match="known types"):
        client.create_study(name="s", sampler={"type": "bogus"})
    assert service.calls == []


def test_study_lifecycle(service, client):
    with pytest.raises(AlreadyExists):
        client.create_study(name="a")
        client.create_study(name="a")
    client.create_study(name="a", load_if_exists=True)
    for name in "bcd":
        client.create_study(name=name, directions=["minimize", "maximize"])
    summaries = client.list_studies()
    assert [s.name for s in summaries] == ["a", "b", "c", "d"]
    assert summaries[1].directions == ["minimize", "maximize"]
    assert len(service.calls_of("ListStudies")) == 2  # paged
    assert client.get_study("b").directions == ["minimize", "maximize"]
    assert client.get_study("namespaces/default/studies/b").name == "b"
    client.delete_study("b")
    client.get_study("c").delete()
    with pytest.raises(NotFound):
        client.get_study("b")
    assert [s.name for s in client.list_studies()] == ["a", "d"]


def test_namespace_is_used_in_resource_names(fake):
    service, target = fake
    with Client(target, config=ClientConfig(namespace="team-a")) as client:
        study = client.create_study(name="s")
    assert study.resource_name == "namespaces/team-a/studies/s"
    assert service.calls_of("CreateStudy")[0].parent == "namespaces/team-a"


# Trials.


def test_fixed_space_ask_returns_params_without_further_rpcs(service, client):
    study = client.create_study(name="s")
    space = {
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "layers": IntDistribution(1, 8),
        "schedule": CategoricalDistribution(["cosine", "step"]),
    }
    trial = study.ask(space)
    (request,) = service.calls_of("AskTrials")
    assert [p.name for p in request.search_space] == ["lr", "layers", "schedule"]
    before = len(service.calls)
    assert trial.params == {"lr": 1e-5, "layers": 8, "schedule": "step"}
    assert trial.suggest_float("lr", 1e-5, 1e-1, log=True) == 1e-5
    assert trial.suggest_int("layers", 1, 8) == 8
    assert isinstance(trial.suggest_int("layers", 1, 8), int)
    assert trial.suggest_categorical("schedule", ["cosine", "step"]) == "step"
    assert len(service.calls) == before
    assert trial.distributions["layers"] == IntDistribution(1, 8)


def test_ask_batch_is_one_rpc(service, client):
    study = client.create_study(name="s")
    trials = study.ask_batch({"x": FloatDistribution(0, 1)}, 3)
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.params == {"x": 0.0} for t in trials)
    (request,) = service.calls_of("AskTrials")
    assert request.count == 3


def test_define_by_run_suggests_once_per_new_name(service, client):
    study = client.create_study(name="s")
    trial = study.ask()
    (ask,) = service.calls_of("AskTrials")
    assert not ask.search_space
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 8, step=1)
    sched = trial.suggest_categorical("schedule", ["cosine", "step"])
    assert (lr, layers, sched) == (1e-5, 8, "step")
    assert trial.suggest_float("lr", 1e-5, 1e-1, log=True) == lr  # repeated: no RPC
    if sched == "step":
        trial.suggest_float("gamma", 0.05, 0.5, step=0.05)
    requests = service.calls_of("SuggestParameter")
    assert [r.parameter.name for r in requests] == ["lr", "layers", "schedule", "gamma"]
    assert all(r.trial == "namespaces/default/studies/s/trials/0" for r in requests)
    assert requests[0].parameter.distribution.float.log
    assert requests[3].parameter.distribution.float.step == 0.05
    assert trial.params == {"lr": 1e-5, "layers": 8, "schedule": "step", "gamma": 0.05}


def test_params_without_a_distribution_are_still_suggested(service, client):
    # As for an enqueued trial: a value known to the server but not yet set in the trial.
    service.ask_extra_params = [pb.Parameter(name="x", value=types_pb2.Value(double_value=0.5))]
    study = client.create_study(name="s")
    trial = study.ask()
    assert trial.params == {"x": 0.5}
    assert trial.suggest_float("x", 0.0, 1.0) == 0.0  # the fake samples the low end
    assert trial.suggest_float("x", 0.0, 1.0) == 0.0
    assert len(service.calls_of("SuggestParameter")) == 1


def test_suggest_categorical_returns_the_choice_itself(client):
    study = client.create_study(name="s")
    trial = study.ask()
    choices = [1, 2.5, None, True]
    assert trial.suggest_categorical("c", choices) is True


def test_report_returns_and_caches_the_prune_decision(service, client):
    service.prune_above = 1.0
    study = client.create_study(name="s")
    trial = study.ask()
    assert trial.should_prune() is False  # no report yet: asks the server
    assert len(service.calls_of("ShouldPrune")) == 1
    assert trial.report(0.5, 0) is False
    assert trial.should_prune() is False
    assert trial.report(2.0, 1) is True
    assert trial.should_prune() is True
    assert len(service.calls_of("ShouldPrune")) == 1
    reports = service.calls_of("ReportIntermediateValue")
    assert [(r.step, r.value) for r in reports] == [(0, 0.5), (1, 2.0)]
    frozen = study.tell(trial, state="pruned")
    assert frozen.state == "pruned" and frozen.intermediate_values == {0: 0.5, 1: 2.0}


def test_tell_and_results(service, client):
    study = client.create_study(name="s")
    first = study.ask({"x": FloatDistribution(0, 1)})
    first.set_user_attr("epochs", 3)
    frozen = study.tell(first, 0.25)
    assert isinstance(frozen, FrozenTrial)
    assert frozen.state == "complete" and frozen.value == 0.25 and frozen.values == [0.25]
    assert frozen.params == {"x": 0.0}
    assert frozen.user_attrs == {"epochs": 3.0}
    assert frozen.datetime_start is not None and frozen.datetime_complete is not None
    assert first.user_attrs == {"epochs": 3} and not first.running
    second = study.ask()
    study.tell(second.number, state="failed")
    third = study.ask()
    study.tell(third, [0.125])
    assert service.calls_of("TellTrial")[1].state == types_pb2.FAILED
    with pytest.raises(FailedPrecondition):
        study.tell(third, 0.5)
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert study.get_trial(1).state == "failed"
    with pytest.raises(NotFound):
        study.get_trial(7)
    assert [t.state for t in study.get_trials(states=["complete"])] == ["complete"] * 2
    assert study.best_trial.number == 2
    assert study.best_value == 0.125
    assert study.best_params == {}
    assert [t.number for t in study.best_trials] == [0, 2]


def test_frozen_trial_value_raises_for_several_objectives():
    frozen = FrozenTrial(
        number=0,
        state="complete",
        values=[1.0, 2.0],
        params={},
        distributions={},
        intermediate_values={},
        user_attrs={},
        datetime_start=None,
        datetime_complete=None,
    )
    with pytest.raises(RuntimeError):
        _ = frozen.value


def test_enqueue_trial(service, client):
    study = client.create_study(name="s")
    frozen = study.enqueue_trial({"x": 1, "name": "a"}, {"why": "baseline"}, skip_if_exists=True)
    (request,) = service.calls_of("EnqueueTrial")
    assert request.params["x"].int_value == 1 and request.params["name"].string_value == "a"
    assert request.skip_if_exists and request.request_id
    assert frozen.state == "waiting" and frozen.user_attrs == {"why": "baseline"}


# optimize.


class _OtherTrialPruned(Exception):
    """Stands for optuna.TrialPruned: only the class name matters."""


_OtherTrialPruned.__name__ = "TrialPruned"


def test_optimize_handles_pruning_catch_and_failures(service, client):
    study = client.create_study(name="s")
    seen = []

    def objective(trial):
        x = trial.suggest_int("layers", 1, 8)
        if trial.number == 1:
            raise TrialPruned()
        if trial.number == 2:
            raise _OtherTrialPruned()
        if trial.number == 3:
            raise ValueError("diverged")
        if trial.number == 4:
            return float("nan")
        return float(x)

    study.optimize(
        objective,
        n_trials=6,
        catch=(ValueError,),
        callbacks=[lambda study, frozen: seen.append(frozen.state)],
    )
    assert seen == ["complete", "pruned", "pruned", "failed", "failed", "complete"]
    states = [r.state for r in service.calls_of("TellTrial")]
    assert states == [
        types_pb2.COMPLETE,
        types_pb2.PRUNED,
        types_pb2.PRUNED,
        types_pb2.FAILED,
        types_pb2.FAILED,
        types_pb2.COMPLETE,
    ]

    def broken(trial):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        study.optimize(broken, n_trials=3, catch=ValueError)
    assert service.calls_of("TellTrial")[-1].state == types_pb2.FAILED
    assert len(service.calls_of("AskTrials")) == 7
    assert client._heartbeat.open_trials() == []


def test_optimize_with_search_space_timeout_and_stop(service, client):
    study = client.create_study(name="s")

    def objective(trial):
        if trial.number == 2:
            study.stop()
        return trial.params["x"] + 1

    def asks() -> list:
        # The first trial is asked alone; each tell then carries the next ask, but the last:
        # trial 2 stops the study, so its tell asks for nothing.
        return service.calls_of("AskTrials") + [r.ask for r in service.calls_of("TellAndAsk")]

    study.optimize(objective, search_space={"x": FloatDistribution(0, 1)})
    assert (len(service.calls_of("AskTrials")), len(asks())) == (1, 3)
    assert len(service.calls_of("TellTrial")) == 1
    assert all(len(r.search_space) == 1 for r in asks())
    study.optimize(objective, n_trials=100, timeout=0.0)
    assert len(asks()) == 3


def test_optimize_returns_sequences_for_several_objectives(service, client):
    study = client.create_study(name="s", directions=["minimize", "maximize"])
    study.optimize(lambda t: (1.0, 2.0), n_trials=1)
    assert list(service.calls_of("TellTrial")[0].values) == [1.0, 2.0]


# Heartbeats.


def test_heartbeat_renews_open_trials_and_stops_on_close(fake):
    service, target = fake
    client = Client(target, config=ClientConfig(heartbeat_interval=0.05))
    study = client.create_study(name="s")
    assert not client._heartbeat.alive  # started lazily
    a, b, c = study.ask(), study.ask(), study.ask()
    service.not_running.add(c.name)

    def beats() -> list[list[str]]:
        return [list(r.trials) for r in service.calls_of("Heartbeat")]

    deadline = time.monotonic() + 5
    while len(beats()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert beats()[0] == [a.name, b.name, c.name]
    assert not c.running and a.running  # the server said c is not running
    assert beats()[1] == [a.name, b.name]
    study.tell(a, 1.0)
    seen = len(beats())
    while len(beats()) < seen + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert beats()[-1] == [b.name]
    client.close()
    assert not client._heartbeat.alive
    count = len(beats())
    time.sleep(0.2)
    assert len(beats()) == count


def test_heartbeat_interval_defaults_to_a_third_of_the_lease(fake):
    service, target = fake
    with Client(target) as client:
        study = client.create_study(name="s", lease_seconds=0.6)
        assert study.lease_seconds == 0.6
        asked = time.monotonic()
        study.ask()
        while not service.calls_of("Heartbeat") and time.monotonic() < asked + 5:
            time.sleep(0.005)
        first = time.monotonic() - asked
    assert 0.15 <= first < 2.0  # one interval, 0.2 s, after the ask


def test_a_shorter_lease_brings_the_next_beat_forward(fake):
    service, target = fake
    with Client(target) as client:
        client.create_study(name="long", lease_seconds=600).ask()  # next beat in 200 s
        time.sleep(0.05)  # the heartbeat thread is asleep until then
        asked = time.monotonic()
        client.create_study(name="short", lease_seconds=0.6).ask()  # needs one within 0.2 s
        while not service.calls_of("Heartbeat") and time.monotonic() < asked + 5:
            time.sleep(0.005)
        first = time.monotonic() - asked
    assert 0.15 <= first < 2.0


def test_heartbeat_failures_are_not_raised(fake):
    service, target = fake
    service.failures["Heartbeat"] = [grpc.StatusCode.INTERNAL] * 3
    config = ClientConfig(heartbeat_interval=0.02)
    with Client(target, config=config) as client:
        study = client.create_study(name="s")
        trial = study.ask()
        time.sleep(0.3)
        assert len(service.calls_of("Heartbeat")) > 3
        assert client._heartbeat.alive and trial.running
        study.tell(trial, 1.0)


# Specs.


def test_sampler_specs():
    assert sampler_spec(None) is None
    spec = sampler_spec({"type": "tpe", "seed": 0, "multivariate": True})
    assert spec == specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler(seed=0, multivariate=True))
    assert sampler_spec({"type": "random"}).WhichOneof("kind") == "random"
    assert sampler_spec({"type": "nsgaii", "population_size": 10}).nsga2.population_size == 10
    assert sampler_spec({"type": "NSGAIIISampler"}).WhichOneof("kind") == "nsga3"
    assert sampler_spec({"type": "cma", "sigma0": 0.5}).cmaes.sigma0 == 0.5
    assert sampler_spec({"type": "CmaEs", "x0": {"x": 1.0}}).cmaes.x0["x"] == 1.0
    ready = specs_pb2.SamplerSpec(gp=specs_pb2.GpSampler(seed=1))
    assert sampler_spec(ready) is ready


def test_grid_sampler_spec():
    spec = sampler_spec({"type": "grid", "search_space": {"x": [1, 2.5], "y": ["a", None, True]}})
    axes = spec.grid.search_space
    assert [a.name for a in axes] == ["x", "y"]
    assert list(axes[0].values) == [
        types_pb2.Value(int_value=1),
        types_pb2.Value(double_value=2.5),
    ]
    assert [value_from_proto(v) for v in axes[1].values] == ["a", None, True]
    assert axes[1].values[2].WhichOneof("kind") == "bool_value"


def test_pruner_specs():
    assert pruner_spec({"type": "median", "n_warmup_steps": 2}) == specs_pb2.PrunerSpec(
        median=specs_pb2.MedianPruner(n_warmup_steps=2)
    )
    wrapped = {"type": "median", "n_startup_trials": 5}
    patient = pruner_spec({"type": "patient", "patience": 2, "wrapped_pruner": wrapped})
    assert patient.patient.patience == 2
    assert patient.patient.wrapped_pruner.median.n_startup_trials == 5
    alone = pruner_spec({"type": "patient", "patience": 1})
    assert not alone.patient.HasField("wrapped_pruner")
    assert pruner_spec({"type": "nop"}).WhichOneof("kind") == "none"
    halving = pruner_spec({"type": "SuccessiveHalvingPruner"})
    assert halving.WhichOneof("kind") == "successive_halving"
    assert pruner_spec({"type": "percentile", "percentile": 25.0}).percentile.percentile == 25.0


def test_unknown_spec_types_and_arguments_raise():
    with pytest.raises(InvalidArgument, match="known types: bruteforce, cmaes, gp, grid") as info:
        sampler_spec({"type": "bayes"})
    assert info.value.field_violations == [("sampler.type", "unknown sampler type 'bayes'")]
    with pytest.raises(InvalidArgument, match="hyperband"):
        pruner_spec({"type": "asha-ish"})
    with pytest.raises(InvalidArgument, match="n_startup_trials") as info:
        sampler_spec({"type": "tpe", "n_start": 3})
    assert info.value.field_violations == [("sampler.tpe.n_start", "unknown argument")]
    with pytest.raises(InvalidArgument):
        sampler_spec({"type": "tpe", "seed": "zero"})
    with pytest.raises(InvalidArgument, match="type"):
        sampler_spec({"seed": 0})
    with pytest.raises(InvalidArgument) as info:
        pruner_spec({"type": "patient", "patience": 1, "wrapped_pruner": {"type": "x"}})
    assert info.value.field_violations[0][0] == "pruner.patient.wrapped_pruner.type"


# Distributions and values.


def test_values_to_and_from_proto():
    np = pytest.importorskip("numpy")
    assert value_to_proto(True) == types_pb2.Value(bool_value=True)
    assert value_to_proto(1) == types_pb2.Value(int_value=1)
    assert value_to_proto(1.5) == types_pb2.Value(double_value=1.5)
    assert value_to_proto("a") == types_pb2.Value(string_value="a")
    assert value_to_proto(None).WhichOneof("kind") == "null_value"
    assert value_to_proto(np.int64(3)) == types_pb2.Value(int_value=3)
    assert value_to_proto(np.float32(0.5)) == types_pb2.Value(double_value=0.5)
    assert value_to_proto(np.bool_(False)) == types_pb2.Value(bool_value=False)
    for value in (True, 1, 1.5, "a", None):
        assert value_from_proto(value_to_proto(value)) == value
    assert value_from_proto(types_pb2.Value()) is None
    with pytest.raises(InvalidArgument):
        value_to_proto(object())


def test_our_distributions_round_trip():
    for dist in (
        FloatDistribution(0.0, 1.0),
        FloatDistribution(1e-5, 1.0, log=True),
        FloatDistribution(0.0, 1.0, step=0.25),
        IntDistribution(1, 9, step=2),
        IntDistribution(1, 1024, log=True),
        CategoricalDistribution(("a", 1, 2.5, None, False)),
    ):
        assert distribution_from_proto(distribution_to_proto(dist)) == dist
    assert not distribution_to_proto(FloatDistribution(0, 1)).float.HasField("step")
    assert CategoricalDistribution(["a"]).choices == ("a",)
    with pytest.raises(InvalidArgument):
        distribution_to_proto((0, 1))


def test_optuna_distributions_convert():
    optuna = pytest.importorskip("optuna")
    d = optuna.distributions
    log_float = distribution_to_proto(d.FloatDistribution(1e-5, 1e-1, log=True))
    assert log_float == types_pb2.Distribution(
        float=types_pb2.FloatDistribution(low=1e-5, high=1e-1, log=True)
    )
    stepped = distribution_to_proto(d.FloatDistribution(0.0, 1.0, step=0.1))
    assert stepped.float.step == 0.1
    assert distribution_to_proto(d.IntDistribution(2, 10, step=2)) == types_pb2.Distribution(
        int=types_pb2.IntDistribution(low=2, high=10, step=2)
    )
    assert distribution_to_proto(d.IntDistribution(1, 64, log=True)).int.log
    categorical = distribution_to_proto(d.CategoricalDistribution(["a", 1, 2.5, None, True]))
    choices = [value_from_proto(v) for v in categorical.categorical.choices]
    assert choices == ["a", 1, 2.5, None, True]
    assert categorical.categorical.choices[4].WhichOneof("kind") == "bool_value"
    # Optuna's own TrialPruned is recognized by Study.optimize through its class name.
    assert any(cls.__name__ == "TrialPruned" for cls in type(optuna.TrialPruned()).__mro__)


def test_optuna_distributions_in_a_fixed_space_ask(service, client):
    optuna = pytest.importorskip("optuna")
    study = client.create_study(name="s")
    trial = study.ask({"x": optuna.distributions.IntDistribution(0, 4)})
    assert trial.params == {"x": 4}
    (request,) = service.calls_of("AskTrials")
    assert request.search_space[0].distribution.int.high == 4
    study.optimize(lambda t: (_ for _ in ()).throw(optuna.TrialPruned()), n_trials=1)
    assert service.calls_of("TellTrial")[-1].state == types_pb2.PRUNED


# Imports.


def test_client_imports_without_optuna_numpy_torch_sklearn():
    script = textwrap.dedent(
        """
        import sys

        BLOCKED = {"optuna", "numpy", "torch", "sklearn"}

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Blocker())
        import hposerve.client
        from hposerve.client import Client, ClientConfig, TrialPruned

        Client("127.0.0.1:1", config=ClientConfig()).close()
        assert hposerve.client.sampler_spec({"type": "tpe", "seed": 0}) is not None
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
