"""The dashboard over HTTP: the live storage, names as people gave them, and the access rule."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from hposerve.client import Client, ClientConfig

from .conftest import Running


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _call(url: str, *, token: str | None = None, method: str = "GET", body: Any = None,
          form: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _studies(running: Running, token: str | None = None) -> dict[str, int]:
    status, _, body = _call(running.dashboard_url + "/api/studies", token=token)
    assert status == 200, body
    return {s["study_name"]: s["study_id"] for s in json.loads(body)["study_summaries"]}


def _detail(running: Running, study_id: int) -> dict[str, Any]:
    status, _, body = _call(f"{running.dashboard_url}/api/studies/{study_id}")
    assert status == 200, body
    return json.loads(body)


def test_the_dashboard_shows_the_live_studies_by_their_names(observed: Running) -> None:
    with Client(observed.target) as client:
        study = client.create_study(name="live", direction="minimize")
        for x in (3.0, 1.0, 2.0):
            study.tell(study.ask(), x)
    with Client(observed.target, config=ClientConfig(namespace="team")) as client:
        client.create_study(name="other", direction="maximize")
    studies = _studies(observed)
    assert set(studies) == {"live", "team/other"}
    status, _, body = _call(f"{observed.dashboard_url}/api/studies/{studies['live']}")
    detail = json.loads(body)
    assert status == 200 and detail["name"] == "live"
    assert [t["values"] for t in detail["trials"]] == [[3.0], [1.0], [2.0]]
    assert [t["number"] for t in detail["best_trials"]] == [1]
    # A trainer's next trial is seen at once: the dashboard reads the server's own storage.
    with Client(observed.target) as client:
        study = client.get_study("live")
        study.tell(study.ask(), 0.5)
    # (optuna-dashboard caches a study's trials for 2 s)
    deadline = time.monotonic() + 10
    while len(_detail(observed, studies["live"])["trials"]) != 4:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # Structure is the service's: no create or delete through the dashboard.
    assert _call(observed.dashboard_url + "/api/studies", method="POST",
                 body={"study_name": "x", "directions": ["minimize"]})[0] == 403  # fmt: skip
    url = f"{observed.dashboard_url}/api/studies/{studies['live']}"
    assert _call(url, method="DELETE")[0] == 403
    assert set(_studies(observed)) == {"live", "team/other"}


@pytest.fixture
def teams(observed_auth: Running) -> Running:
    tokens = observed_auth.tokens
    for key, namespace in (("a_editor", "a"), ("b_editor", "b")):
        config = ClientConfig(namespace=namespace)
        with Client(observed_auth.target, token=tokens[key], config=config) as client:
            study = client.create_study(name=f"{namespace}-study", direction="minimize")
            study.tell(study.ask(), 1.0)
            study.ask()  # left running, for a tell from the dashboard
    return observed_auth


def test_the_dashboard_asks_for_a_token(teams: Running) -> None:
    url = teams.dashboard_url
    status, headers, _ = _call(url + "/dashboard")
    assert status == 303 and headers["Location"] == "/login"
    assert _call(url + "/api/studies")[0] == 401
    assert _call(url + "/api/studies", token="hps_" + "x" * 43)[0] == 401
    assert b"hps_" in _call(url + "/login")[2]
    assert _call(url + "/login", method="POST", form={"token": "wrong"})[0] == 401
    status, headers, _ = _call(
        url + "/login", method="POST", form={"token": teams.tokens["a_viewer"]}
    )
    assert status == 303 and headers["Location"] == "/dashboard"
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]


def test_each_team_sees_only_its_own_studies(teams: Running) -> None:
    assert set(_studies(teams, teams.tokens["a_viewer"])) == {"a/a-study"}
    assert set(_studies(teams, teams.tokens["b_editor"])) == {"b/b-study"}
    a_id = _studies(teams, teams.tokens["a_viewer"])["a/a-study"]
    # Another team's study is, to b, a study that does not exist.
    status, _, _ = _call(
        f"{teams.dashboard_url}/api/studies/{a_id}", token=teams.tokens["b_editor"]
    )
    assert status == 404


def _running_trial(teams: Running, token: str) -> tuple[int, int]:
    study_id = _studies(teams, token)["a/a-study"]
    _, _, body = _call(f"{teams.dashboard_url}/api/studies/{study_id}", token=token)
    (trial,) = [t for t in json.loads(body)["trials"] if t["state"] == "Running"]
    return study_id, trial["trial_id"]


def test_a_viewer_cannot_write_and_an_editor_can(teams: Running) -> None:
    viewer, editor = teams.tokens["a_viewer"], teams.tokens["a_editor"]
    url = teams.dashboard_url
    study_id, trial_id = _running_trial(teams, viewer)
    tell = {"state": "Complete", "values": [0.25]}
    status, _, body = _call(
        f"{url}/api/trials/{trial_id}/tell", token=viewer, method="POST", body=tell
    )
    assert status == 403 and b"editor" in body
    note = {"version": 1, "body": "viewer was here"}
    assert (
        _call(f"{url}/api/studies/{study_id}/note", token=viewer, method="PUT", body=note)[0] == 403
    )
    # Another team's editor cannot either.
    assert _call(f"{url}/api/trials/{trial_id}/tell", token=teams.tokens["b_editor"],
                 method="POST", body=tell)[0] == 403  # fmt: skip
    with Client(teams.target, token=editor, config=ClientConfig(namespace="a")) as client:
        assert client.get_study("a-study").get_trial(1).state.name == "RUNNING"

    _running_trial(teams, editor)
    status, _, body = _call(
        f"{url}/api/trials/{trial_id}/tell", token=editor, method="POST", body=tell
    )
    assert status == 204, body
    assert (
        _call(f"{url}/api/studies/{study_id}/note", token=editor, method="PUT", body=note)[0] == 204
    )
    with Client(teams.target, token=editor, config=ClientConfig(namespace="a")) as client:
        trial = client.get_study("a-study").get_trial(1)
    assert trial.state.name == "COMPLETE" and trial.values == [0.25]
