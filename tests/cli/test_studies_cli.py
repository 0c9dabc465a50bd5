"""``hposerve studies ...`` against a real server with a study, and the help of every flag."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from hposerve.cli import main
from hposerve.client import Client, ClientConfig
from hposerve.server.domain._access import Role
from hposerve.server.transport._server import make_server


@pytest.fixture
def with_study(target: str) -> str:
    with Client(target) as client:
        study = client.create_study(
            name="digits", direction="minimize", sampler={"type": "random", "seed": 0}
        )
        for value in (3.0, 1.5, 2.0):
            trial = study.ask()
            trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            trial.suggest_int("layers", 1, 4)
            study.tell(trial, value)
        study.tell(study.ask(), state="pruned")
        client.create_study(name="empty", directions=["minimize", "maximize"])
    return target


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["studies", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list(with_study: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list", "--target", with_study, "--format", "json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["digits"]["trials"] == 4 and rows["digits"]["complete"] == 3
    assert rows["digits"]["best_value"] == [1.5] and rows["digits"]["sampler"] == "random"
    assert rows["empty"]["directions"] == ["MINIMIZE", "MAXIMIZE"]
    code, out, _ = _run(capsys, "list", "--target", with_study)
    header, *lines = out.splitlines()
    assert header.split() == [
        "name", "directions", "trials", "complete", "sampler", "pruner", "best_value"
    ]  # fmt: skip
    assert any(line.split()[:4] == ["digits", '["MINIMIZE"]', "4", "3"] for line in lines), out


def test_show_trials_and_best(with_study: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "digits", "--target", with_study, "--format", "json")
    (shown,) = json.loads(out)
    assert code == 0 and shown["resource_name"] == "namespaces/default/studies/digits"
    code, out, _ = _run(capsys, "trials", "digits", "--target", with_study, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
    assert [r["values"] for r in rows[:3]] == ["[3.0]", "[1.5]", "[2.0]"]
    assert set(json.loads(rows[0]["params"])) == {"lr", "layers"}
    code, out, _ = _run(capsys, "trials", "digits", "--target", with_study, "--state", "pruned",
                        "--format", "json")  # fmt: skip
    assert [t["number"] for t in json.loads(out)] == [3]
    code, out, _ = _run(capsys, "best", "digits", "--target", with_study, "--format", "json")
    (best,) = json.loads(out)
    assert code == 0 and best["number"] == 1 and best["values"] == [1.5]


def test_export(with_study: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "digits.csv"
    code, _, err = _run(capsys, "export", "digits", "--target", with_study, "--format", "csv",
                        "--out", str(out_file))  # fmt: skip
    assert code == 0 and "wrote 4 rows" in err
    rows = list(csv.DictReader(out_file.open()))
    assert list(rows[0])[:5] == ["number", "state", "value", "params_layers", "params_lr"]
    assert [r["value"] for r in rows] == ["3.0", "1.5", "2.0", ""]
    code, out, _ = _run(capsys, "export", "digits", "--target", with_study, "--format", "json")
    assert len(json.loads(out)) == 4 and "intermediate_values" in json.loads(out)[0]


def test_errors_are_the_servers(with_study: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "missing", "--target", with_study)
    assert code == 1 and out == ""
    assert "namespaces/default/studies/missing" in err and "does not exist" in err


def test_with_auth_the_token_comes_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server("127.0.0.1:0", data_dir=tmp_path / "data", auth=True).start()
    try:
        store, target = server.identity, f"127.0.0.1:{server.port}"
        assert store is not None
        store.directory.create_team("a")
        store.directory.create_namespace("a", "a")
        store.directory.ensure_principal("users/alice")
        store.directory.add_member("a", "users/alice", Role.EDITOR)
        token = store.tokens.issue_token("users/alice", ttl=None)[1]
        with Client(target, token=token, config=ClientConfig(namespace="a")) as client:
            client.create_study(name="secret", direction="minimize")
        monkeypatch.delenv("HPOSERVE_TOKEN", raising=False)
        code, _, err = _run(capsys, "list", "--target", target, "--namespace", "a")
        assert code == 1 and "token" in err.lower()
        monkeypatch.setenv("HPOSERVE_TOKEN", token)
        code, out, _ = _run(capsys, "list", "--target", target, "--namespace", "a",
                            "--format", "json")  # fmt: skip
        assert code == 0 and [row["name"] for row in json.loads(out)] == ["secret"]
    finally:
        server.stop(grace=1)


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("hposerve ")
    for argv, flags in (
        (["serve", "--help"], ("--host", "--port", "--metrics-port", "--dashboard-port")),
        (["studies", "trials", "--help"], ("--target", "--namespace", "--format", "--limit")),
        (["--help"], ("--log-level", "--log-format")),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        for flag in flags:
            assert flag in text, (argv, flag)
        assert "default" in text, argv
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "port to listen on (HPOSERVE_PORT) (default: 50051)" in text
