"""Comparisons through the real server: definition, scheduling, grids, persistence, parity."""

from __future__ import annotations

import collections
import random
import threading
import time
import uuid

import grpc
import optuna
import pytest

from hposerve.client import (
    AlreadyExists,
    CategoricalDistribution,
    Client,
    FailedPrecondition,
    FloatDistribution,
    IntDistribution,
    InvalidArgument,
    NotFound,
)
from hposerve.server import make_server
from hposerve.server.domain import _specs
from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import comparison_service_pb2_grpc, specs_pb2, types_pb2

optuna.logging.set_verbosity(optuna.logging.WARNING)

PARENT = "namespaces/default"
SPACE = {
    "x": FloatDistribution(-5.0, 10.0),
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "n": IntDistribution(1, 8),
    "opt": CategoricalDistribution(["adam", "sgd"]),
}
LOCAL_SPACE = {
    "x": optuna.distributions.FloatDistribution(-5.0, 10.0),
    "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
    "n": optuna.distributions.IntDistribution(1, 8),
    "opt": optuna.distributions.CategoricalDistribution(["adam", "sgd"]),
}
UNKNOWN_FIELD_100 = bytes([0xA2, 0x06, 0x00])  # field 100, length-delimited, empty


def objective(params: dict) -> float:
    """Deterministic in the parameters, whatever the space."""
    return sum(
        (v - 1.3) ** 2 if isinstance(v, (int, float)) else float(len(str(v)))
        for v in params.values()
    )


@pytest.fixture
def cstub(target):
    with grpc.insecure_channel(target) as channel:
        yield comparison_service_pb2_grpc.ComparisonServiceStub(channel)


@pytest.fixture
def name() -> str:
    return f"cmp-{uuid.uuid4().hex[:8]}"


def run_all(comparison) -> int:
    """One trainer: ask, evaluate, tell until done; returns the number of trials."""
    n = 0
    while (trial := comparison.ask()) is not None:
        comparison.tell(trial, objective(trial.params))
        n += 1
    return n


def test_create_get_list_delete(client, name):
    comparison = client.create_comparison(
        name=name,
        search_space=SPACE,
        arms=[
            "tpe",
            {"name": "rand10", "sampler": {"type": "random", "seed": 10}, "pruner": "median"},
        ],
        seeds=3,
        trials_per_study=4,
    )
    assert comparison.resource_name == f"{PARENT}/comparisons/{name}"
    assert [a.name for a in comparison.arms] == ["tpe", "rand10"]
    assert [(a.sampler, a.pruner, a.grid_size) for a in comparison.arms] == [
        ("tpe", None, None),
        ("random", "median", None),
    ]
    assert list(comparison.search_space) == list(SPACE)
    assert comparison.direction == "minimize" and comparison.seeds == 3
    members = comparison.members
    assert [(m.arm, m.seed, m.study_name) for m in members] == [
        (arm, s, f"{name}.{arm}.s{s}") for arm in ("tpe", "rand10") for s in range(3)
    ]
    assert all(m.n_asked == 0 and m.best_value is None for m in members)
    # Member studies are ordinary studies, with the seeds resolved: s, or the arm's seed + s.
    for s in range(3):
        tpe = client.get_study(f"{name}.tpe.s{s}").proto
        assert tpe.sampler.tpe.seed == s and tpe.pruner.HasField("none")
        rand = client.get_study(f"{name}.rand10.s{s}").proto
        assert rand.sampler.random.seed == 10 + s and rand.pruner.HasField("median")
    assert {s.name for s in client.list_studies()} == {m.study_name for m in members}

    again = client.get_comparison(name)
    assert again.proto == comparison.proto
    assert [c.name for c in client.list_comparisons()] == [name]
    client.delete_comparison(name)
    with pytest.raises(NotFound):
        client.get_comparison(name)
    with pytest.raises(NotFound):
        client.delete_comparison(name)
    assert client.list_studies() == [] and client.list_comparisons() == []


