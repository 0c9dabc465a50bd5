"""The client against a real authenticated server: a token works for every call style (unary,
session, the heartbeat thread), studies, define-by-run and fixed asks, comparisons, refine and
SearchCV run as before; bad tokens are UNAUTHENTICATED and a viewer's tell PERMISSION_DENIED,
changing nothing; HPOSERVE_TOKEN is enough, for the lab's ``compare run --target`` too; the
token shows in no log record of the client's or the server's."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hposerve.client import (
    Client,
    ClientConfig,
    FloatDistribution,
    IntDistribution,
    PermissionDenied,
    Study,
    TrialPruned,
    Unauthenticated,
)

from .conftest import AuthServer, World

SPACE = {"x": FloatDistribution(-5.0, 5.0), "n": IntDistribution(1, 4)}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HPOSERVE_ setting of the machine running the tests leaks in (HPOSERVE_TEST_ ones stay)."""
    for variable in [v for v in os.environ if re.match(r"HPOSERVE_(?!TEST_)", v)]:
        monkeypatch.delenv(variable)


@pytest.fixture
def target(auth_server: AuthServer) -> str:
    return f"127.0.0.1:{auth_server.port}"


def _client(target: str, token: str, *, sessions: bool = True, **settings: object) -> Client:
    config = ClientConfig(namespace="a", sessions=sessions, initial_backoff=0.01, **settings)
    return Client(target, token=token, config=config)


def _objective(trial: object) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)  # type: ignore[attr-defined]
    kind = trial.suggest_categorical("kind", ["a", "b"])  # type: ignore[attr-defined]
    if kind == "b":
        x += trial.suggest_int("shift", 0, 3)  # type: ignore[attr-defined]
    for step in range(3):
        if trial.report(x * x + step, step):  # type: ignore[attr-defined]
            raise TrialPruned()
    trial.set_user_attr("kind", kind)  # type: ignore[attr-defined]
    return x * x


def _audit(world: World, principal: str) -> list[tuple[str, str]]:
    world.store.audit.flush()
    records = world.store.audit.read(namespace=None, before=None, limit=10_000)
    return [(r.method.rsplit("/", 1)[-1], r.outcome) for r in records if r.principal == principal]


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


@pytest.mark.parametrize("sessions", [True, False], ids=["sessions", "unary"])
def test_a_token_works_for_every_call_style(
    world: World, target: str, sessions: bool, tmp_path: Path
) -> None:
    with _client(target, world.tokens["editor"], sessions=sessions, heartbeat_interval=0.05) as c:
        study = c.create_study(name="dbr", sampler={"type": "random", "seed": 0})
        study.optimize(_objective, n_trials=4)  # define-by-run, reports, user attributes
        trial = study.ask(SPACE)  # fixed space, then kept open for the heartbeat thread
        batch = study.ask_batch(SPACE, 2)
        study.enqueue_trial({"x": 1.0, "n": 2})
        _wait_for(lambda: ("Heartbeat", "OK") in _audit(world, "users/editor"))
        assert not trial.should_prune()
        for t in [trial, *batch]:
            study.tell(t, float(t.params["x"]) ** 2)
        assert len(study.trials) == 8 and study.best_trial.number is not None  # 1 waiting
        assert c.get_study("dbr").get_trial(0).number == 0
        assert [s.name for s in c.list_studies()] == ["dbr"]
        fine, space = c.refine(source="dbr", name="fine", top=3)
        fine.optimize(lambda t: t.params["x"] ** 2, n_trials=2, search_space=space)
        _run_a_comparison(c)
        if sessions:  # every trial call above went over a session: none was refused
            assert c._transport._sessions_paused_until == 0.0
    calls = _audit(world, "users/editor")
    assert {outcome for _, outcome in calls} == {"OK"}, calls
    assert {"CreateStudy", "AskTrials", "SuggestParameter", "ReportIntermediateValue"} <= {
        method for method, _ in calls
    }
    assert {"TellTrial", "Heartbeat", "EnqueueTrial", "CreateComparison"} <= {
        method for method, _ in calls
    }
    # Deleting needs a namespace admin.
    with _client(target, world.tokens["admin"], sessions=sessions) as admin:
        admin.delete_study("fine")
        admin.delete_comparison("cmp")
        assert [s.name for s in admin.list_studies()] == ["dbr"]


def _run_a_comparison(client: Client) -> None:
    comparison = client.create_comparison(
        name="cmp",
        search_space={"x": FloatDistribution(-1.0, 1.0)},
        arms=["random", "tpe"],
        seeds=1,
        trials_per_study=2,
    )
    while (trial := comparison.ask()) is not None:
        comparison.tell(trial, trial.params["x"] ** 2)
    assert client.get_comparison("cmp").finished
    assert [c.name for c in client.list_comparisons()] == ["cmp"]
    assert sum(len(run.trials) for run in comparison.runs()) == 4


