"""The AdminService through the real server: who may do what, retried requests, filtered
lists, tokens and share links that work (and stop working), and the audit log."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2

from hposerve.v1 import admin_service_pb2 as apb
from hposerve.v1 import admin_service_pb2_grpc, study_service_pb2_grpc
from hposerve.v1 import study_service_pb2 as pb

from .conftest import World, code_of, create_study, metadata


@pytest.fixture
def admin(channel: grpc.Channel) -> admin_service_pb2_grpc.AdminServiceStub:
    return admin_service_pb2_grpc.AdminServiceStub(channel)


@pytest.fixture
def studies(channel: grpc.Channel) -> study_service_pb2_grpc.StudyServiceStub:
    return study_service_pb2_grpc.StudyServiceStub(channel)


def test_who_am_i(world: World, admin: admin_service_pb2_grpc.AdminServiceStub) -> None:
    me = admin.WhoAmI(apb.WhoAmIRequest(), metadata=metadata(world.tokens["shared_viewer"]))
    assert me.principal == "users/sv" and not me.operator
    assert [(m.team, m.role) for m in me.memberships] == [("teams/s1", apb.EDITOR)]
    link = admin.WhoAmI(apb.WhoAmIRequest(), metadata=metadata(world.tokens["link_viewer"]))
    assert (link.scope_study, link.scope_role) == ("namespaces/a/studies/own", apb.VIEWER)
    assert link.HasField("token_expire_time")
    assert admin.WhoAmI(apb.WhoAmIRequest(), metadata=metadata(world.tokens["operator"])).operator
    assert code_of(lambda: admin.WhoAmI(apb.WhoAmIRequest())) == grpc.StatusCode.UNAUTHENTICATED


def test_only_operators_create_teams_and_a_retry_gets_the_first_answer(
    world: World, admin: admin_service_pb2_grpc.AdminServiceStub
) -> None:
    request = apb.CreateTeamRequest(team_id="new", request_id="req-1")
    refused = code_of(lambda: admin.CreateTeam(request, metadata=metadata(world.tokens["admin"])))
    assert refused == grpc.StatusCode.PERMISSION_DENIED
    operator = metadata(world.tokens["operator"])
    first = admin.CreateTeam(request, metadata=operator)
    assert admin.CreateTeam(request, metadata=operator) == first  # not ALREADY_EXISTS
    again = apb.CreateTeamRequest(team_id="new")
    assert code_of(lambda: admin.CreateTeam(again, metadata=operator)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )


def test_team_admins_manage_members_and_service_accounts(
    world: World,
    admin: admin_service_pb2_grpc.AdminServiceStub,
    studies: study_service_pb2_grpc.StudyServiceStub,
) -> None:
    team_admin, editor = metadata(world.tokens["admin"]), metadata(world.tokens["editor"])
    add = apb.AddMemberRequest(team="teams/a", principal="users/carol", role=apb.VIEWER)
    assert code_of(lambda: admin.AddMember(add, metadata=editor)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert admin.AddMember(add, metadata=team_admin).principal == "users/carol"
    members = admin.ListMembers(apb.ListMembersRequest(team="teams/a"), metadata=editor)
    assert "users/carol" in [m.principal for m in members.members]
    account = admin.CreateServiceAccount(
        apb.CreateServiceAccountRequest(team="teams/a", service_account_id="ci"),
        metadata=team_admin,
    )
    issued = admin.IssueToken(apb.IssueTokenRequest(principal=account.name), metadata=team_admin)
    ci = metadata(issued.secret)
    assert admin.WhoAmI(apb.WhoAmIRequest(), metadata=ci).principal == account.name
    # The account is an EDITOR of team a (the default role): it may create studies in a.
    create = pb.CreateStudyRequest(parent="namespaces/a", study_id="by-ci")
    assert studies.CreateStudy(create, metadata=ci).name == "namespaces/a/studies/by-ci"
    refused = apb.IssueTokenRequest(principal="teams/b/serviceAccounts/ci")
    assert code_of(lambda: admin.IssueToken(refused, metadata=team_admin)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_tokens_for_oneself_and_by_operators_only(
    world: World, admin: admin_service_pb2_grpc.AdminServiceStub
) -> None:
    viewer = metadata(world.tokens["viewer"])
    mine = admin.IssueToken(apb.IssueTokenRequest(principal="users/viewer"), metadata=viewer)
    assert mine.secret.startswith("hps_") and mine.token.name.startswith("users/viewer/tokens/")
    listed = admin.ListTokens(apb.ListTokensRequest(parent="users/viewer"), metadata=viewer)
    assert mine.token.name in [t.name for t in listed.tokens]
    assert all(mine.secret not in str(t) for t in listed.tokens)
    someone_else = apb.IssueTokenRequest(principal="users/editor")
    assert code_of(lambda: admin.IssueToken(someone_else, metadata=viewer)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    new_user = apb.IssueTokenRequest(principal="users/dave")
    dave = admin.IssueToken(new_user, metadata=metadata(world.tokens["operator"]))
    assert admin.WhoAmI(apb.WhoAmIRequest(), metadata=metadata(dave.secret)).principal == (
        "users/dave"
    )
    admin.RevokeToken(apb.RevokeTokenRequest(name=mine.token.name), metadata=viewer)
    after = code_of(lambda: admin.WhoAmI(apb.WhoAmIRequest(), metadata=metadata(mine.secret)))
    assert after == grpc.StatusCode.UNAUTHENTICATED
    # Naming another's token under one's own name revokes nothing.
    forged = apb.RevokeTokenRequest(name=f"users/viewer/tokens/{dave.token.name.rsplit('/')[-1]}")
    assert code_of(lambda: admin.RevokeToken(forged, metadata=viewer)) == grpc.StatusCode.NOT_FOUND
    assert admin.WhoAmI(apb.WhoAmIRequest(), metadata=metadata(dave.secret)).principal


def test_lists_show_what_the_caller_may_see(
    world: World, admin: admin_service_pb2_grpc.AdminServiceStub
) -> None:
    def namespaces(who: str) -> list[str]:
        answer = admin.ListNamespaces(
            apb.ListNamespacesRequest(), metadata=metadata(world.tokens[who])
        )
        return [n.name for n in answer.namespaces]

    assert namespaces("operator") == ["namespaces/a", "namespaces/b"]
    assert namespaces("viewer") == ["namespaces/a"]
    assert namespaces("other_team") == ["namespaces/b"]
    assert namespaces("shared_editor") == ["namespaces/a"]  # a study of it is shared
    assert namespaces("link_viewer") == ["namespaces/a"]
    teams = admin.ListTeams(apb.ListTeamsRequest(), metadata=metadata(world.tokens["other_team"]))
    assert [t.name for t in teams.teams] == ["teams/b"]


def test_shares_and_share_links(
    world: World,
    admin: admin_service_pb2_grpc.AdminServiceStub,
    studies: study_service_pb2_grpc.StudyServiceStub,
    channel: grpc.Channel,
) -> None:
    create_study(channel, world.tokens["operator"], "a", "own")
    team_admin, other = metadata(world.tokens["admin"]), metadata(world.tokens["other_team"])
    get = pb.GetStudyRequest(name="namespaces/a/studies/own")
    assert code_of(lambda: studies.GetStudy(get, metadata=other)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    share = apb.ShareStudyRequest(study=get.name, team="teams/b", role=apb.VIEWER)
    assert code_of(lambda: admin.ShareStudy(share, metadata=other)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    admin.ShareStudy(share, metadata=team_admin)
    assert studies.GetStudy(get, metadata=other).name == get.name  # within the cache's life
    too_much = apb.ShareStudyRequest(study=get.name, team="teams/b", role=apb.ADMIN)
    assert code_of(lambda: admin.ShareStudy(too_much, metadata=team_admin)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    admin.UnshareStudy(apb.UnshareStudyRequest(study=get.name, team="teams/b"), metadata=team_admin)
    assert code_of(lambda: studies.GetStudy(get, metadata=other)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    link = admin.IssueShareToken(
        apb.IssueShareTokenRequest(
            study=get.name, role=apb.VIEWER, ttl=duration_pb2.Duration(seconds=60)
        ),
        metadata=team_admin,
    )
    bearer = metadata(link.secret)
    assert studies.GetStudy(get, metadata=bearer).name == get.name
    ask = pb.AskTrialsRequest(parent=get.name)
    assert code_of(lambda: studies.AskTrials(ask, metadata=bearer)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    links = admin.ListTokens(apb.ListTokensRequest(parent=get.name), metadata=team_admin)
    assert link.token.name in [t.name for t in links.tokens]
    admin.RevokeToken(apb.RevokeTokenRequest(name=link.token.name), metadata=team_admin)
    assert code_of(lambda: studies.GetStudy(get, metadata=bearer)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_the_audit_log_holds_mutations_and_refusals_and_no_secret(
    world: World,
    admin: admin_service_pb2_grpc.AdminServiceStub,
    studies: study_service_pb2_grpc.StudyServiceStub,
    channel: grpc.Channel,
) -> None:
    create_study(channel, world.tokens["operator"], "a", "own")
    editor, viewer = metadata(world.tokens["editor"]), metadata(world.tokens["viewer"])
    ask = pb.AskTrialsRequest(parent="namespaces/a/studies/own", request_id="ask-1")
    studies.AskTrials(ask, metadata=editor)
    code_of(lambda: studies.AskTrials(ask, metadata=viewer))
    code_of(lambda: studies.GetStudy(pb.GetStudyRequest(name="namespaces/b/studies/x")))
    issued = admin.IssueToken(
        apb.IssueTokenRequest(principal="users/editor", request_id="tok-1"), metadata=editor
    )
    world.store.audit.flush()
    read = apb.ReadAuditRequest(page_size=1000)
    records = admin.ReadAudit(read, metadata=metadata(world.tokens["operator"])).records
    seen = {(r.principal, r.method.rsplit("/", 1)[-1], r.outcome) for r in records}
    assert ("users/editor", "AskTrials", "OK") in seen
    assert ("users/viewer", "AskTrials", "PERMISSION_DENIED") in seen
    assert ("", "GetStudy", "UNAUTHENTICATED") in seen
    assert ("users/editor", "IssueToken", "OK") in seen
    assert ("users/root", "CreateStudy", "OK") in seen
    asked = next(r for r in records if r.method.endswith("AskTrials") and r.outcome == "OK")
    assert (asked.namespace, asked.resource, asked.request_id) == (
        "a",
        "namespaces/a/studies/own",
        "ask-1",
    )
    for secret in [*world.tokens.values(), issued.secret]:
        if secret:
            assert all(secret not in str(r) for r in records)
    mine = apb.ReadAuditRequest(parent="namespaces/a")
    admin_records = admin.ReadAudit(mine, metadata=metadata(world.tokens["admin"])).records
    assert admin_records and {r.namespace for r in admin_records} == {"a"}
    assert code_of(lambda: admin.ReadAudit(mine, metadata=viewer)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    everything = apb.ReadAuditRequest()
    assert code_of(
        lambda: admin.ReadAudit(everything, metadata=metadata(world.tokens["admin"]))
    ) == (grpc.StatusCode.PERMISSION_DENIED)


def test_a_token_cannot_make_itself_a_longer_lived_one(
    world: World, admin: admin_service_pb2_grpc.AdminServiceStub
) -> None:
    short = admin.IssueToken(
        apb.IssueTokenRequest(principal="users/viewer", ttl=duration_pb2.Duration(seconds=60)),
        metadata=metadata(world.tokens["viewer"]),
    )
    md = metadata(short.secret)
    forever = apb.IssueTokenRequest(principal="users/viewer")
    assert code_of(lambda: admin.IssueToken(forever, metadata=md)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    shorter = apb.IssueTokenRequest(principal="users/viewer", ttl=duration_pb2.Duration(seconds=30))
    assert admin.IssueToken(shorter, metadata=md).secret


def test_the_audit_names_what_an_operator_created(
    world: World, admin: admin_service_pb2_grpc.AdminServiceStub
) -> None:
    operator = metadata(world.tokens["operator"])
    admin.CreateTeam(apb.CreateTeamRequest(team_id="made"), metadata=operator)
    world.store.audit.flush()
    [record] = [
        r
        for r in admin.ReadAudit(apb.ReadAuditRequest(), metadata=operator).records
        if r.method.endswith("/CreateTeam")
    ]
    assert (record.resource, record.outcome) == ("teams/made", "OK")