def test_list_pages(client, cstub):
    for i in range(5):
        client.create_comparison(
            name=f"c{i}", search_space=SPACE, arms=["random"], seeds=1, trials_per_study=1
        )
    client.create_study(name="plain-study")  # not a comparison: not listed
    seen, token = [], ""
    while True:
        page = cstub.ListComparisons(
            cpb.ListComparisonsRequest(parent=PARENT, page_size=2, page_token=token)
        )
        assert len(page.comparisons) <= 2
        seen += [c.name.rsplit("/", 1)[-1] for c in page.comparisons]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"c{i}" for i in range(5)]
    assert [c.name for c in client.list_comparisons()] == seen


def test_get_or_create_and_request_id_retry(client, name):
    kwargs = dict(
        name=name, search_space=SPACE, arms=["tpe", "random"], seeds=2, trials_per_study=5
    )
    first = client.create_comparison(**kwargs, request_id="req-1")
    # A retried request returns the same comparison, without load_if_exists.
    assert client.create_comparison(**kwargs, request_id="req-1").proto == first.proto
    with pytest.raises(AlreadyExists, match="load_if_exists"):
        client.create_comparison(**kwargs, request_id="req-2")
    loaded = client.create_comparison(**kwargs, load_if_exists=True)
    assert loaded.proto.create_time == first.proto.create_time
    # The same name with another definition is not the same comparison.
    with pytest.raises(FailedPrecondition, match="another definition.*seeds"):
        client.create_comparison(**{**kwargs, "seeds": 3}, load_if_exists=True)
    assert len(client.list_studies()) == 4


def test_a_half_created_comparison_is_completed_by_the_next_create(client, name):
    kwargs = dict(
        name=name, search_space=SPACE, arms=["tpe", "random"], seeds=2, trials_per_study=2
    )
    client.create_comparison(**kwargs, request_id="req-1")
    # As if the server had crashed between member creations.
    client.delete_study(f"{name}.random.s1")
    with pytest.raises(FailedPrecondition, match="half-created"):
        client.get_comparison(name)
    with pytest.raises(FailedPrecondition, match="half-created"):
        client.get_comparison(name).ask()
    assert client.list_comparisons() == []
    # A plain create (new request id, no load_if_exists) also completes what the first began.
    completed = client.create_comparison(**kwargs)
    assert [m.study_name for m in completed.members][-1] == f"{name}.random.s1"
    assert run_all(completed) == 8


def test_a_member_name_taken_by_another_study_is_refused(client, name):
    client.create_study(name=f"{name}.tpe.s1")
    with pytest.raises(AlreadyExists, match=rf"{name}\.tpe\.s1"):
        client.create_comparison(
            name=name, search_space=SPACE, arms=["tpe"], seeds=2, trials_per_study=2
        )
    assert [s.name for s in client.list_studies()] == [f"{name}.tpe.s1"]


def handout_order(client, comparison):
    """(member study, start time) of every trial, in the order the server handed them out."""
    events = []
    for member in comparison.progress():
        for trial in client.get_study(member.study_name).trials:
            events.append((trial.datetime_start, member.study_name))
    return [study for _, study in sorted(events)]


def test_every_member_keeps_pace_with_uneven_trainers(client, name):
    budget = 12
    comparison = client.create_comparison(
        name=name,
        search_space=SPACE,
        arms=["tpe", "random", "qmc"],
        seeds=2,
        trials_per_study=budget,
    )
    errors = []

    def trainer(delay: float) -> None:
        try:
            with Client(client.target) as own:
                mine = own.get_comparison(name)
                while (trial := mine.ask()) is not None:
                    time.sleep(delay * random.uniform(0.5, 1.5))
                    mine.tell(trial, objective(trial.params))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=trainer, args=(d,)) for d in (0.002, 0.002, 0.02)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    # At every point of the hand-out order, no member is more than one trial ahead of another.
    counts = collections.Counter()
    members = [m.study_name for m in comparison.members]
    for study in handout_order(client, comparison):
        counts[study] += 1
        assert max(counts[m] for m in members) - min(counts[m] for m in members) <= 1
    # At the end every member has exactly its budget, all finished.
    progress = comparison.progress()
    assert [(m.n_asked, m.n_finished) for m in progress] == [(budget, budget)] * 6
    assert comparison.done and comparison.finished
    assert comparison.ask() is None


