"""Bad input, on both backends: a precise status code and message, the field at fault, and no
change to the study. (Malformed names, undecodable fields and out-of-range proto enums are
the wire's: tests/server/test_bad_input.py.)"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hposerve.v1 import specs_pb2, types_pb2

from .backends import Backend, Trial
from .cases import X, refused

NAN, INF = math.nan, math.inf
INVALID, PRECONDITION = "INVALID_ARGUMENT", "FAILED_PRECONDITION"
NOT_FOUND, EXISTS = "NOT_FOUND", "ALREADY_EXISTS"


# -- creating studies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directions", "pruner", "needles"),
    [
        (["minimize", "maximize"], "median", ["multi-objective", "none"]),
        (["minimize", "minimize"], "threshold", ["multi-objective"]),
        (["minimize", "maximize"], None, []),  # the default pruner is fine: it is none
    ],
)
def test_multi_objective_study_with_a_pruner(
    backend: Backend, name: str, directions: list[str], pruner: str | None, needles: list[str]
) -> None:
    specs = {
        "median": specs_pb2.PrunerSpec(median=specs_pb2.MedianPruner()),
        "threshold": specs_pb2.PrunerSpec(threshold=specs_pb2.ThresholdPruner(upper=1.0)),
    }
    create = lambda: backend.create_study(  # noqa: E731
        name, directions=directions, pruner=specs.get(pruner or "")
    )
    if not needles:
        assert create().directions == tuple(directions)
        return
    refused(INVALID, create, *needles)
    assert f"namespaces/default/studies/{name}" not in backend.study_names()


def test_multi_objective_study_with_a_single_objective_sampler(backend: Backend, name: str) -> None:
    cmaes = specs_pb2.SamplerSpec(cmaes=specs_pb2.CmaEsSampler())
    refused(
        INVALID,
        lambda: backend.create_study(name, directions=["minimize"] * 2, sampler=cmaes),
        "cmaes",
        "single-objective",
    )
    assert f"namespaces/default/studies/{name}" not in backend.study_names()


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        ({"lease_seconds": 0}, ["lease_seconds", "0"]),
        ({"lease_seconds": -5}, ["lease_seconds", "-5"]),
        ({"lease_seconds": NAN}, ["lease_seconds", "nan"]),
        ({"lease_seconds": INF}, ["lease_seconds", "inf"]),
        # Once accepted: the first ask then failed with INTERNAL (the lease's expiry does not
        # fit a Timestamp) after creating the trial, and ListTrials failed for good.
        ({"lease_seconds": 1e300}, ["lease_seconds"]),
        ({"max_retries": -1}, ["max_retries", "-1"]),
    ],
    ids=["lease-0", "lease-negative", "lease-nan", "lease-inf", "lease-enormous", "retries-neg"],
)
def test_invalid_study_options(
    backend: Backend, name: str, options: dict[str, Any], needles: list[str]
) -> None:
    refused(INVALID, lambda: backend.create_study(name, options=options), *needles)
    assert f"namespaces/default/studies/{name}" not in backend.study_names()


@pytest.mark.parametrize(
    ("namespace", "study_id", "field"),
    [
        ("Team-A", "s", "namespace"),
        ("team_a", "s", "namespace"),
        ("-team", "s", "namespace"),
        ("a" * 64, "s", "namespace"),
        ("default", "", "study"),
        ("default", "-s", "study"),
        ("default", ".s", "study"),
        ("default", "a/b", "study"),
        ("default", "a b", "study"),
        ("default", "s" * 129, "study"),
        ("default", "s\u00e9", "study"),
    ],
)
def test_invalid_namespace_or_study_id(
    backend: Backend, namespace: str, study_id: str, field: str
) -> None:
    known = backend.study_names()
    offending = namespace if field == "namespace" else study_id
    error = refused(
        INVALID,
        lambda: backend.create_study(study_id, namespace=namespace),
        field,
        repr(offending),
    )
    # The domain's name for the field, or the request's.
    aliases = {"namespace": ("namespace", "parent"), "study": ("study", "study_id")}
    assert error.field in aliases[field]
    assert backend.study_names() == known


@pytest.mark.parametrize("namespace", ["Team", "a_b", "-a"])
def test_invalid_namespace_when_listing(backend: Backend, namespace: str) -> None:
    refused(INVALID, lambda: backend.list_studies(namespace=namespace), repr(namespace))


def test_create_an_existing_study(backend: Backend, study: str) -> None:
    resource = f"namespaces/default/studies/{study}"
    before = backend.snapshot(study)
    error = refused(EXISTS, lambda: backend.create_study(study), resource, "load_if_exists")
    assert error.reason == "ALREADYEXISTS"

    def load(*directions: str) -> Any:
        return backend.create_study(study, directions=directions, load_if_exists=True)

    refused(PRECONDITION, lambda: load("maximize"), resource, "minimize", "maximize")
    refused(PRECONDITION, lambda: load("minimize", "minimize"), resource, "directions")
    assert backend.snapshot(study) == before
    assert backend.get_study(study).directions == ("minimize",)
    # Loaded with the same directions: the same study, unchanged.
    loaded = backend.create_study(study, directions=["minimize"], load_if_exists=True)
    assert loaded.name == resource
    assert backend.snapshot(study) == before


# -- asking and suggesting ------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1001, 10**6, -1, -(2**31)])
def test_ask_count_out_of_range(backend: Backend, study: str, count: int) -> None:
    before = backend.snapshot(study)
    error = refused(INVALID, lambda: backend.ask(study, count=count), "count", str(count))
    assert error.field == "count"
    assert backend.snapshot(study) == before


def test_ask_count_at_the_limit(backend: Backend, study: str) -> None:
    assert len(backend.ask(study, count=1000)) == 1000


def test_suggest_another_kind_for_a_known_parameter(
    backend: Backend, study: str, running: Trial
) -> None:
    before = backend.snapshot(study)
    other = CategoricalDistribution(["a"])
    refused(INVALID, lambda: backend.suggest(study, running.number, "x", other), "'x'")
    assert backend.snapshot(study) == before


def test_ask_with_another_kind_for_a_known_parameter_changes_nothing(
    backend: Backend, study: str
) -> None:
    # ``x`` was a float in the study's first trial; Optuna's storage refuses another kind, but
    # only once study.ask() has created the trial.
    before = backend.snapshot(study)
    refused(INVALID, lambda: backend.ask(study, {"x": IntDistribution(0, 3)}), "'x'")
    assert backend.snapshot(study) == before


def test_suggest_a_parameter_outside_the_grid(backend: Backend, name: str) -> None:
    axis = specs_pb2.GridAxis(name="x", values=[types_pb2.Value(double_value=0.5)])
    grid = specs_pb2.SamplerSpec(grid=specs_pb2.GridSampler(search_space=[axis]))
    backend.create_study(name, sampler=grid)
    (trial,) = backend.ask(name)
    before = backend.snapshot(name)
    y = FloatDistribution(0, 1)
    refused(INVALID, lambda: backend.suggest(name, trial.number, "y", y), "'y'", "grid")
    refused(INVALID, lambda: backend.ask(name, {"x": y, "y": y}), "'y'", "grid")
    assert backend.snapshot(name) == before


# -- telling --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "values", "needles"),
    [
        ("complete", [NAN], ["values", "nan"]),
        ("complete", [INF], ["values", "inf"]),
        ("complete", [-INF], ["values", "-inf"]),
        ("complete", [], ["1 objective", "0 value"]),
        ("complete", [1.0, 2.0], ["1 objective", "2 value"]),
        ("pruned", [1.0], ["COMPLETE only", "PRUNED"]),
        ("failed", [1.0], ["COMPLETE only", "FAIL"]),
        ("running", [], ["RUNNING"]),
        ("waiting", [], ["WAITING"]),
    ],
    ids=[
        "nan",
        "inf",
        "minus-inf",
        "no-value",
        "two-values",
        "pruned-with-values",
        "failed-with-values",
        "running",
        "waiting",
    ],
)
def test_tell_invalid_outcome(
    backend: Backend,
    study: str,
    running: Trial,
    state: str,
    values: list[float],
    needles: list[str],
) -> None:
    before = backend.snapshot(study)
    error = refused(INVALID, lambda: backend.tell(study, running.number, state, values), *needles)
    assert error.field in ("state", "values")
    assert backend.snapshot(study) == before
    assert backend.get_trial(study, running.number).state == "running"


@pytest.mark.parametrize("values", [[1.0], [], [1.0, 2.0, 3.0], [1.0, NAN]])
def test_tell_wrong_number_of_values_on_two_objectives(
    backend: Backend, two_objective: str, values: list[float]
) -> None:
    (trial,) = backend.ask(two_objective, X)
    before = backend.snapshot(two_objective)
    needles = ["values"] if len(values) == 2 else ["2 objective", f"{len(values)} value"]
    refused(
        INVALID, lambda: backend.tell(two_objective, trial.number, "complete", values), *needles
    )
    assert backend.snapshot(two_objective) == before


@pytest.mark.parametrize(
    ("first", "again", "needles"),
    [
        (("complete", [1.0]), ("complete", [2.0]), ["COMPLETE [1.0]", "[2.0]"]),
        (("complete", [1.0]), ("pruned", []), ["COMPLETE", "PRUNED"]),
        (("complete", [1.0]), ("failed", []), ["COMPLETE", "FAIL"]),
        (("pruned", []), ("complete", [1.0]), ["PRUNED", "COMPLETE"]),
        (("failed", []), ("pruned", []), ["FAIL", "PRUNED"]),
    ],
    ids=[
        "other-value",
        "pruned-after-complete",
        "failed-after-complete",
        "complete-after-pruned",
        "pruned-after-failed",
    ],
)
def test_tell_a_finished_trial_another_outcome(
    backend: Backend,
    study: str,
    running: Trial,
    first: tuple[str, list[float]],
    again: tuple[str, list[float]],
    needles: list[str],
) -> None:
    told = backend.tell(study, running.number, *first)
    before = backend.snapshot(study)
    refused(
        PRECONDITION,
        lambda: backend.tell(study, running.number, *again),
        running.name,
        "already finished",
        *needles,
    )
    assert backend.snapshot(study) == before
    # The same outcome again is not an error, and changes nothing either.
    assert backend.tell(study, running.number, *first) == told
    assert backend.snapshot(study) == before


# Calls that need a running trial, and the action their refusal names.
TRIAL_CALLS: dict[str, tuple[Callable[[Backend, str, int], Any], str]] = {
    "report": (lambda b, s, n: b.report(s, n, step=5, value=1.0), "report to"),
    "should-prune": (lambda b, s, n: b.should_prune(s, n), "check pruning of"),
    "suggest-new": (
        lambda b, s, n: b.suggest(s, n, "y", FloatDistribution(0, 1)),
        "suggest a parameter of",
    ),
    "suggest-known": (lambda b, s, n: b.suggest(s, n, "x", X["x"]), "suggest a parameter of"),
    "set-user-attrs": (
        lambda b, s, n: b.set_user_attrs(s, n, {"k": "v"}),
        "set user attributes of",
    ),
}


@pytest.mark.parametrize(("call", "action"), TRIAL_CALLS.values(), ids=TRIAL_CALLS.keys())
@pytest.mark.parametrize("state", ["complete", "pruned", "failed"])
def test_change_a_finished_trial(
    backend: Backend,
    study: str,
    running: Trial,
    call: Callable[[Backend, str, int], Any],
    action: str,
    state: str,
) -> None:
    backend.tell(study, running.number, state, [3.0] if state == "complete" else [])
    before = backend.snapshot(study)
    state_name = "FAIL" if state == "failed" else state.upper()
    error = refused(
        PRECONDITION, lambda: call(backend, study, running.number), action, running.name, state_name
    )
    assert error.field == "trial"
    assert backend.snapshot(study) == before


def test_act_on_a_waiting_trial(backend: Backend, study: str) -> None:
    waiting = backend.enqueue(study, {"x": 0.25})
    assert waiting is not None and waiting.state == "waiting"
    before = backend.snapshot(study)
    n = waiting.number
    refused(PRECONDITION, lambda: backend.tell(study, n, "complete", [1.0]), "WAITING", "ask")
    refused(PRECONDITION, lambda: backend.report(study, n, step=0, value=1.0), "WAITING")
    assert backend.snapshot(study) == before


# -- reporting ------------------------------------------------------------------------------------


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
def test_report_invalid_value(
    backend: Backend, study: str, running: Trial, step: int, value: float, needles: list[str]
) -> None:
    before = backend.snapshot(study)
    refused(
        INVALID, lambda: backend.report(study, running.number, step=step, value=value), *needles
    )
    assert backend.snapshot(study) == before


def test_report_on_a_multi_objective_study(backend: Backend, two_objective: str) -> None:
    (trial,) = backend.ask(two_objective, X)
    before = backend.snapshot(two_objective)
    resource = f"namespaces/default/studies/{two_objective}"
    n = trial.number
    report = lambda: backend.report(two_objective, n, step=0, value=1.0)  # noqa: E731
    refused(PRECONDITION, report, "2 objectives", resource)
    refused(PRECONDITION, lambda: backend.should_prune(two_objective, n), "multi")
    assert backend.snapshot(two_objective) == before


# -- unknown studies and trials -------------------------------------------------------------------

STUDY_CALLS: dict[str, Callable[[Backend, str], Any]] = {
    "get-study": lambda b, s: b.get_study(s),
    "delete-study": lambda b, s: b.delete_study(s),
    "ask": lambda b, s: b.ask(s),
    "list-trials": lambda b, s: b.list_trials(s),
    "enqueue": lambda b, s: b.enqueue(s, {"x": 1.0}),
    "best-trial": lambda b, s: b.best_trial(s),
    "pareto-front": lambda b, s: b.pareto_front(s),
    "get-trial": lambda b, s: b.get_trial(s, 0),
    "tell": lambda b, s: b.tell(s, 0, "failed"),
}


@pytest.mark.parametrize("call", STUDY_CALLS.values(), ids=STUDY_CALLS.keys())
def test_unknown_study(backend: Backend, study: str, call: Callable[[Backend, str], Any]) -> None:
    known = backend.study_names()
    before = backend.snapshot(study)
    missing = "namespaces/default/studies/no-such-study"
    error = refused(NOT_FOUND, lambda: call(backend, "no-such-study"), missing, "does not exist")
    assert error.reason == "NOTFOUND"
    assert backend.study_names() == known
    assert backend.snapshot(study) == before


UNKNOWN_TRIAL_CALLS: dict[str, Callable[[Backend, str, int], Any]] = {
    "get-trial": lambda b, s, n: b.get_trial(s, n),
    "tell": lambda b, s, n: b.tell(s, n, "complete", [1.0]),
    "report": lambda b, s, n: b.report(s, n, step=0, value=1.0),
    "should-prune": lambda b, s, n: b.should_prune(s, n),
    "suggest": lambda b, s, n: b.suggest(s, n, "x", X["x"]),
    "set-user-attrs": lambda b, s, n: b.set_user_attrs(s, n, {}),
}


@pytest.mark.parametrize("call", UNKNOWN_TRIAL_CALLS.values(), ids=UNKNOWN_TRIAL_CALLS.keys())
@pytest.mark.parametrize("number", [7, 999_999_999_999_999_999])
def test_unknown_trial(
    backend: Backend,
    study: str,
    running: Trial,
    call: Callable[[Backend, str, int], Any],
    number: int,
) -> None:
    before = backend.snapshot(study)
    missing = f"namespaces/default/studies/{study}/trials/{number}"
    refused(NOT_FOUND, lambda: call(backend, study, number), missing)
    assert backend.snapshot(study) == before


# -- best trials ----------------------------------------------------------------------------------


def test_best_trial_without_a_complete_trial(backend: Backend, name: str) -> None:
    backend.create_study(name)
    refused(PRECONDITION, lambda: backend.best_trial(name), "no complete")
    (trial,) = backend.ask(name)
    backend.tell(name, trial.number, "pruned")
    resource = f"namespaces/default/studies/{name}"
    error = refused(PRECONDITION, lambda: backend.best_trial(name), resource, "no complete")
    assert error.field == "parent"
    assert backend.pareto_front(name) == []


def test_best_trial_of_a_multi_objective_study(backend: Backend, two_objective: str) -> None:
    refused(PRECONDITION, lambda: backend.best_trial(two_objective), "multi-objective", "Pareto")
