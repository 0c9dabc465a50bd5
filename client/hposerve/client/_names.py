"""Resource names, formatted and parsed in one place on the client.

The service names its resources ``namespaces/{namespace}``,
``namespaces/{namespace}/studies/{study}``, ``namespaces/{namespace}/studies/{study}/trials/{n}``
and ``namespaces/{namespace}/comparisons/{comparison}``; the member study of a comparison for
an arm and a seed index is ``{comparison}.{arm}.s{seed}``. The server validates the ids; the
client only builds names and takes them apart.
"""

from __future__ import annotations

from typing import NamedTuple

from ._errors import InvalidArgument

_NAMESPACES = "namespaces"
_STUDIES = "studies"
_TRIALS = "trials"
_COMPARISONS = "comparisons"
# Collection -> what its ids name, for error messages.
_SINGULAR = {
    _NAMESPACES: "namespace",
    _STUDIES: "study",
    _TRIALS: "number",
    _COMPARISONS: "comparison",
}


class StudyName(NamedTuple):
    """A parsed ``namespaces/{namespace}/studies/{study}``."""

    namespace: str
    study: str


class TrialName(NamedTuple):
    """A parsed ``namespaces/{namespace}/studies/{study}/trials/{number}``."""

    namespace: str
    study: str
    number: int


class ComparisonName(NamedTuple):
    """A parsed ``namespaces/{namespace}/comparisons/{comparison}``."""

    namespace: str
    comparison: str


class MemberId(NamedTuple):
    """A parsed member study id ``{comparison}.{arm}.s{seed}``."""

    comparison: str
    arm: str
    seed: int


def namespace_name(namespace: str) -> str:
    """``namespaces/{namespace}``."""
    return f"{_NAMESPACES}/{namespace}"


def study_name(namespace: str, study: str) -> str:
    """``namespaces/{namespace}/studies/{study}``."""
    return f"{namespace_name(namespace)}/{_STUDIES}/{study}"


def trial_name(study: str, number: int) -> str:
    """``{study}/trials/{number}`` for a study's resource name."""
    return f"{study}/{_TRIALS}/{int(number)}"


def comparison_name(namespace: str, comparison: str) -> str:
    """``namespaces/{namespace}/comparisons/{comparison}``."""
    return f"{namespace_name(namespace)}/{_COMPARISONS}/{comparison}"


def member_study_id(comparison: str, arm: str, seed: int) -> str:
    """The id of a comparison's member study: ``{comparison}.{arm}.s{seed}``."""
    return f"{comparison}.{arm}.s{int(seed)}"


def is_resource_name(name: str) -> bool:
    """Whether ``name`` is a full resource name rather than a short id."""
    return name.startswith(f"{_NAMESPACES}/")


def resolve_study(namespace: str, name: str) -> str:
    """A study's resource name from its short id in ``namespace``, or its resource name."""
    return name if is_resource_name(name) else study_name(namespace, name)


def resolve_comparison(namespace: str, name: str) -> str:
    """A comparison's resource name from its short id in ``namespace``, or its resource name."""
    return name if is_resource_name(name) else comparison_name(namespace, name)


def _segments(name: str, *collections: str) -> list[str]:
    """The ids of ``namespaces/{id}/{collections[0]}/{id}/...``.

    Raises:
        InvalidArgument: ``name`` does not have that shape.
    """
    parts = name.split("/")
    keys = (_NAMESPACES, *collections)
    if len(parts) != 2 * len(keys) or parts[0::2] != list(keys) or not all(parts[1::2]):
        shape = "/".join(f"{key}/{{{_SINGULAR[key]}}}" for key in keys)
        raise InvalidArgument(f"{name!r} is not a resource name of the form {shape}")
    return parts[1::2]


def parse_study(name: str) -> StudyName:
    """Splits ``namespaces/{namespace}/studies/{study}``.

    Raises:
        InvalidArgument: Not a study name.
    """
    namespace, study = _segments(name, _STUDIES)
    return StudyName(namespace, study)


def parse_trial(name: str) -> TrialName:
    """Splits ``namespaces/{namespace}/studies/{study}/trials/{number}``.

    Raises:
        InvalidArgument: Not a trial name.
    """
    namespace, study, number = _segments(name, _STUDIES, _TRIALS)
    if not number.isdigit():
        raise InvalidArgument(f"{name!r}: the trial number {number!r} is not a number")
    return TrialName(namespace, study, int(number))


def parse_comparison(name: str) -> ComparisonName:
    """Splits ``namespaces/{namespace}/comparisons/{comparison}``.

    Raises:
        InvalidArgument: Not a comparison name.
    """
    namespace, comparison = _segments(name, _COMPARISONS)
    return ComparisonName(namespace, comparison)


def parse_member_study_id(study: str) -> MemberId:
    """Splits a member study id ``{comparison}.{arm}.s{seed}`` (arms have no dots).

    Raises:
        InvalidArgument: Not a member study id.
    """
    parts = study.rsplit(".", 2)
    if len(parts) != 3 or not all(parts) or parts[2][:1] != "s" or not parts[2][1:].isdigit():
        raise InvalidArgument(
            f"{study!r} is not a member study id {{comparison}}.{{arm}}.s{{seed}}"
        )
    comparison, arm, seed = parts
    return MemberId(comparison, arm, int(seed[1:]))
