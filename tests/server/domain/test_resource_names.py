"""Resource names, parsed and formatted in one module (``hposerve.server.domain._names``)."""

from __future__ import annotations

import pytest

from hposerve.server.domain import ComparisonRef, InvalidArgument, StudyRef, TrialRef
from hposerve.server.domain import _names as names


def test_names_format_and_parse_back() -> None:
    study = StudyRef("team-a", "lr.sweep_2")
    trial = TrialRef(study, 7)
    comparison = ComparisonRef("team-a", "bench")
    assert str(study) == "namespaces/team-a/studies/lr.sweep_2"
    assert str(trial) == "namespaces/team-a/studies/lr.sweep_2/trials/7"
    assert str(comparison) == "namespaces/team-a/comparisons/bench"
    assert names.study_ref_from_name(str(study)) == study
    assert names.trial_ref_from_name(str(trial)) == trial
    assert names.comparison_ref_from_name(str(comparison)) == comparison
    assert names.namespace_from_name("namespaces/team-a") == "team-a"
    assert study.optuna_name == "team-a/lr.sweep_2"
    assert names.study_ref_from_optuna_name("team-a/lr.sweep_2") == study
    assert names.study_ref_from_optuna_name("plain-optuna-study") is None
    assert names.study_ref_from_optuna_name("a/b/c") is None


def test_the_member_naming_rule() -> None:
    ref = ComparisonRef("default", "cmp")
    assert names.member_study_id("cmp", "tpe", 3) == "cmp.tpe.s3"
    assert ref.member("tpe", 3) == StudyRef("default", "cmp.tpe.s3")


@pytest.mark.parametrize(
    "make",
    [
        lambda: StudyRef("default", "abc\n"),
        lambda: StudyRef("default\n", "abc"),
        lambda: ComparisonRef("default", "cmp\n"),
        lambda: names.check_namespace("default\n"),
        lambda: names.check_arm("tpe\n", "arms[0].name"),
        lambda: names.namespace_from_name("namespaces/default\n"),
        lambda: names.study_ref_from_name("namespaces/default/studies/abc\n"),
        lambda: names.trial_ref_from_name("namespaces/default/studies/abc/trials/1\n"),
        lambda: names.comparison_ref_from_name("namespaces/default/comparisons/cmp\n"),
    ],
    ids=[
        "study",
        "namespace",
        "comparison",
        "check-ns",
        "arm",
        "ns-name",
        "study-name",
        "trial-name",
        "comparison-name",
    ],
)
def test_a_trailing_newline_is_not_a_name(make) -> None:
    # "$" matches before a final newline: "abc\n" would be a second study beside "abc".
    with pytest.raises(InvalidArgument):
        make()


@pytest.mark.parametrize(
    "name",
    [
        "namespaces/default",
        "namespaces/default/studies/",
        "namespaces/default/studies/a/b",
        "namespaces/default/studies/a/trials/x",
        "/namespaces/default/studies/a",
        "namespaces/default/studies/-a",
    ],
)
def test_malformed_study_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        names.study_ref_from_name(name, "parent")
    assert e.value.field in ("parent", "study", "namespace")
