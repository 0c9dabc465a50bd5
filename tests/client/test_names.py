"""Resource names on the client: formatted and parsed in one module."""

from __future__ import annotations

import pytest

from hposerve.client import InvalidArgument
from hposerve.client._names import (
    ComparisonName,
    MemberId,
    StudyName,
    TrialName,
    comparison_name,
    is_resource_name,
    member_study_id,
    namespace_name,
    parse_comparison,
    parse_member_study_id,
    parse_study,
    parse_trial,
    resolve_comparison,
    resolve_study,
    study_name,
    trial_name,
)


def test_names_are_formatted():
    assert namespace_name("team-a") == "namespaces/team-a"
    assert study_name("team-a", "mlp") == "namespaces/team-a/studies/mlp"
    assert (
        trial_name("namespaces/team-a/studies/mlp", 3) == "namespaces/team-a/studies/mlp/trials/3"
    )
    assert comparison_name("team-a", "cmp") == "namespaces/team-a/comparisons/cmp"
    assert member_study_id("cmp.v2", "tpe", 4) == "cmp.v2.tpe.s4"


def test_names_are_parsed_back():
    assert parse_study("namespaces/a/studies/s.1") == StudyName("a", "s.1")
    assert parse_trial("namespaces/a/studies/s/trials/12") == TrialName("a", "s", 12)
    assert parse_comparison("namespaces/a/comparisons/c") == ComparisonName("a", "c")
    # Comparison ids may hold dots, arm names may not: the arm is the second dot from the end.
    assert parse_member_study_id("cmp.v2.tpe.s4") == MemberId("cmp.v2", "tpe", 4)
    member = member_study_id("c", "random", 0)
    assert parse_member_study_id(member) == MemberId("c", "random", 0)


@pytest.mark.parametrize(
    ("parse", "name"),
    [
        (parse_study, "s"),
        (parse_study, "namespaces/a/studies/"),
        (parse_study, "namespaces/a/studies/s/trials/0"),
        (parse_study, "namespaces/a/comparisons/c"),
        (parse_study, "projects/a/studies/s"),
        (parse_trial, "namespaces/a/studies/s/trials/x"),
        (parse_trial, "namespaces/a/studies/s/trials/-1"),
        (parse_trial, "namespaces/a/studies/s"),
        (parse_comparison, "namespaces/a/studies/s"),
        (parse_member_study_id, "cmp.tpe"),
        (parse_member_study_id, "cmp.tpe.4"),
        (parse_member_study_id, "cmp.tpe.sx"),
        (parse_member_study_id, ".tpe.s0"),
    ],
)
def test_bad_names_are_refused(parse, name):
    with pytest.raises(InvalidArgument):
        parse(name)


def test_short_ids_resolve_in_a_namespace_and_full_names_pass_through():
    assert is_resource_name("namespaces/a/studies/s") and not is_resource_name("s")
    assert resolve_study("a", "s") == "namespaces/a/studies/s"
    assert resolve_study("a", "namespaces/b/studies/s") == "namespaces/b/studies/s"
    assert resolve_comparison("a", "c") == "namespaces/a/comparisons/c"
    assert resolve_comparison("a", "namespaces/b/comparisons/c") == "namespaces/b/comparisons/c"


def test_the_message_names_the_expected_shape():
    with pytest.raises(InvalidArgument, match=r"namespaces/\{namespace\}/studies/\{study\}"):
        parse_study("s")
