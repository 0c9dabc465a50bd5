"""Bad input through the real server: a precise status code, a specific message, a google.rpc
detail, and no change to the study. Retried mutating requests change nothing twice.

The raw stub is used where the client would refuse locally (or could not express the request),
the client where its error mapping is under test.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hposerve import client as hc
from hposerve.v1 import specs_pb2, types_pb2
from hposerve.v1 import study_service_pb2 as pb

PARENT = "namespaces/default"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION

# The google.rpc detail each status carries.
DETAIL = {
    INVALID: error_details_pb2.BadRequest,
    PRECONDITION: error_details_pb2.PreconditionFailure,
    NOT_FOUND: error_details_pb2.ErrorInfo,
    EXISTS: error_details_pb2.ErrorInfo,
}


# -- helpers ------------------------------------------------------------------------------------


def fdist(low: float, high: float, *, log: bool = False, step: float | None = None):
    f = types_pb2.FloatDistribution(low=low, high=high, log=log)
    if step is not None:
        f.step = step
    return types_pb2.Distribution(float=f)


def idist(low: int, high: int, *, log: bool = False, step: int | None = None):
    i = types_pb2.IntDistribution(low=low, high=high, log=log)
    if step is not None:
        i.step = step
    return types_pb2.Distribution(int=i)


def cdist(*choices: types_pb2.Value):
    return types_pb2.Distribution(categorical=types_pb2.CategoricalDistribution(choices=choices))


def param(name: str, distribution: types_pb2.Distribution) -> types_pb2.ParameterSpec:
    return types_pb2.ParameterSpec(name=name, distribution=distribution)


X = param("x", fdist(0.0, 1.0))


def detail_of(status: Any, code: grpc.StatusCode) -> Any:
    """The one google.rpc detail of the kind ``code`` calls for, unpacked."""
    cls = DETAIL[code]
    found = [d for d in status.details if d.Is(cls.DESCRIPTOR)]
    assert found, f"no {cls.DESCRIPTOR.full_name} detail in {status}"
    detail = cls()
    found[0].Unpack(detail)
    if isinstance(detail, error_details_pb2.BadRequest):
        assert detail.field_violations and detail.field_violations[0].field
    elif isinstance(detail, error_details_pb2.PreconditionFailure):
        assert detail.violations and detail.violations[0].description
    else:
        assert detail.reason and detail.domain == "hposerve.v1"
    return detail


def expect(
    code: grpc.StatusCode, call: Callable[..., Any], request: Any, *needles: str
) -> tuple[str, Any]:
    """Calls the raw stub, expects ``code`` with every needle in the message and a detail."""
    with pytest.raises(grpc.RpcError) as exc:
        call(request)
    error = exc.value
    message = error.details()
    assert error.code() == code, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    status = rpc_status.from_call(error)
    assert status is not None and status.code == code.value[0] and status.message == message
    return message, detail_of(status, code)


def expect_client(
    cls: type[hc.HposerveError], call: Callable[[], Any], *needles: str
) -> hc.HposerveError:
    """Calls the client, expects our exception ``cls`` (never a grpc.RpcError) with a detail."""
    with pytest.raises(hc.HposerveError) as exc:
        call()
    error = exc.value
    assert type(error) is cls, repr(error)
    assert not isinstance(error, grpc.RpcError)
    for needle in needles:
        assert needle in error.message, f"{needle!r} not in {error.message!r}"
    assert any(isinstance(d, DETAIL[error.code]) for d in error.details), error.details
    return error


def create(stub, study_id: str, **kwargs: Any) -> pb.Study:
    return stub.CreateStudy(pb.CreateStudyRequest(parent=PARENT, study_id=study_id, **kwargs))


def ask(stub, study: str, *space: types_pb2.ParameterSpec, **kwargs: Any) -> list[pb.Trial]:
    return list(
        stub.AskTrials(pb.AskTrialsRequest(parent=study, search_space=space, **kwargs)).trials
    )


def tell(stub, trial: str, state: int = types_pb2.COMPLETE, values=(), **kwargs: Any) -> pb.Trial:
    return stub.TellTrial(pb.TellTrialRequest(trial=trial, state=state, values=values, **kwargs))


def snapshot(stub, study: str) -> tuple[int, list[bytes]]:
    """Everything a bad request must leave alone: the trial count and every trial, serialized."""
    count = stub.GetStudy(pb.GetStudyRequest(name=study)).trial_count
    trials = stub.ListTrials(pb.ListTrialsRequest(parent=study)).trials
    return count, [t.SerializeToString(deterministic=True) for t in trials]


def studies(stub, namespace: str = "default") -> set[str]:
    listed = stub.ListStudies(pb.ListStudiesRequest(parent=f"namespaces/{namespace}")).studies
    return {s.name for s in listed}


@pytest.fixture
def study(stub, study_name) -> str:
    """A single-objective random-sampler study with one complete and one running trial."""
    name = create(
        stub, study_name, sampler=specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0))
    ).name
    done = ask(stub, name, X)[0]
    tell(stub, done.name, values=[0.5])
    return name


@pytest.fixture
def running(stub, study) -> pb.Trial:
    """A running trial of ``study`` that has parameter ``x`` and one intermediate value."""
    trial = ask(stub, study, X)[0]
    stub.ReportIntermediateValue(
        pb.ReportIntermediateValueRequest(trial=trial.name, step=0, value=1.0)
    )
    return stub.GetTrial(pb.GetTrialRequest(name=trial.name))


@pytest.fixture
def two_objective(stub, study_name) -> str:
    return create(
        stub,
        f"{study_name}-mo",
        directions=[types_pb2.MINIMIZE, types_pb2.MAXIMIZE],
        sampler=specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0)),
    ).name


# -- samplers and pruners -----------------------------------------------------------------------

UNKNOWN_FIELD_100 = b"\xa2\x06\x00"  # field 100, length-delimited, empty


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        pytest.param(
            {"sampler": specs_pb2.SamplerSpec.FromString(UNKNOWN_FIELD_100)},
            ["unknown sampler", "100", "tpe"],
            id="unknown-sampler",
        ),
        pytest.param(
            {"pruner": specs_pb2.PrunerSpec.FromString(UNKNOWN_FIELD_100)},
            ["unknown pruner", "100", "median"],
            id="unknown-pruner",
        ),
        pytest.param(
            {
                "sampler": specs_pb2.SamplerSpec(
                    tpe=specs_pb2.TpeSampler.FromString(UNKNOWN_FIELD_100)
                )
            },
            ["sampler.tpe", "100"],
            id="unknown-tpe-argument",
        ),
        pytest.param(
            {
                "pruner": specs_pb2.PrunerSpec(
                    median=specs_pb2.MedianPruner.FromString(UNKNOWN_FIELD_100)
                )
            },
            ["pruner.median", "100"],
            id="unknown-median-argument",
        ),
        pytest.param(
            {
                "pruner": specs_pb2.PrunerSpec(
                    patient=specs_pb2.PatientPruner(
                        patience=1,
                        wrapped_pruner=specs_pb2.PrunerSpec.FromString(UNKNOWN_FIELD_100),
                    )
                )
            },
            ["pruner.patient.wrapped_pruner", "100"],
            id="unknown-wrapped-pruner",
        ),
    ],
)
def test_unknown_sampler_or_pruner(stub, study_name, spec, needles):
    message, detail = expect(
        INVALID,
        stub.CreateStudy,
        pb.CreateStudyRequest(parent=PARENT, study_id=study_name, **spec),
        *needles,
    )
    assert detail.field_violations[0].field.split(".")[0] in ("sampler", "pruner")
    expect(NOT_FOUND, stub.GetStudy, pb.GetStudyRequest(name=f"{PARENT}/studies/{study_name}"))
    assert f"{PARENT}/studies/{study_name}" not in studies(stub)


BAD_SPECS = [
    ({"sampler": {"type": "tpe", "n_startup_trials": -1}}, "sampler.tpe.n_startup_trials"),
    ({"sampler": {"type": "tpe", "n_ei_candidates": 0}}, "sampler.tpe.n_ei_candidates"),
    # The client refuses a NaN itself (JSON parsing), so these go as protos through the stub.
    (
        {"sampler": specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler(prior_weight=math.nan))},
        "sampler.tpe.prior_weight",
    ),
    ({"sampler": {"type": "tpe", "seed": -1}}, "sampler.tpe.seed"),
    ({"sampler": {"type": "random", "seed": 2**40}}, "sampler.random.seed"),
    ({"sampler": {"type": "cmaes", "sigma0": 0.0}}, "sampler.cmaes.sigma0"),
    ({"sampler": {"type": "cmaes", "restart_strategy": "never"}}, "sampler.cmaes.restart_strategy"),
    ({"sampler": {"type": "qmc", "qmc_type": "lhs"}}, "sampler.qmc.qmc_type"),
    ({"sampler": {"type": "nsga2", "mutation_prob": 1.5}}, "sampler.nsga2.mutation_prob"),
    ({"sampler": {"type": "nsga2", "crossover": "magic"}}, "sampler.nsga2.crossover"),
    ({"sampler": {"type": "grid", "search_space": {}}}, "sampler.grid.search_space"),
    ({"sampler": {"type": "grid", "search_space": {"x": []}}}, "sampler.grid.search_space[0]"),
    ({"pruner": {"type": "percentile", "percentile": 150.0}}, "pruner.percentile.percentile"),
    (
        {
            "pruner": specs_pb2.PrunerSpec(
                percentile=specs_pb2.PercentilePruner(percentile=math.nan)
            )
        },
        "pruner.percentile.percentile",
    ),
    (
        {"pruner": specs_pb2.PrunerSpec(threshold=specs_pb2.ThresholdPruner(lower=math.nan))},
        "pruner.threshold.lower",
    ),
    ({"pruner": {"type": "median", "n_warmup_steps": -1}}, "pruner.median.n_warmup_steps"),
    ({"pruner": {"type": "median", "interval_steps": 0}}, "pruner.median.interval_steps"),
    ({"pruner": {"type": "threshold"}}, "pruner.threshold"),
    ({"pruner": {"type": "threshold", "lower": 2.0, "upper": 1.0}}, "pruner.threshold.lower"),
    ({"pruner": {"type": "hyperband", "reduction_factor": 1}}, "pruner.hyperband.reduction_factor"),
    (
        {"pruner": {"type": "hyperband", "min_resource": 5, "max_resource": 2}},
        "pruner.hyperband.max_resource",
    ),
    ({"pruner": {"type": "patient", "patience": -1}}, "pruner.patient.patience"),
    ({"pruner": {"type": "wilcoxon", "p_threshold": 2.0}}, "pruner.wilcoxon.p_threshold"),
]


@pytest.mark.parametrize(("spec", "field"), BAD_SPECS, ids=[f for _, f in BAD_SPECS])
def test_invalid_sampler_or_pruner_argument(client, stub, study_name, spec, field):
    if any(isinstance(v, dict) for v in spec.values()):
        error = expect_client(
            hc.InvalidArgument, lambda: client.create_study(name=study_name, **spec), field
        )
        violation = error.field_violations[0][0]
    else:
        request = pb.CreateStudyRequest(parent=PARENT, study_id=study_name, **spec)
        _, detail = expect(INVALID, stub.CreateStudy, request, field)
        violation = detail.field_violations[0].field
    assert field.startswith(violation.split("[")[0])
    assert f"{PARENT}/studies/{study_name}" not in studies(stub)


@pytest.mark.parametrize(
    ("directions", "pruner", "needles"),
    [
        (["minimize", "maximize"], {"type": "median"}, ["multi-objective", "none"]),
        (["minimize", "minimize"], {"type": "threshold", "upper": 1.0}, ["multi-objective"]),
        (["minimize", "maximize"], None, []),  # the default pruner is fine: it is none
    ],
)
def test_multi_objective_study_with_a_pruner(client, stub, study_name, directions, pruner, needles):
    if not needles:
        assert client.create_study(name=study_name, directions=directions, pruner=pruner)
        return
    expect_client(
        hc.InvalidArgument,
        lambda: client.create_study(name=study_name, directions=directions, pruner=pruner),
        *needles,
    )
    assert f"{PARENT}/studies/{study_name}" not in studies(stub)


def test_multi_objective_study_with_a_single_objective_sampler(stub, study_name):
    request = pb.CreateStudyRequest(
        parent=PARENT,
        study_id=study_name,
        directions=[types_pb2.MINIMIZE, types_pb2.MINIMIZE],
        sampler=specs_pb2.SamplerSpec(cmaes=specs_pb2.CmaEsSampler()),
    )
    expect(INVALID, stub.CreateStudy, request, "cmaes", "single-objective")
    assert f"{PARENT}/studies/{study_name}" not in studies(stub)


@pytest.mark.parametrize(
    ("request_fields", "needles"),
    [
        ({"directions": [types_pb2.DIRECTION_UNSPECIFIED]}, ["MINIMIZE or MAXIMIZE"]),
        ({"directions": [7]}, ["MINIMIZE or MAXIMIZE"]),
        ({"options": pb.StudyOptions(lease_seconds=0)}, ["lease_seconds", "0"]),
        ({"options": pb.StudyOptions(lease_seconds=-5)}, ["lease_seconds", "-5"]),
        ({"options": pb.StudyOptions(lease_seconds=math.nan)}, ["lease_seconds", "nan"]),
        ({"options": pb.StudyOptions(lease_seconds=math.inf)}, ["lease_seconds", "inf"]),
        ({"options": pb.StudyOptions(max_retries=-1)}, ["max_retries", "-1"]),
    ],
    ids=[
        "unspecified-direction",
        "unknown-direction",
        "lease-0",
        "lease-negative",
        "lease-nan",
        "lease-inf",
        "max-retries-negative",
    ],
)
def test_invalid_study_options(stub, study_name, request_fields, needles):
    request = pb.CreateStudyRequest(parent=PARENT, study_id=study_name, **request_fields)
    expect(INVALID, stub.CreateStudy, request, *needles)
    assert f"{PARENT}/studies/{study_name}" not in studies(stub)


# -- search spaces ------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf

BAD_SPACES = {
    "float-low-gt-high": ([param("p", fdist(2.0, 1.0))], ["search_space[0]", "low"]),
    "float-log-low-zero": ([param("p", fdist(0.0, 1.0, log=True))], ["search_space[0]", "log"]),
    "float-log-low-negative": ([param("p", fdist(-1.0, 1.0, log=True))], ["search_space[0]"]),
    "float-step-negative": ([param("p", fdist(0.0, 1.0, step=-0.1))], ["search_space[0]", "step"]),
    "float-step-zero": ([param("p", fdist(0.0, 1.0, step=0.0))], ["search_space[0]", "step"]),
    "float-log-and-step": ([param("p", fdist(1.0, 2.0, log=True, step=0.1))], ["step"]),
    "float-low-nan": ([param("p", fdist(NAN, 1.0))], ["search_space[0]", "nan"]),
    "float-high-inf": ([param("p", fdist(0.0, INF))], ["search_space[0]", "inf"]),
    "float-low-minus-inf": ([param("p", fdist(-INF, 0.0))], ["search_space[0]", "inf"]),
    "float-step-nan": ([param("p", fdist(0.0, 1.0, step=NAN))], ["search_space[0]", "nan"]),
    "int-low-gt-high": ([param("p", idist(5, 1))], ["search_space[0]", "low"]),
    "int-log-low-zero": ([param("p", idist(0, 10, log=True))], ["search_space[0]", "log"]),
    "int-step-zero": ([param("p", idist(0, 10, step=0))], ["search_space[0]", "step"]),
    "int-step-negative": ([param("p", idist(0, 10, step=-2))], ["search_space[0]", "step"]),
    "int-log-and-step": ([param("p", idist(1, 10, log=True, step=2))], ["step"]),
    "categorical-empty": ([param("p", cdist())], ["search_space[0]", "choices"]),
    "categorical-unset-choice": (
        [param("p", cdist(types_pb2.Value(int_value=1), types_pb2.Value()))],
        ["search_space[0].distribution.choices"],
    ),
    "no-distribution": ([types_pb2.ParameterSpec(name="p")], ["search_space[0]"]),
    "empty-name": ([param("", fdist(0.0, 1.0))], ["search_space[0].name"]),
    "duplicate-name": (
        [param("p", fdist(0.0, 1.0)), param("p", idist(0, 3))],
        ["'p'", "twice"],
    ),
    "second-is-bad": ([param("a", fdist(0.0, 1.0)), param("b", idist(3, 1))], ["search_space[1]"]),
}


@pytest.mark.parametrize(("space", "needles"), BAD_SPACES.values(), ids=BAD_SPACES.keys())
def test_ask_with_an_invalid_search_space(stub, study, running, space, needles):
    before = snapshot(stub, study)
    request = pb.AskTrialsRequest(parent=study, search_space=space, count=2)
    expect(INVALID, stub.AskTrials, request, *needles)
    assert snapshot(stub, study) == before


# SuggestParameter takes one parameter.
ONE_PARAMETER = {k: v for k, v in BAD_SPACES.items() if len(v[0]) == 1}


@pytest.mark.parametrize(("space", "needles"), ONE_PARAMETER.values(), ids=ONE_PARAMETER.keys())
def test_suggest_an_invalid_parameter(stub, study, running, space, needles):
    before = snapshot(stub, study)
    request = pb.SuggestParameterRequest(trial=running.name, parameter=space[0])
    # The field is ``parameter`` here (the server calls it ``parameter[0]``).
    needles = ["parameter" if n.startswith("search_space[0]") else n for n in needles]
    expect(INVALID, stub.SuggestParameter, request, *needles)
    assert snapshot(stub, study) == before
    assert stub.GetTrial(pb.GetTrialRequest(name=running.name)) == running


def test_suggest_another_kind_for_a_known_parameter(stub, study, running):
    before = snapshot(stub, study)
    request = pb.SuggestParameterRequest(
        trial=running.name, parameter=param("x", cdist(types_pb2.Value(string_value="a")))
    )
    expect(INVALID, stub.SuggestParameter, request, "'x'")
    assert snapshot(stub, study) == before


def test_suggest_a_parameter_outside_the_grid(stub, study_name):
    grid = specs_pb2.GridSampler(
        search_space=[specs_pb2.GridAxis(name="x", values=[types_pb2.Value(double_value=0.5)])]
    )
    name = create(stub, study_name, sampler=specs_pb2.SamplerSpec(grid=grid)).name
    trial = ask(stub, name)[0]
    before = snapshot(stub, name)
    request = pb.SuggestParameterRequest(trial=trial.name, parameter=param("y", fdist(0, 1)))
    expect(INVALID, stub.SuggestParameter, request, "'y'", "grid")
    expect(
        INVALID,
        stub.AskTrials,
        pb.AskTrialsRequest(
            parent=name, search_space=[param("x", fdist(0, 1)), param("y", fdist(0, 1))]
        ),
        "'y'",
        "grid",
    )
    assert snapshot(stub, name) == before


# -- tell -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "values", "needles"),
    [
        (types_pb2.COMPLETE, [NAN], ["values", "nan"]),
        (types_pb2.COMPLETE, [INF], ["values", "inf"]),
        (types_pb2.COMPLETE, [-INF], ["values", "-inf"]),
        (types_pb2.COMPLETE, [], ["1 objective", "0 value"]),
        (types_pb2.COMPLETE, [1.0, 2.0], ["1 objective", "2 value"]),
        (types_pb2.PRUNED, [1.0], ["COMPLETE only", "PRUNED"]),
        (types_pb2.FAILED, [1.0], ["COMPLETE only", "FAIL"]),
        (types_pb2.TRIAL_STATE_UNSPECIFIED, [1.0], ["state", "0"]),
        (types_pb2.RUNNING, [], ["RUNNING"]),
        (types_pb2.WAITING, [], ["WAITING"]),
        (42, [], ["42"]),
    ],
    ids=[
        "nan",
        "inf",
        "minus-inf",
        "no-value",
        "two-values",
        "pruned-with-values",
        "failed-with-values",
        "unspecified",
        "running",
        "waiting",
        "unknown-state",
    ],
)
def test_tell_invalid_outcome(stub, study, running, state, values, needles):
    before = snapshot(stub, study)
    request = pb.TellTrialRequest(trial=running.name, state=state, values=values)
    _, detail = expect(INVALID, stub.TellTrial, request, *needles)
    assert detail.field_violations[0].field in ("state", "values")
    assert snapshot(stub, study) == before
    assert stub.GetTrial(pb.GetTrialRequest(name=running.name)).state == types_pb2.RUNNING


@pytest.mark.parametrize("values", [[1.0], [], [1.0, 2.0, 3.0], [1.0, NAN]])
def test_tell_wrong_number_of_values_on_two_objectives(stub, two_objective, values):
    trial = ask(stub, two_objective, X)[0]
    before = snapshot(stub, two_objective)
    request = pb.TellTrialRequest(trial=trial.name, state=types_pb2.COMPLETE, values=values)
    needles = ["values"] if len(values) == 2 else ["2 objective", f"{len(values)} value"]
    expect(INVALID, stub.TellTrial, request, *needles)
    assert snapshot(stub, two_objective) == before


# -- report -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "value", "needles"),
    [
        (1, NAN, ["value", "nan"]),
        (1, INF, ["value", "inf"]),
        (1, -INF, ["value", "-inf"]),
        (-1, 1.0, ["step", "-1"]),
    ],
    ids=["nan", "inf", "minus-inf", "negative-step"],
)
def test_report_invalid_value(stub, study, running, step, value, needles):
    before = snapshot(stub, study)
    request = pb.ReportIntermediateValueRequest(trial=running.name, step=step, value=value)
    expect(INVALID, stub.ReportIntermediateValue, request, *needles)
    assert snapshot(stub, study) == before


def test_report_on_a_multi_objective_study(stub, two_objective):
    trial = ask(stub, two_objective, X)[0]
    before = snapshot(stub, two_objective)
    request = pb.ReportIntermediateValueRequest(trial=trial.name, step=0, value=1.0)
    expect(PRECONDITION, stub.ReportIntermediateValue, request, "2 objectives", two_objective)
    expect(PRECONDITION, stub.ShouldPrune, pb.ShouldPruneRequest(trial=trial.name), "multi")
    assert snapshot(stub, two_objective) == before


# -- names and unknown resources ----------------------------------------------------------------


def _unknown_study_calls(name: str) -> dict[str, tuple[str, Any]]:
    return {
        "GetStudy": ("GetStudy", pb.GetStudyRequest(name=name)),
        "DeleteStudy": ("DeleteStudy", pb.DeleteStudyRequest(name=name)),
        "AskTrials": ("AskTrials", pb.AskTrialsRequest(parent=name)),
        "ListTrials": ("ListTrials", pb.ListTrialsRequest(parent=name)),
        "EnqueueTrial": (
            "EnqueueTrial",
            pb.EnqueueTrialRequest(parent=name, params={"x": types_pb2.Value(double_value=1)}),
        ),
        "GetBestTrial": ("GetBestTrial", pb.GetBestTrialRequest(parent=name)),
        "GetParetoFront": ("GetParetoFront", pb.GetParetoFrontRequest(parent=name)),
        "GetTrial": ("GetTrial", pb.GetTrialRequest(name=f"{name}/trials/0")),
        "TellTrial": (
            "TellTrial",
            pb.TellTrialRequest(trial=f"{name}/trials/0", state=types_pb2.FAILED),
        ),
    }


@pytest.mark.parametrize("method", list(_unknown_study_calls("")))
def test_unknown_study(stub, study, method):
    missing = f"{PARENT}/studies/no-such-study"
    rpc, request = _unknown_study_calls(missing)[method]
    known = studies(stub)
    before = snapshot(stub, study)
    _, detail = expect(NOT_FOUND, getattr(stub, rpc), request, missing, "does not exist")
    assert detail.reason == "NOTFOUND"
    assert studies(stub) == known
    assert snapshot(stub, study) == before


@pytest.mark.parametrize(
    ("rpc", "make"),
    [
        ("GetTrial", lambda t: pb.GetTrialRequest(name=t)),
        ("TellTrial", lambda t: pb.TellTrialRequest(trial=t, state=types_pb2.COMPLETE, values=[1])),
        ("ReportIntermediateValue", lambda t: pb.ReportIntermediateValueRequest(trial=t, value=1)),
        ("ShouldPrune", lambda t: pb.ShouldPruneRequest(trial=t)),
        ("SuggestParameter", lambda t: pb.SuggestParameterRequest(trial=t, parameter=X)),
        ("SetTrialUserAttributes", lambda t: pb.SetTrialUserAttributesRequest(trial=t)),
    ],
)
@pytest.mark.parametrize("number", [7, 999_999_999_999_999_999])
def test_unknown_trial(stub, study, running, rpc, make, number):
    before = snapshot(stub, study)
    missing = f"{study}/trials/{number}"
    expect(NOT_FOUND, getattr(stub, rpc), make(missing), missing)
    assert snapshot(stub, study) == before


MALFORMED_STUDY_NAMES = [
    "",
    "default",
    "studies/x",
    "namespaces/default",
    "namespaces/default/studies",
    "namespaces/default/studies/",
    "namespaces/default/studies/a/b",
    "namespaces//studies/a",
    "/namespaces/default/studies/a",
    "namespaces/default/studies/a/trials/0",
    "namespaces/default/experiments/a",
]


@pytest.mark.parametrize("name", MALFORMED_STUDY_NAMES)
def test_malformed_study_name(stub, study, name):
    before = snapshot(stub, study)
    _, detail = expect(INVALID, stub.GetStudy, pb.GetStudyRequest(name=name), "name", repr(name))
    assert detail.field_violations[0].field == "name"
    _, detail = expect(INVALID, stub.AskTrials, pb.AskTrialsRequest(parent=name), "parent")
    assert detail.field_violations[0].field == "parent"
    expect(INVALID, stub.ListTrials, pb.ListTrialsRequest(parent=name), "parent")
    expect(INVALID, stub.DeleteStudy, pb.DeleteStudyRequest(name=name), "name")
    assert snapshot(stub, study) == before


@pytest.mark.parametrize(
    "suffix",
    [
        "",
        "/trials",
        "/trials/",
        "/trials/-1",
        "/trials/x",
        "/trials/1.5",
        "/trials/1/",
        "/t/1",
        "/trials/" + "9" * 19,
    ],
)
def test_malformed_trial_name(stub, study, running, suffix):
    name = study + suffix
    before = snapshot(stub, study)
    _, detail = expect(INVALID, stub.GetTrial, pb.GetTrialRequest(name=name), "trials/NUMBER")
    assert detail.field_violations[0].field == "name"
    request = pb.TellTrialRequest(trial=name, state=types_pb2.COMPLETE, values=[1.0])
    _, detail = expect(INVALID, stub.TellTrial, request, "trials/NUMBER")
    assert detail.field_violations[0].field == "trial"
    expect(INVALID, stub.Heartbeat, pb.HeartbeatRequest(trials=[running.name, name]), "trials[1]")
    assert snapshot(stub, study) == before


@pytest.mark.parametrize(
    ("parent", "study_id", "field"),
    [
        ("namespaces/Team-A", "s", "namespace"),
        ("namespaces/team_a", "s", "namespace"),
        ("namespaces/-team", "s", "namespace"),
        ("namespaces/" + "a" * 64, "s", "namespace"),
        ("namespaces/default", "", "study"),
        ("namespaces/default", "-s", "study"),
        ("namespaces/default", ".s", "study"),
        ("namespaces/default", "a/b", "study"),
        ("namespaces/default", "a b", "study"),
        ("namespaces/default", "s" * 129, "study"),
        ("namespaces/default", "s\u00e9", "study"),
        ("default", "s", "parent"),
        ("namespaces/default/studies/s", "s", "parent"),
    ],
)
def test_invalid_namespace_or_study_id(stub, parent, study_id, field):
    known = studies(stub)
    request = pb.CreateStudyRequest(parent=parent, study_id=study_id)
    offending = {"namespace": parent.split("/", 1)[-1], "study": study_id, "parent": parent}
    _, detail = expect(INVALID, stub.CreateStudy, request, field, repr(offending[field]))
    # The domain's name for the field, or the request's.
    aliases = {"namespace": ("namespace", "parent"), "study": ("study", "study_id")}
    assert detail.field_violations[0].field in aliases.get(field, (field,))
    assert studies(stub) == known


@pytest.mark.parametrize("namespace", ["Team", "a_b", "-a"])
def test_invalid_namespace_when_listing(stub, namespace):
    request = pb.ListStudiesRequest(parent=f"namespaces/{namespace}")
    expect(INVALID, stub.ListStudies, request, repr(namespace))


# -- existing studies ---------------------------------------------------------------------------


def test_create_an_existing_study(stub, study):
    study_id = study.rsplit("/", 1)[-1]
    before = snapshot(stub, study)
    request = pb.CreateStudyRequest(parent=PARENT, study_id=study_id)
    _, detail = expect(EXISTS, stub.CreateStudy, request, study, "load_if_exists")
    assert detail.reason == "ALREADYEXISTS"
    request = pb.CreateStudyRequest(
        parent=PARENT,
        study_id=study_id,
        directions=[types_pb2.MAXIMIZE],
        load_if_exists=True,
    )
    expect(PRECONDITION, stub.CreateStudy, request, study, "minimize", "maximize")
    request.directions[:] = [types_pb2.MINIMIZE, types_pb2.MINIMIZE]
    expect(PRECONDITION, stub.CreateStudy, request, study, "directions")
    assert snapshot(stub, study) == before
    assert stub.GetStudy(pb.GetStudyRequest(name=study)).directions == [types_pb2.MINIMIZE]
    # Loaded with the same directions: the same study, unchanged.
    request.directions[:] = [types_pb2.MINIMIZE]
    assert stub.CreateStudy(request).name == study
    assert snapshot(stub, study) == before


# -- finished trials ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "again", "needles"),
    [
        ((types_pb2.COMPLETE, [1.0]), (types_pb2.COMPLETE, [2.0]), ["COMPLETE [1.0]", "[2.0]"]),
        ((types_pb2.COMPLETE, [1.0]), (types_pb2.PRUNED, []), ["COMPLETE", "PRUNED"]),
        ((types_pb2.COMPLETE, [1.0]), (types_pb2.FAILED, []), ["COMPLETE", "FAIL"]),
        ((types_pb2.PRUNED, []), (types_pb2.COMPLETE, [1.0]), ["PRUNED", "COMPLETE"]),
        ((types_pb2.FAILED, []), (types_pb2.PRUNED, []), ["FAIL", "PRUNED"]),
    ],
    ids=[
        "other-value",
        "pruned-after-complete",
        "failed-after-complete",
        "complete-after-pruned",
        "pruned-after-failed",
    ],
)
def test_tell_a_finished_trial_another_outcome(stub, study, running, first, again, needles):
    told = tell(stub, running.name, *first)
    before = snapshot(stub, study)
    request = pb.TellTrialRequest(trial=running.name, state=again[0], values=again[1])
    expect(PRECONDITION, stub.TellTrial, request, running.name, "already finished", *needles)
    assert snapshot(stub, study) == before
    # The same outcome again is not an error, and changes nothing either.
    assert tell(stub, running.name, *first) == told
    assert snapshot(stub, study) == before


@pytest.mark.parametrize(
    ("rpc", "make", "action"),
    [
        (
            "ReportIntermediateValue",
            lambda t: pb.ReportIntermediateValueRequest(trial=t, step=5, value=1.0),
            "report to",
        ),
        ("ShouldPrune", lambda t: pb.ShouldPruneRequest(trial=t), "check pruning of"),
        (
            "SuggestParameter",
            lambda t: pb.SuggestParameterRequest(trial=t, parameter=param("y", fdist(0, 1))),
            "suggest a parameter of",
        ),
        (
            "SuggestParameter",
            lambda t: pb.SuggestParameterRequest(trial=t, parameter=X),
            "suggest a parameter of",
        ),
        (
            "SetTrialUserAttributes",
            lambda t: pb.SetTrialUserAttributesRequest(trial=t, user_attrs={"k": "v"}),
            "set user attributes of",
        ),
    ],
    ids=["report", "should-prune", "suggest-new", "suggest-known", "set-user-attrs"],
)
@pytest.mark.parametrize("state", [types_pb2.COMPLETE, types_pb2.PRUNED, types_pb2.FAILED])
def test_change_a_finished_trial(stub, study, running, rpc, make, action, state):
    tell(stub, running.name, state, [3.0] if state == types_pb2.COMPLETE else [])
    before = snapshot(stub, study)
    state_name = "FAIL" if state == types_pb2.FAILED else types_pb2.TrialState.Name(state)
    _, detail = expect(
        PRECONDITION, getattr(stub, rpc), make(running.name), action, running.name, state_name
    )
    assert detail.violations[0].subject == "trial"
    assert snapshot(stub, study) == before


def test_act_on_a_waiting_trial(stub, study):
    waiting = stub.EnqueueTrial(
        pb.EnqueueTrialRequest(parent=study, params={"x": types_pb2.Value(double_value=0.25)})
    )
    assert waiting.state == types_pb2.WAITING
    before = snapshot(stub, study)
    request = pb.TellTrialRequest(trial=waiting.name, state=types_pb2.COMPLETE, values=[1.0])
    expect(PRECONDITION, stub.TellTrial, request, "WAITING", "ask")
    request = pb.ReportIntermediateValueRequest(trial=waiting.name, step=0, value=1.0)
    expect(PRECONDITION, stub.ReportIntermediateValue, request, "WAITING")
    assert snapshot(stub, study) == before


# -- counts, pages, best trial ------------------------------------------------------------------


@pytest.mark.parametrize("count", [1001, 10**6, -1, -(2**31)])
def test_ask_count_out_of_range(stub, study, count):
    before = snapshot(stub, study)
    _, detail = expect(
        INVALID, stub.AskTrials, pb.AskTrialsRequest(parent=study, count=count), "count", str(count)
    )
    assert detail.field_violations[0].field == "count"
    assert snapshot(stub, study) == before


def test_ask_count_at_the_limit(stub, study):
    assert len(ask(stub, study, count=1000)) == 1000


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


BAD_TOKENS = [
    "x",
    "!!!!",
    "é",
    _token(b"not json"),
    _token(b"[1]"),
    _token(b'{"before": 1}'),
    _token(b"\xff\xfe"),
    _token(b'{"after": null}'),
    _token(b'{"after": [1]}'),
]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_bad_page_token(stub, study, token):
    for rpc, request in [
        (stub.ListTrials, pb.ListTrialsRequest(parent=study, page_token=token)),
        (stub.ListStudies, pb.ListStudiesRequest(parent=PARENT, page_token=token)),
    ]:
        _, detail = expect(INVALID, rpc, request, "page_token")
        assert detail.field_violations[0].field == "page_token"


def test_page_token_of_the_other_list(stub, study):
    # Trial pages continue after a number, study pages after a name: not interchangeable.
    request = pb.ListTrialsRequest(parent=study, page_token=_token(b'{"after": "s"}'))
    expect(INVALID, stub.ListTrials, request, "page_token")
    request = pb.ListStudiesRequest(parent=PARENT, page_token=_token(b'{"after": 3}'))
    expect(INVALID, stub.ListStudies, request, "page_token")


def test_negative_page_size(stub, study):
    expect(INVALID, stub.ListTrials, pb.ListTrialsRequest(parent=study, page_size=-1), "page_size")
    request = pb.ListStudiesRequest(parent=PARENT, page_size=-3)
    expect(INVALID, stub.ListStudies, request, "page_size", "-3")


@pytest.mark.parametrize("states", [[types_pb2.TRIAL_STATE_UNSPECIFIED], [types_pb2.COMPLETE, 9]])
def test_list_trials_unknown_state_filter(stub, study, states):
    request = pb.ListTrialsRequest(parent=study, states=states)
    _, detail = expect(INVALID, stub.ListTrials, request, "unknown trial state")
    assert detail.field_violations[0].field == "states"


def test_best_trial_without_a_complete_trial(stub, study_name):
    name = create(stub, study_name).name
    expect(PRECONDITION, stub.GetBestTrial, pb.GetBestTrialRequest(parent=name), "no complete")
    trial = ask(stub, name)[0]
    tell(stub, trial.name, types_pb2.PRUNED)
    _, detail = expect(
        PRECONDITION, stub.GetBestTrial, pb.GetBestTrialRequest(parent=name), name, "no complete"
    )
    assert detail.violations[0].subject == "parent"
    assert list(stub.GetParetoFront(pb.GetParetoFrontRequest(parent=name)).trials) == []


def test_best_trial_of_a_multi_objective_study(stub, two_objective):
    request = pb.GetBestTrialRequest(parent=two_objective)
    expect(PRECONDITION, stub.GetBestTrial, request, "multi-objective", "Pareto")


# -- retried requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("space", [[], [X]], ids=["define-by-run", "fixed-space"])
def test_retried_ask_returns_the_same_trials(stub, study, space):
    request = pb.AskTrialsRequest(parent=study, search_space=space, count=3, request_id="ask-1")
    first = stub.AskTrials(request).trials
    after_first = snapshot(stub, study)
    again = stub.AskTrials(request).trials
    assert [t.number for t in again] == [t.number for t in first]
    assert [t.params for t in again] == [t.params for t in first]
    assert snapshot(stub, study) == after_first
    # Another request id is another request.
    request.request_id = "ask-2"
    assert {t.number for t in stub.AskTrials(request).trials}.isdisjoint(t.number for t in first)


def test_retried_ask_after_the_trial_was_told(stub, study):
    request = pb.AskTrialsRequest(parent=study, request_id=uuid.uuid4().hex)
    (first,) = stub.AskTrials(request).trials
    tell(stub, first.name, values=[1.0])
    after = snapshot(stub, study)
    (again,) = stub.AskTrials(request).trials
    assert again.number == first.number and again.state == types_pb2.COMPLETE
    assert snapshot(stub, study) == after


def test_retried_enqueue_enqueues_once(stub, study):
    request = pb.EnqueueTrialRequest(
        parent=study, params={"x": types_pb2.Value(double_value=0.125)}, request_id="enq-1"
    )
    first = stub.EnqueueTrial(request)
    after_first = snapshot(stub, study)
    assert stub.EnqueueTrial(request) == first
    assert snapshot(stub, study) == after_first
    waiting = stub.ListTrials(pb.ListTrialsRequest(parent=study, states=[types_pb2.WAITING]))
    assert [t.number for t in waiting.trials] == [first.number]


def test_retried_enqueue_that_was_skipped(stub, study):
    params = {"x": types_pb2.Value(double_value=0.125)}
    stub.EnqueueTrial(pb.EnqueueTrialRequest(parent=study, params=params))
    request = pb.EnqueueTrialRequest(
        parent=study, params=params, skip_if_exists=True, request_id="enq-skip"
    )
    assert stub.EnqueueTrial(request) == pb.Trial()
    after = snapshot(stub, study)
    assert stub.EnqueueTrial(request) == pb.Trial()
    assert snapshot(stub, study) == after


def test_retried_create_returns_the_study(stub, study_name):
    request = pb.CreateStudyRequest(parent=PARENT, study_id=study_name, request_id="create-1")
    first = stub.CreateStudy(request)
    assert stub.CreateStudy(request) == first
    assert sum(name == first.name for name in studies(stub)) == 1
    # Another request for the same study is not a retry.
    request.request_id = "create-2"
    expect(EXISTS, stub.CreateStudy, request, first.name)


def test_retried_tell_and_report(stub, study, running):
    # Idempotent by what they name (the step, the outcome): a retry needs no request id.
    request = pb.ReportIntermediateValueRequest(trial=running.name, step=3, value=0.5)
    first = stub.ReportIntermediateValue(request)
    after = snapshot(stub, study)
    assert stub.ReportIntermediateValue(request) == first
    retried_with_another_value = pb.ReportIntermediateValueRequest(
        trial=running.name, step=3, value=0.75
    )
    stub.ReportIntermediateValue(retried_with_another_value)
    assert snapshot(stub, study) == after  # the first value of a step stays
    told = tell(stub, running.name, values=[0.25])
    after = snapshot(stub, study)
    assert tell(stub, running.name, values=[0.25]) == told
    assert snapshot(stub, study) == after


# -- the client maps every one of these to its own exceptions -----------------------------------


def test_client_raises_its_own_exceptions(client, stub, study_name):
    study = client.create_study(name=study_name, sampler={"type": "random", "seed": 0})
    two = client.create_study(name=f"{study_name}-2", directions=["minimize", "maximize"])
    trial = study.ask({"x": hc.FloatDistribution(0.0, 1.0)})
    before = snapshot(stub, study.resource_name)

    expect_client(hc.NotFound, lambda: client.get_study("no-such-study"), "no-such-study")
    expect_client(hc.NotFound, lambda: study.get_trial(99), "trials/99")
    expect_client(hc.AlreadyExists, lambda: client.create_study(name=study_name), study_name)
    expect_client(
        hc.FailedPrecondition,
        lambda: client.create_study(name=study_name, direction="maximize", load_if_exists=True),
        "directions",
    )
    expect_client(
        hc.InvalidArgument,
        lambda: study.ask({"y": hc.FloatDistribution(2.0, 1.0)}),
        "search_space[0]",
    )
    expect_client(
        hc.InvalidArgument, lambda: study.ask({"y": hc.IntDistribution(0, 9, step=0)}), "step"
    )
    expect_client(hc.InvalidArgument, lambda: study.ask_batch(None, 1001), "count")
    expect_client(hc.InvalidArgument, lambda: trial.suggest_float("y", 1.0, 0.0), "low")
    expect_client(hc.InvalidArgument, lambda: trial.suggest_float("y", 0.0, 1.0, log=True), "log")
    expect_client(hc.InvalidArgument, lambda: trial.suggest_categorical("y", []), "choices")
    expect_client(hc.InvalidArgument, lambda: trial.report(math.nan, 0), "nan")
    expect_client(hc.InvalidArgument, lambda: trial.report(1.0, -1), "step")
    expect_client(hc.InvalidArgument, lambda: study.tell(trial, math.inf), "inf")
    expect_client(hc.InvalidArgument, lambda: study.tell(trial, [1.0, 2.0]), "2 value")
    expect_client(hc.InvalidArgument, lambda: study.tell(trial, 1.0, state="pruned"), "PRUNED")
    expect_client(hc.FailedPrecondition, lambda: study.best_trial, "no complete")
    assert snapshot(stub, study.resource_name) == before
    assert trial.running

    other = two.ask()
    expect_client(hc.FailedPrecondition, lambda: other.report(1.0, 0), "objectives")
    expect_client(hc.InvalidArgument, lambda: two.tell(other, 1.0), "2 objective")

    study.tell(trial, 1.0)
    expect_client(hc.FailedPrecondition, lambda: study.tell(trial, 2.0), "already finished")
    expect_client(hc.FailedPrecondition, lambda: trial.report(1.0, 1), "COMPLETE")
    expect_client(hc.FailedPrecondition, lambda: trial.set_user_attr("k", 1), "COMPLETE")
    expect_client(hc.FailedPrecondition, lambda: trial.suggest_int("n", 0, 3), "COMPLETE")
    assert study.tell(trial, 1.0).values == [1.0]  # the same outcome again is fine
    assert study.get_trial(trial.number).values == [1.0]

    # Refused by the client itself, before any call: still its own exception.
    with pytest.raises(hc.InvalidArgument):
        client.create_study(name=f"{study_name}-3", sampler={"type": "no-such-sampler"})
    with pytest.raises(hc.InvalidArgument):
        client.create_study(name=f"{study_name}-3", pruner={"type": "median", "bogus": 1})
    with pytest.raises(hc.InvalidArgument):
        study.tell(trial, 1.0, state="finished")
    assert f"{PARENT}/studies/{study_name}-3" not in studies(stub)


# -- inputs that once broke the server -----------------------------------


HUGE_SPACES = {
    # numpy's uniform() raises OverflowError: high - low is not finite.
    "float-range-overflows": param("p", fdist(-1e308, 1e308)),
    # Optuna stores parameter values as floats: 2**63 - 10 is read back as 2**63, which no
    # int64 holds, and the study's GetTrial/ListTrials/TellTrial then fail with INTERNAL.
    "int-beyond-2**53": param("p", idist(2**63 - 10, 2**63 - 1)),
    # Optuna's Decimal arithmetic raises decimal.InvalidOperation, not ValueError.
    "float-step-tiny": param("p", fdist(0.0, 1e10, step=1e-300)),
}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("space", HUGE_SPACES.values(), ids=HUGE_SPACES.keys())
def test_extreme_bounds_are_invalid_argument(stub, study, space):
    before = snapshot(stub, study)
    try:
        expect(INVALID, stub.AskTrials, pb.AskTrialsRequest(parent=study, search_space=[space]))
    finally:
        assert snapshot(stub, study) == before


def test_ask_with_another_kind_for_a_known_parameter_changes_nothing(stub, study):
    # ``x`` was a float in the study's first trial; Optuna's storage refuses another kind, but
    # only once study.ask() has created the trial.
    before = snapshot(stub, study)
    request = pb.AskTrialsRequest(parent=study, search_space=[param("x", idist(0, 3))])
    expect(INVALID, stub.AskTrials, request, "'x'")
    assert snapshot(stub, study) == before


def test_nan_user_attribute_is_invalid(stub, study, running):
    request = pb.SetTrialUserAttributesRequest(trial=running.name, user_attrs={"n": math.nan})
    expect(INVALID, stub.SetTrialUserAttributes, request, "user_attrs")


def test_enormous_lease_seconds_is_invalid(stub, study_name):
    # Once accepted: the first ask then failed with INTERNAL (the lease's expiry does not fit a
    # Timestamp) after creating the trial, and ListTrials of the study failed for good.
    request = pb.CreateStudyRequest(
        parent=PARENT, study_id=study_name, options=pb.StudyOptions(lease_seconds=1e300)
    )
    expect(INVALID, stub.CreateStudy, request, "lease_seconds")


def test_enqueue_nan_is_invalid(stub, study):
    request = pb.EnqueueTrialRequest(
        parent=study, params={"x": types_pb2.Value(double_value=math.nan)}
    )
    before = snapshot(stub, study)
    expect(INVALID, stub.EnqueueTrial, request, "params[x]")
    assert snapshot(stub, study) == before
