"""``hposerve admin``: init prints the first operator's token once; the other commands work
against a running authenticated server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hposerve.cli import _admin

from .conftest import AuthServer, World


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hposerve admin")
    _admin.add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.run(args))


def test_init_then_administer_a_server(
    world: World, auth_server: AuthServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fixture's server keeps its identities in tmp_path/data.
    assert _run(["init", "--data-dir", str(tmp_path / "data"), "--name", "users/boss"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("hps_") and "\n" not in token
    target = ["--target", f"127.0.0.1:{auth_server.port}", "--token", token]

    def json_of(argv: list[str]) -> dict[str, object]:
        assert _run(argv + target) == 0
        return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]

    assert json_of(["whoami"]) == {"principal": "users/boss", "operator": True}
    json_of(["create-team", "ml", "--request-id", "r1"])
    json_of(["add-member", "ml", "users/ann", "--role", "editor"])
    json_of(["create-namespace", "ml", "--team", "ml"])
    listed = json_of(["list-namespaces"])
    assert "namespaces/ml" in [n["name"] for n in listed["namespaces"]]  # type: ignore[index]
    assert _run(["issue-token", "users/ann", "--ttl", "1d"] + target) == 0
    ann = capsys.readouterr().out.strip()
    assert ann.startswith("hps_")
    assert _run(["whoami", "--target", target[1], "--token", ann]) == 0
    assert json.loads(capsys.readouterr().out)["principal"] == "users/ann"
    world.store.audit.flush()  # written in batches, a tenth of a second apart
    audit = json_of(["audit", "--limit", "50"])
    methods = {r["method"].rsplit("/", 1)[-1] for r in audit["records"]}  # type: ignore[index]
    assert {"CreateTeam", "AddMember", "CreateNamespace", "IssueToken"} <= methods
    with pytest.raises(SystemExit, match="PERMISSION_DENIED"):
        _run(["create-team", "nope", "--target", target[1], "--token", ann])
    # Quotas: the AuthServer fixture has no quota gate, so what is set is stored and read back.
    assert json_of(["set-quota", "ml", "--studies", "3", "--asks-per-second", "2.5"]) == {
        "name": "namespaces/ml/quota",
        "maxStudies": "3",
        "maxRunningTrials": "0",
        "maxAsksPerSecond": 2.5,
    }
    assert json_of(["get-quota", "namespaces/ml"])["maxStudies"] == "3"


def test_no_plaintext_token_beyond_loopback() -> None:
    with pytest.raises(SystemExit, match="plaintext"):
        _run(["whoami", "--target", "10.1.2.3:50051", "--token", "hps_x"])


def test_durations() -> None:
    assert _admin.parse_duration("90") == 90
    assert _admin.parse_duration("15m") == 900
    assert _admin.parse_duration("2d") == 172800
    with pytest.raises(argparse.ArgumentTypeError):
        _admin.parse_duration("soon")