@pytest.mark.parametrize("who", ["bad_token", "revoked", "expired_share", "no_token"])
@pytest.mark.parametrize("sessions", [True, False], ids=["sessions", "unary"])
def test_a_wrong_or_revoked_token_is_unauthenticated(
    world: World, target: str, who: str, sessions: bool
) -> None:
    with _client(target, world.tokens["editor"]) as editor:
        study = editor.create_study(name="s")
    with _client(target, world.tokens[who], sessions=sessions) as stranger:
        with pytest.raises(Unauthenticated):
            stranger.get_study("s")
        with pytest.raises(Unauthenticated):
            stranger.create_study(name="other")
        # The trial calls, over a session where sessions are on: refused when it opens.
        theirs = Study(stranger._transport, stranger._heartbeat, study.proto)
        with pytest.raises(Unauthenticated):
            theirs.ask()
        with pytest.raises(Unauthenticated):
            theirs.tell(0, 1.0)
    with _client(target, world.tokens["editor"]) as editor:
        assert [s.name for s in editor.list_studies()] == ["s"]
        assert editor.get_study("s").trials == []


@pytest.mark.parametrize("sessions", [True, False], ids=["sessions", "unary"])
def test_a_viewer_may_read_but_not_tell(world: World, target: str, sessions: bool) -> None:
    with _client(target, world.tokens["editor"]) as editor:
        study = editor.create_study(name="s")
        trial = study.ask(SPACE)
        with _client(target, world.tokens["viewer"], sessions=sessions) as viewer:
            seen = viewer.get_study("s")
            assert [t.number for t in seen.trials] == [trial.number]
            with pytest.raises(PermissionDenied):
                seen.tell(trial.number, 1.0)
            with pytest.raises(PermissionDenied):
                seen.ask()
            with pytest.raises(PermissionDenied):
                viewer.create_study(name="mine")
        state = study.get_trial(trial.number).state  # the tell did nothing
        assert str(getattr(state, "name", state)).upper() == "RUNNING"
        assert len(study.trials) == 1
        study.tell(trial, 1.0)


def test_hposerve_token_is_enough(
    world: World, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPOSERVE_TOKEN", world.tokens["editor"])
    monkeypatch.setenv("HPOSERVE_NAMESPACE", "a")
    # A training script written for a local server, unchanged.
    with Client(target) as client:
        study = client.create_study(name="script", load_if_exists=True)
        study.optimize(_objective, n_trials=2)
        assert study.resource_name == "namespaces/a/studies/script"
    assert ("CreateStudy", "OK") in _audit(world, "users/editor")
    monkeypatch.setenv("HPOSERVE_TOKEN", world.tokens["revoked"])
    with Client(target) as client, pytest.raises(Unauthenticated):
        client.get_study("script")


def test_searchcv_with_a_token(world: World, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn")
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Ridge

    from hposerve.client.sklearn import SearchCV

    X, y = make_regression(n_samples=40, n_features=3, random_state=0)  # noqa: N806
    search = SearchCV(
        Ridge(),
        {"alpha": FloatDistribution(0.01, 10.0, log=True)},
        target=target,
        study_name="ridge",
        namespace="a",
        n_trials=3,
        cv=2,
        client_config=ClientConfig(token=world.tokens["editor"]),
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert world.tokens["editor"] not in repr(search)


def test_the_token_is_in_no_log_record(
    world: World, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [world.tokens[k] for k in ("editor", "viewer", "bad_token")]
    with _client(target, world.tokens["editor"], heartbeat_interval=0.05) as editor:
        study = editor.create_study(name="s")
        trial = study.ask(SPACE)
        _wait_for(lambda: ("Heartbeat", "OK") in _audit(world, "users/editor"))
        errors = []
        with _client(target, world.tokens["viewer"]) as viewer:
            try:
                viewer.get_study("s").tell(trial.number, 1.0)
            except PermissionDenied as error:
                errors.append(error)
        with _client(target, world.tokens["bad_token"]) as stranger:
            try:
                stranger.get_study("s")
            except Unauthenticated as error:
                errors.append(error)
        study.tell(trial, 1.0)
    assert len(errors) == 2
    text = caplog.text + "".join(f"{e} {e!r} {e.message}" for e in errors)
    text += "".join(str(record.__dict__) for record in caplog.records)
    for secret in secrets:
        assert secret not in text
        assert secret[4:] not in text  # nor without its prefix


@pytest.fixture
def lab_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("HPOSERVE_TOKEN", world.tokens["editor"])
    monkeypatch.setenv("HPOSERVE_NAMESPACE", "a")
    yield


@pytest.mark.usefixtures("lab_environment")
def test_the_lab_compares_against_an_authenticated_server(
    world: World, target: str, tmp_path: Path
) -> None:
    from hposerve import cli

    out = tmp_path / "report"
    argv = ["compare", "run", "--task", "branin", "--samplers", "random,tpe", "--seeds", "1"]
    argv += ["--trials", "4", "--workers", "1", "--out", str(out), "--target", target]
    assert cli.main([*argv, "--name", "lab"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [arm["trials_done"] for arm in results["arms"].values()] == [[4], [4]]
    # The trainer processes authenticated with the token they inherited.
    calls = _audit(world, "users/editor")
    assert ("TellTrial", "OK") in calls and ("AskComparisonTrial", "OK") in calls
    assert {outcome for _, outcome in calls} == {"OK"}
