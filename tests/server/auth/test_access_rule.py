"""The access rule alone: principals x actions x resources, against a table written by hand."""

from __future__ import annotations

import pytest

from hposerve.server.domain._access import (
    Action,
    PermissionDenied,
    Principal,
    Resource,
    Role,
    Scope,
    allows,
    check,
    parse_resource,
    visible_namespaces,
    visible_studies,
)

# Namespace a is team a's, b team b's; study a/own is shared with s1 (viewer), s2 (editor).
PRINCIPALS = {
    "viewer": Principal("users/v", teams={"a": Role.VIEWER}, namespaces={"a": Role.VIEWER}),
    "editor": Principal("users/e", teams={"a": Role.EDITOR}, namespaces={"a": Role.EDITOR}),
    "admin": Principal("users/ad", teams={"a": Role.ADMIN}, namespaces={"a": Role.ADMIN}),
    "other_team": Principal("users/b", teams={"b": Role.ADMIN}, namespaces={"b": Role.ADMIN}),
    "shared_viewer": Principal(
        "users/sv", teams={"s1": Role.ADMIN}, shared={("a", "own"): Role.VIEWER}
    ),
    "shared_editor": Principal(
        "users/se", teams={"s2": Role.EDITOR}, shared={("a", "own"): Role.EDITOR}
    ),
    "operator": Principal("users/root", operator=True),
    "link_viewer": Principal("link", scope=Scope("a", "own", Role.VIEWER)),
    "link_editor": Principal("link", scope=Scope("a", "own", Role.EDITOR)),
    "nobody": Principal("users/new"),
}
RESOURCES = {
    "own": Resource(namespace="a", study="own"),
    "own_missing": Resource(namespace="a", study="ghost"),
    "other": Resource(namespace="b", study="theirs"),
    "other_missing": Resource(namespace="b", study="ghost"),
    "missing_namespace": Resource(namespace="zz", study="ghost"),
    "namespace_a": Resource(namespace="a"),
    "namespace_b": Resource(namespace="b"),
}
LEVEL = {None: 0, Action.READ: 1, Action.WRITE: 2, Action.ADMIN: 3}
# principal -> resource -> the highest action allowed there (absent: none)
MOST: dict[str, dict[str, Action]] = {
    "viewer": {"own": Action.READ, "own_missing": Action.READ, "namespace_a": Action.READ},
    "editor": {"own": Action.WRITE, "own_missing": Action.WRITE, "namespace_a": Action.WRITE},
    "admin": {"own": Action.ADMIN, "own_missing": Action.ADMIN, "namespace_a": Action.ADMIN},
    "other_team": {
        "other": Action.ADMIN,
        "other_missing": Action.ADMIN,
        "namespace_b": Action.ADMIN,
    },
    "shared_viewer": {"own": Action.READ},
    "shared_editor": {"own": Action.WRITE},
    "operator": {r: Action.ADMIN for r in RESOURCES},
    "link_viewer": {"own": Action.READ},
    "link_editor": {"own": Action.WRITE},
    "nobody": {},
}
# Who may list a namespace (and so see some of its studies).
LISTS = {
    "viewer": {"namespace_a"},
    "editor": {"namespace_a"},
    "admin": {"namespace_a"},
    "other_team": {"namespace_b"},
    "shared_viewer": {"namespace_a"},
    "shared_editor": {"namespace_a"},
    "operator": {"namespace_a", "namespace_b"},
    "link_viewer": {"namespace_a"},
    "link_editor": {"namespace_a"},
    "nobody": set(),
}


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize("action", [Action.READ, Action.WRITE, Action.ADMIN])
@pytest.mark.parametrize("where", RESOURCES)
def test_the_matrix(who: str, action: Action, where: str) -> None:
    expected = LEVEL[action] <= LEVEL[MOST[who].get(where)]
    assert allows(PRINCIPALS[who], action, RESOURCES[where]) is expected


@pytest.mark.parametrize("who", PRINCIPALS)
def test_listing_a_namespace(who: str) -> None:
    for where in ("namespace_a", "namespace_b"):
        expected = where in LISTS[who]
        assert allows(PRINCIPALS[who], Action.LIST, RESOURCES[where]) is expected, where