def test_ties_go_to_the_lowest_seed_then_the_first_arm(client, name):
    comparison = client.create_comparison(
        name=name, search_space=SPACE, arms=["random", "tpe"], seeds=2, trials_per_study=2
    )
    order = []
    while (trial := comparison.ask()) is not None:
        order.append((trial.arm, trial.seed))
        comparison.tell(trial, objective(trial.params))
    assert order == [("random", 0), ("tpe", 0), ("random", 1), ("tpe", 1)] * 2


def test_done_flag_and_ask_retries(client, cstub, name):
    comparison = client.create_comparison(
        name=name, search_space=SPACE, arms=["random"], seeds=1, trials_per_study=2
    )
    request = cpb.AskComparisonTrialRequest(comparison=comparison.resource_name, request_id="a1")
    first = cstub.AskComparisonTrial(request)
    again = cstub.AskComparisonTrial(request)
    assert not first.done and first.trial.name == again.trial.name
    assert first.arm == "random" and first.seed == 0
    assert first.study == f"{PARENT}/studies/{name}.random.s0"
    assert [p.name for p in first.trial.params] == list(SPACE)
    assert comparison.progress()[0].n_asked == 1
    cstub.AskComparisonTrial(cpb.AskComparisonTrialRequest(comparison=comparison.resource_name))
    done = cstub.AskComparisonTrial(
        cpb.AskComparisonTrialRequest(comparison=comparison.resource_name)
    )
    assert done.done and not done.HasField("trial") and done.study == ""
    assert comparison.ask() is None
    progress = comparison.progress()[0]
    assert (progress.n_asked, progress.n_finished) == (2, 0)
    assert comparison.done and not comparison.finished  # both trials still run


def test_tell_and_report_go_through_the_member_study(client, name):
    comparison = client.create_comparison(
        name=name,
        search_space=SPACE,
        arms=[{"sampler": "random", "pruner": {"type": "threshold", "upper": 1.0}}],
        seeds=1,
        trials_per_study=2,
    )
    trial = comparison.ask()
    assert trial.study.name == f"{name}.random.s0"
    assert trial.report(5.0, 0) is True and trial.should_prune()
    comparison.tell(trial, state="pruned")
    second = comparison.ask()
    second.study.tell(second, 0.5)
    states = [t.state for t in client.get_study(f"{name}.random.s0").trials]
    assert states == ["pruned", "complete"]
    assert comparison.progress()[0].best_value == 0.5


def test_grid_is_derived_for_the_budget_and_run_once_per_point(client, name):
    space = {
        "x": FloatDistribution(0.0, 1.0),
        "k": IntDistribution(1, 3),
        "c": CategoricalDistribution(["a", "b"]),
    }
    # Categoricals 2, so 6 points for x and k: x grows to 3, k to 2 (3 x 2 x 2 = 12).
    comparison = client.create_comparison(
        name=name, search_space=space, arms=["grid", "random"], seeds=2, trials_per_study=12
    )
    assert comparison.arm("grid").grid_size == 12
    assert comparison.arm("random").grid_size is None
    assert comparison.proto.arms[0].grid_size == 12
    assert run_all(comparison) == 48
    for s in range(2):
        trials = client.get_study(f"{name}.grid.s{s}").trials
        points = [(t.params["x"], t.params["k"], t.params["c"]) for t in trials]
        assert len(points) == len(set(points)) == 12
        assert {p[0] for p in points} == {0.1666666667, 0.5, 0.8333333333}
        assert {p[1] for p in points} == {1, 3}
        assert {p[2] for p in points} == {"a", "b"}
    # The order is the sampler's (seeded per member), the points the same.
    orders = [
        [t.params["x"] for t in client.get_study(f"{name}.grid.s{s}").trials] for s in range(2)
    ]
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


