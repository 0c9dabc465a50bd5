"""The limits on what one request may cost (``domain/_config.py``), through a real server.

Each request just past a limit is refused INVALID_ARGUMENT naming the limit and the field,
and leaves nothing behind; the heaviest request within the limits does not starve a trainer
holding a short lease on another study.
"""

from __future__ import annotations

import base64
import threading
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hposerve.server.domain import _config as limits
from hposerve.v1 import comparison_service_pb2 as cpb
from hposerve.v1 import comparison_service_pb2_grpc, study_service_pb2_grpc
from hposerve.v1 import specs_pb2 as S
from hposerve.v1 import study_service_pb2 as pb
from hposerve.v1 import types_pb2 as T

PARENT = "namespaces/default"


def floats(n: int, prefix: str = "x") -> list[T.ParameterSpec]:
    unit = T.Distribution(float=T.FloatDistribution(low=0, high=1))
    return [T.ParameterSpec(name=f"{prefix}{i}", distribution=unit) for i in range(n)]


def ints(name: str, low: int, high: int) -> T.ParameterSpec:
    return T.ParameterSpec(
        name=name, distribution=T.Distribution(int=T.IntDistribution(low=low, high=high))
    )


def refused(call, request, limit: str, field: str) -> str:
    """Calls; asserts INVALID_ARGUMENT naming ``limit`` with a violation of ``field``."""
    with pytest.raises(grpc.RpcError) as e:
        call(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert limit in e.value.details()
    status = rpc_status.from_call(e.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    assert bad.field_violations[0].field == field, bad
    return e.value.details()


@pytest.fixture
def comparisons(target):
    with grpc.insecure_channel(target) as channel:
        yield comparison_service_pb2_grpc.ComparisonServiceStub(channel)


def create(stub, study_id: str, **kwargs) -> pb.Study:
    return stub.CreateStudy(pb.CreateStudyRequest(parent=PARENT, study_id=study_id, **kwargs))


def trial_count(stub, study: str) -> int:
    return len(stub.ListTrials(pb.ListTrialsRequest(parent=study)).trials)


def test_parameters_per_space(stub):
    study = create(stub, "params").name
    request = pb.AskTrialsRequest(parent=study, search_space=floats(limits.MAX_PARAMS + 1))
    refused(stub.AskTrials, request, "MAX_PARAMS", "search_space")
    assert trial_count(stub, study) == 0


def test_samples_per_ask(stub):
    study = create(stub, "samples").name
    n = limits.MAX_ASK_SAMPLES // limits.MAX_ASK_COUNT + 1
    request = pb.AskTrialsRequest(parent=study, count=limits.MAX_ASK_COUNT, search_space=floats(n))
    refused(stub.AskTrials, request, "MAX_ASK_SAMPLES", "count")
    assert trial_count(stub, study) == 0


def test_grid_points(stub):
    side = round(limits.MAX_GRID_POINTS ** (1 / 3)) + 1  # side³ > the limit
    axes = [
        S.GridAxis(name=f"x{i}", values=[T.Value(int_value=v) for v in range(side)])
        for i in range(3)
    ]
    request = pb.CreateStudyRequest(
        parent=PARENT, study_id="grid", sampler=S.SamplerSpec(grid=S.GridSampler(search_space=axes))
    )
    refused(stub.CreateStudy, request, "MAX_GRID_POINTS", "sampler.grid.search_space")
    with pytest.raises(grpc.RpcError) as e:
        stub.GetStudy(pb.GetStudyRequest(name=f"{PARENT}/studies/grid"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_bruteforce_values(stub):
    study = create(stub, "brute", sampler=S.SamplerSpec(bruteforce=S.BruteForceSampler())).name
    request = pb.AskTrialsRequest(parent=study, search_space=[ints("n", 0, 3_000_000)])
    refused(stub.AskTrials, request, "MAX_BRUTEFORCE_VALUES", "search_space")
    assert trial_count(stub, study) == 0
    ok = pb.AskTrialsRequest(
        parent=study, search_space=[ints("n", 1, limits.MAX_BRUTEFORCE_VALUES)]
    )
    assert len(stub.AskTrials(ok).trials) == 1


# (sampler, its message, the field, a value past the limit, the limit)
TOO_LARGE = [
    ("tpe", S.TpeSampler, "n_ei_candidates", 10**9, "MAX_EI_CANDIDATES"),
    ("cmaes", S.CmaEsSampler, "popsize", 10**9, "MAX_POPULATION"),
    ("cmaes", S.CmaEsSampler, "inc_popsize", 1000, "MAX_INC_POPSIZE"),
    ("nsga2", S.NsgaIISampler, "population_size", 10**9, "MAX_POPULATION"),
    ("nsga3", S.NsgaIIISampler, "dividing_parameter", 10**6, "MAX_REFERENCE_POINTS"),
]


@pytest.mark.parametrize(("kind", "message", "field", "value", "limit"), TOO_LARGE)
def test_sampler_arguments_bounded_above(stub, kind, message, field, value, limit):
    sampler = S.SamplerSpec(**{kind: message(**{field: value})})
    request = pb.CreateStudyRequest(parent=PARENT, study_id="big-sampler", sampler=sampler)
    refused(stub.CreateStudy, request, limit, f"sampler.{kind}.{field}")
    assert not stub.ListStudies(pb.ListStudiesRequest(parent=PARENT)).studies


def test_reference_points_count_objectives(stub):
    # p = 6 is fine with 2 objectives (7 points), not with 16 (C(21, 6) = 54,264 is; 12 is not).
    sampler = S.SamplerSpec(nsga3=S.NsgaIIISampler(dividing_parameter=12))
    create(stub, "nsga3-two", sampler=sampler, directions=[T.MINIMIZE] * 2)
    request = pb.CreateStudyRequest(
        parent=PARENT, study_id="nsga3-many", sampler=sampler, directions=[T.MINIMIZE] * 16
    )
    refused(stub.CreateStudy, request, "MAX_REFERENCE_POINTS", "sampler.nsga3.dividing_parameter")


def test_objectives_and_choices(stub):
    request = pb.CreateStudyRequest(
        parent=PARENT,
        study_id="many-objectives",
        directions=[T.MINIMIZE] * (limits.MAX_OBJECTIVES + 1),
    )
    refused(stub.CreateStudy, request, "MAX_OBJECTIVES", "directions")
    study = create(stub, "choices").name
    choices = [T.Value(int_value=i) for i in range(limits.MAX_CHOICES + 1)]
    space = [
        T.ParameterSpec(
            name="c",
            distribution=T.Distribution(categorical=T.CategoricalDistribution(choices=choices)),
        )
    ]
    refused(
        stub.AskTrials,
        pb.AskTrialsRequest(parent=study, search_space=space),
        "MAX_CHOICES",
        "search_space[0].distribution",
    )


RANDOM = S.SamplerSpec(random=S.RandomSampler())


def comparison(
    cid: str, *, seeds: int, arms: int, trials: int, space=None, **arm
) -> cpb.CreateComparisonRequest:
    return cpb.CreateComparisonRequest(
        parent=PARENT,
        comparison_id=cid,
        search_space=space or floats(2),
        arms=[cpb.ComparisonArm(name=f"a{i}", sampler=RANDOM, **arm) for i in range(arms)],
        seeds=seeds,
        trials_per_study=trials,
    )


def test_comparison_size(stub, comparisons):
    refused(
        comparisons.CreateComparison,
        comparison("wide", seeds=100, arms=11, trials=1),
        "MAX_COMPARISON_MEMBERS",
        "seeds",
    )
    refused(
        comparisons.CreateComparison,
        comparison("long", seeds=10, arms=10, trials=10**5),
        "MAX_COMPARISON_TRIALS",
        "trials_per_study",
    )
    assert not comparisons.ListComparisons(cpb.ListComparisonsRequest(parent=PARENT)).comparisons
    assert not stub.ListStudies(pb.ListStudiesRequest(parent=PARENT)).studies


def test_grid_arm_of_a_huge_budget_gets_the_largest_grid_allowed(comparisons):
    request = cpb.CreateComparisonRequest(
        parent=PARENT,
        comparison_id="grid",
        search_space=floats(3),
        arms=[cpb.ComparisonArm(sampler=S.SamplerSpec(grid=S.GridSampler()))],
        seeds=1,
        trials_per_study=limits.MAX_TRIALS_PER_STUDY,
    )
    created = comparisons.CreateComparison(request)
    assert 0 < created.arms[0].grid_size <= limits.MAX_GRID_POINTS
    request.comparison_id = "shuffled"
    request.arms[0].shuffle_grid = True
    refused(comparisons.CreateComparison, request, "MAX_GRID_POINTS", "trials_per_study")


def test_nested_page_token(stub):
    deep = base64.urlsafe_b64encode(b'{"after": ' + b"[" * 100_000 + b"]" * 100_000 + b"}").decode()
    study = create(stub, "paged").name
    for call, request in [
        (stub.ListStudies, pb.ListStudiesRequest(parent=PARENT, page_token=deep)),
        (stub.ListTrials, pb.ListTrialsRequest(parent=study, page_token=deep)),
        (stub.ListStudies, pb.ListStudiesRequest(parent=PARENT, page_token="A" * 10_000)),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            call(request)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in e.value.details()


def test_deeply_nested_user_attrs_json(stub):
    study = create(stub, "attrs").name
    request = pb.UpdateStudyAttributesRequest(
        name=study, user_attrs_json="[" * 100_000 + "]" * 100_000
    )
    with pytest.raises(grpc.RpcError) as e:
        stub.UpdateStudyAttributes(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def big_stub(target):
    # 1,000 trials of 10 parameters are ~13 MB of answer.
    options = [("grpc.max_receive_message_length", 256 * 2**20)]
    with grpc.insecure_channel(target, options=options) as channel:
        yield study_service_pb2_grpc.StudyServiceStub(channel)


def test_a_lease_survives_the_heaviest_request(stub, big_stub):
    """A trainer heartbeating a 1 s lease keeps its trial while another study gets the
    heaviest asks the limits allow (random and grid, whose asks are otherwise quick)."""
    options = pb.StudyOptions(lease_seconds=1.0)
    held = create(stub, "trainer", options=options).name
    (trial,) = stub.AskTrials(pb.AskTrialsRequest(parent=held, search_space=floats(1))).trials
    beats: list[bool] = []
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.is_set():
            (lease,) = stub.Heartbeat(pb.HeartbeatRequest(trials=[trial.name])).leases
            beats.append(lease.running)
            stop.wait(0.2)

    beating = threading.Thread(target=heartbeat)
    beating.start()
    try:
        n = limits.MAX_ASK_SAMPLES // limits.MAX_ASK_COUNT
        heavy = create(stub, "heavy", sampler=S.SamplerSpec(random=S.RandomSampler())).name
        side = int(limits.MAX_GRID_POINTS**0.5)
        axes = [
            S.GridAxis(name=f"x{i}", values=[T.Value(double_value=v / side) for v in range(side)])
            for i in range(2)
        ]
        grid = create(
            stub, "heavy-grid", sampler=S.SamplerSpec(grid=S.GridSampler(search_space=axes))
        ).name
        started = time.monotonic()
        # Past the lease, however fast the asks run: long enough to have lost an unkept one.
        while time.monotonic() - started < 1.5:
            for parent, space in [(heavy, floats(n)), (grid, floats(2))]:
                request = pb.AskTrialsRequest(
                    parent=parent, count=limits.MAX_ASK_COUNT, search_space=space
                )
                asked = big_stub.AskTrials(request, timeout=120).trials
                assert len(asked) == limits.MAX_ASK_COUNT
    finally:
        stop.set()
        beating.join()
    assert beats and all(beats), beats
    got = stub.GetTrial(pb.GetTrialRequest(name=trial.name))
    assert got.state == T.RUNNING
