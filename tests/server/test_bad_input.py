"""Bad input that only the wire can carry, through the real server: a precise status code, a
specific message, a google.rpc detail, and no change to the study.

Here: malformed resource names and page tokens, undecodable fields, proto enums out of range,
distributions and values the converters must refuse before the domain sees them, and the
client's own exceptions. Bad input the domain can be handed (values, steps, counts, options,
finished and waiting trials, conflicting distributions, unknown studies and trials, retried
requests) is the conformance suite's: tests/server/conformance, on the domain and through gRPC.

The raw stub is used where the client would refuse locally (or could not express the request),
the client where its error mapping is under test.
"""

from __future__ import annotations

import base64
import math
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


# Out-of-range options are the conformance suite's (tests/server/conformance/test_refusals.py).
@pytest.mark.parametrize(
    ("request_fields", "needles"),
    [
        ({"directions": [types_pb2.DIRECTION_UNSPECIFIED]}, ["MINIMIZE or MAXIMIZE"]),
        ({"directions": [7]}, ["MINIMIZE or MAXIMIZE"]),
    ],
    ids=["unspecified-direction", "unknown-direction"],
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


# -- tell -----------------------------------------------------------------------------------------


# States out of the proto's enum; the other bad outcomes are the conformance suite's.
@pytest.mark.parametrize(
    ("state", "values", "needles"),
    [
        (types_pb2.TRIAL_STATE_UNSPECIFIED, [1.0], ["state", "0"]),
        (42, [], ["42"]),
    ],
    ids=["unspecified", "unknown-state"],
)
def test_tell_invalid_outcome(stub, study, running, state, values, needles):
    before = snapshot(stub, study)
    request = pb.TellTrialRequest(trial=running.name, state=state, values=values)
    _, detail = expect(INVALID, stub.TellTrial, request, *needles)
    assert detail.field_violations[0].field in ("state", "values")
    assert snapshot(stub, study) == before
    assert stub.GetTrial(pb.GetTrialRequest(name=running.name)).state == types_pb2.RUNNING


# -- names and unknown resources ----------------------------------------------------------------


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


# Malformed parents; invalid namespace and study ids are the conformance suite's.
@pytest.mark.parametrize(
    ("parent", "study_id", "field"),
    [
        ("default", "s", "parent"),
        ("namespaces/default/studies/s", "s", "parent"),
    ],
)
def test_invalid_parent(stub, parent, study_id, field):
    known = studies(stub)
    request = pb.CreateStudyRequest(parent=parent, study_id=study_id)
    _, detail = expect(INVALID, stub.CreateStudy, request, field, repr(parent))
    assert detail.field_violations[0].field == field
    assert studies(stub) == known


# -- pages ------------------------------------------------------------------------------------


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
    # As in Optuna: two values for one objective fail the trial unless told COMPLETE.
    told_two = lambda: study.tell(trial, [1.0, 2.0], state="complete")  # noqa: E731
    expect_client(hc.InvalidArgument, told_two, "2 value")
    expect_client(hc.InvalidArgument, lambda: study.tell(trial, 1.0, state="pruned"), "PRUNED")
    expect_client(hc.FailedPrecondition, lambda: study.best_trial, "no complete")
    assert snapshot(stub, study.resource_name) == before
    assert trial.running

    other = two.ask()
    expect_client(hc.FailedPrecondition, lambda: other.report(1.0, 0), "objectives")
    expect_client(hc.InvalidArgument, lambda: two.tell(other, 1.0, state="complete"), "2 objective")

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


def test_nan_user_attribute_is_invalid(stub, study, running):
    request = pb.SetTrialUserAttributesRequest(trial=running.name, user_attrs={"n": math.nan})
    expect(INVALID, stub.SetTrialUserAttributes, request, "user_attrs")


def test_enqueue_nan_is_invalid(stub, study):
    request = pb.EnqueueTrialRequest(
        parent=study, params={"x": types_pb2.Value(double_value=math.nan)}
    )
    before = snapshot(stub, study)
    expect(INVALID, stub.EnqueueTrial, request, "params[x]")
    assert snapshot(stub, study) == before