def test_a_grid_larger_than_the_budget_is_refused_unless_shuffled(client, name):
    space = {
        "a": CategoricalDistribution(list("abcde")),
        "b": CategoricalDistribution(list("wxyz")),
        "x": FloatDistribution(0.0, 1.0),
    }
    with pytest.raises(InvalidArgument, match=r"20 grid points \(a: 5 × b: 4\).*budget of 12"):
        client.create_comparison(
            name=name, search_space=space, arms=["grid"], seeds=1, trials_per_study=12
        )
    given = {
        "sampler": {
            "type": "grid",
            "search_space": {"a": list("abc"), "b": list("wxyz"), "x": [0.0, 0.5]},
        }
    }
    with pytest.raises(InvalidArgument, match=r"24 points \(a: 3 × b: 4 × x: 2\).*12"):
        client.create_comparison(
            name=name, search_space=space, arms=[given], seeds=1, trials_per_study=12
        )
    assert client.list_studies() == []

    shuffled = client.create_comparison(
        name=name,
        search_space=space,
        arms=[
            {**given, "name": "given", "shuffle_grid": True},
            {"sampler": "grid", "shuffle_grid": True},
        ],
        seeds=1,
        trials_per_study=12,
    )
    assert [a.grid_size for a in shuffled.arms] == [24, 20]
    assert run_all(shuffled) == 24
    trials = client.get_study(f"{name}.given.s0").trials
    points = {(t.params["a"], t.params["b"], t.params["x"]) for t in trials}
    assert len(points) == 12 and all(a in "abc" and x in (0.0, 0.5) for a, _, x in points)


def test_a_restart_keeps_the_comparison(tmp_path, name):
    data_dir = tmp_path / "restart"
    server = make_server("127.0.0.1:0", data_dir=data_dir).start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            comparison = client.create_comparison(
                name=name, search_space=SPACE, arms=["tpe", "grid"], seeds=2, trials_per_study=6
            )
            before = comparison.proto
            for _ in range(5):
                trial = comparison.ask()
                comparison.tell(trial, objective(trial.params))
    finally:
        server.stop(grace=1)
    server = make_server("127.0.0.1:0", data_dir=data_dir).start()
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            comparison = client.get_comparison(name)
            assert comparison.proto.arms == before.arms
            assert comparison.proto.search_space == before.search_space
            assert comparison.proto.create_time == before.create_time
            assert sum(m.n_asked for m in comparison.members) == 5
            assert [c.name for c in client.list_comparisons()] == [name]
            assert run_all(comparison) == 24 - 5
            assert [m.n_finished for m in comparison.progress()] == [6] * 4
    finally:
        server.stop(grace=1)


@pytest.mark.parametrize(
    ("arm", "spec"),
    [
        ("tpe", specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler(seed=1))),
        (
            {"name": "rnd", "sampler": {"type": "random", "seed": 40}},
            specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=41)),
        ),
    ],
)
def test_one_trainer_gets_what_the_same_sampler_gives_in_process(client, name, arm, spec):
    comparison = client.create_comparison(
        name=name, search_space=SPACE, arms=[arm, "qmc"], seeds=2, trials_per_study=25
    )
    run_all(comparison)
    arm_name = comparison.arms[0].name
    remote = client.get_study(f"{name}.{arm_name}.s1").trials
    local = optuna.create_study(sampler=_specs.build_sampler(spec, n_objectives=1))
    assert len(remote) == 25
    for remote_trial in remote:
        trial = local.ask(LOCAL_SPACE)
        assert remote_trial.params == trial.params
        local.tell(trial, objective(trial.params))


def bad_request(**changes) -> cpb.CreateComparisonRequest:
    request = cpb.CreateComparisonRequest(
        parent=PARENT,
        comparison_id="bad",
        search_space=[
            types_pb2.ParameterSpec(
                name="x",
                distribution=types_pb2.Distribution(
                    float=types_pb2.FloatDistribution(low=0.0, high=1.0)
                ),
            )
        ],
        arms=[
            cpb.ComparisonArm(sampler=specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler())),
            cpb.ComparisonArm(sampler=specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler())),
        ],
        seeds=2,
        trials_per_study=5,
    )
    for field, value in changes.items():
        request.ClearField(field)
        if isinstance(value, list):
            getattr(request, field).extend(value)
        else:
            setattr(request, field, value)
    return request


def arm(**kwargs) -> cpb.ComparisonArm:
    return cpb.ComparisonArm(**kwargs)