def test_a_share_gives_no_more_than_the_share_and_never_the_namespace() -> None:
    shared = PRINCIPALS["shared_editor"]
    assert allows(shared, Action.WRITE, RESOURCES["own"])
    assert not allows(shared, Action.ADMIN, RESOURCES["own"])  # delete needs the namespace
    assert not allows(shared, Action.READ, RESOURCES["namespace_a"])  # comparisons: no
    assert not allows(shared, Action.READ, RESOURCES["own_missing"])  # no probing next door


def test_teams_principals_and_the_server() -> None:
    team_admin = Principal("users/x", teams={"a": Role.ADMIN})
    team_viewer = Principal("users/y", teams={"a": Role.VIEWER})
    team, account = Resource(team="a"), parse_resource("teams/a/serviceAccounts/ci/tokens/1")
    assert account == Resource(team="a", principal="teams/a/serviceAccounts/ci")
    assert allows(team_admin, Action.ADMIN, team) and allows(team_admin, Action.ADMIN, account)
    assert allows(team_viewer, Action.READ, team)
    assert not allows(team_viewer, Action.ADMIN, team)
    assert not allows(team_viewer, Action.ADMIN, account)
    own_tokens = parse_resource("users/y/tokens/abc")
    assert own_tokens is not None
    assert allows(team_viewer, Action.ADMIN, own_tokens)
    assert not allows(team_admin, Action.ADMIN, own_tokens)  # a user's tokens are its own
    for who in PRINCIPALS.values():
        assert allows(who, Action.ADMIN, Resource.server()) is (who.operator and not who.scope)
    link = PRINCIPALS["link_editor"]
    assert not allows(link, Action.READ, team) and not allows(link, Action.ADMIN, own_tokens)


def test_check_names_what_was_refused() -> None:
    with pytest.raises(PermissionDenied, match="users/v may not write namespaces/a/studies/own"):
        check(PRINCIPALS["viewer"], Action.WRITE, [RESOURCES["own"]])
    check(PRINCIPALS["viewer"], Action.READ, [RESOURCES["own"], RESOURCES["own_missing"]])
    with pytest.raises(PermissionDenied):  # every resource must be allowed (a heartbeat's)
        check(PRINCIPALS["editor"], Action.WRITE, [RESOURCES["own"], RESOURCES["other"]])


@pytest.mark.parametrize(
    ("name", "resource"),
    [
        ("namespaces/a", Resource(namespace="a")),
        ("namespaces/a/studies/s", Resource(namespace="a", study="s")),
        ("namespaces/a/studies/s/trials/3", Resource(namespace="a", study="s")),
        ("namespaces/a/studies/s/shareTokens/x", Resource(namespace="a", study="s")),
        ("namespaces/a/comparisons/c", Resource(namespace="a")),
        ("teams/t", Resource(team="t")),
        ("users/u/tokens/1", Resource(principal="users/u")),
        ("certificates/CN=a/b,O=x", Resource(principal="certificates/CN=a/b,O=x")),
        ("certificates/CN=a/tokens/1", Resource(principal="certificates/CN=a")),
        ("", None),
        ("namespaces/", None),
        ("studies/x", None),
    ],
)
def test_parse_resource(name: str, resource: Resource | None) -> None:
    assert parse_resource(name) == resource


def test_what_lists_show() -> None:
    assert visible_namespaces(None).everything  # auth off
    assert visible_namespaces(PRINCIPALS["operator"]).everything
    assert visible_namespaces(PRINCIPALS["viewer"]).names == {"a"}
    assert visible_namespaces(PRINCIPALS["shared_viewer"]).names == {"a"}
    assert visible_namespaces(PRINCIPALS["nobody"]).names == frozenset()
    assert visible_studies(PRINCIPALS["viewer"], "a").everything
    shared = visible_studies(PRINCIPALS["shared_viewer"], "a")
    assert "own" in shared and "secret" not in shared
    assert visible_studies(PRINCIPALS["other_team"], "a").names == frozenset()
    assert visible_studies(PRINCIPALS["link_viewer"], "a").names == {"own"}
    assert visible_studies(PRINCIPALS["link_viewer"], "b").names == frozenset()