TPE = specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler())


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (
            {"arms": [arm(sampler=specs_pb2.SamplerSpec.FromString(UNKNOWN_FIELD_100))]},
            ["arms[0]", "unknown sampler"],
        ),
        ({"arms": [arm()]}, ["arms[0].sampler is required"]),
        ({"arms": [arm(sampler=TPE), arm(sampler=TPE)]}, ["arms[1]", "'tpe'", "repeats"]),
        ({"arms": [arm(name="a", sampler=TPE), arm(name="a", sampler=TPE)]}, ["repeats"]),
        ({"arms": [arm(name="has.dot", sampler=TPE)]}, ["arms[0].name", "has.dot"]),
        ({"arms": []}, ["1 to 100 arms"]),
        ({"seeds": 0}, ["seeds must be in [1,"]),
        ({"trials_per_study": 0}, ["trials_per_study must be in [1,"]),
        ({"search_space": []}, ["search_space needs at least one parameter"]),
        ({"comparison_id": "-bad"}, ["invalid comparison name"]),
        ({"direction": 7}, ["direction"]),
        ({"arms": [arm(sampler=TPE, shuffle_grid=True)]}, ["shuffle_grid", "grid samplers"]),
        (
            {
                "arms": [
                    arm(sampler=specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler(seed=2**32 - 1)))
                ]
            },
            ["arms[0]", "seed", "2**32"],  # seed + 1 for member s1 is out of range
        ),
        (
            {
                "arms": [
                    arm(
                        sampler=TPE,
                        pruner=specs_pb2.PrunerSpec(
                            percentile=specs_pb2.PercentilePruner(percentile=200.0)
                        ),
                    )
                ]
            },
            ["arms[0]", "percentile"],
        ),
        (
            {
                "arms": [
                    arm(
                        sampler=specs_pb2.SamplerSpec(
                            grid=specs_pb2.GridSampler(
                                search_space=[
                                    specs_pb2.GridAxis(
                                        name="y", values=[types_pb2.Value(double_value=0.5)]
                                    )
                                ]
                            )
                        )
                    )
                ]
            },
            ["'y' is not a parameter"],
        ),
        (
            {
                "arms": [
                    arm(
                        sampler=specs_pb2.SamplerSpec(
                            grid=specs_pb2.GridSampler(
                                search_space=[
                                    specs_pb2.GridAxis(
                                        name="x", values=[types_pb2.Value(double_value=3.0)]
                                    )
                                ]
                            )
                        )
                    )
                ]
            },
            ["outside"],
        ),
    ],
    ids=lambda v: None,
)
def test_bad_input_is_refused_and_creates_nothing(client, cstub, changes, words):
    with pytest.raises(grpc.RpcError) as info:
        cstub.CreateComparison(bad_request(**changes))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    for word in words:
        assert word in info.value.details(), info.value.details()
    assert client.list_studies() == [] and client.list_comparisons() == []


def test_bad_arms_are_refused_by_the_client(client):
    kwargs = dict(name="bad", search_space=SPACE, seeds=1, trials_per_study=2)
    with pytest.raises(InvalidArgument, match="unknown sampler type 'bogus'"):
        client.create_comparison(arms=["bogus"], **kwargs)
    with pytest.raises(InvalidArgument, match="unknown key"):
        client.create_comparison(arms=[{"sampler": "tpe", "seed": 1}], **kwargs)
    with pytest.raises(InvalidArgument, match="list of arms"):
        client.create_comparison(arms="tpe", **kwargs)
    with pytest.raises(InvalidArgument, match="repeats"):
        client.create_comparison(arms=["tpe", "tpe"], **kwargs)
    assert client.list_studies() == []


def test_unknown_comparisons(client, cstub):
    with pytest.raises(NotFound):
        client.get_comparison("nope")
    with pytest.raises(grpc.RpcError) as info:
        cstub.AskComparisonTrial(
            cpb.AskComparisonTrialRequest(comparison=f"{PARENT}/comparisons/nope")
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        cstub.GetComparison(cpb.GetComparisonRequest(name=f"{PARENT}/studies/nope"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_health_reports_the_comparison_service(target):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="hposerve.v1.ComparisonService")
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING
