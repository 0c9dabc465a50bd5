"""Resource names, the one server-side module for them: ids, references, parsing, formatting.

```
namespaces/{namespace}
namespaces/{namespace}/studies/{study}
namespaces/{namespace}/studies/{study}/trials/{number}
namespaces/{namespace}/comparisons/{comparison}
```

A comparison's member studies are ordinary studies named ``{comparison}.{arm}.s{seed}``. A
study ``s`` of namespace ``ns`` is the Optuna study ``ns/s``.

Every pattern is matched whole (``fullmatch``): ``$`` would accept a final newline, and
``"abc\\n"`` would then be a second study beside ``"abc"``.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from hposerve.server.domain._exceptions import InvalidArgument

__all__ = [
    "MAX_STUDY_ID",
    "ComparisonRef",
    "StudyRef",
    "TrialRef",
    "check_arm",
    "check_namespace",
    "comparison_ref_from_name",
    "member_study_id",
    "namespace_from_name",
    "study_ref_from_name",
    "study_ref_from_optuna_name",
    "trial_ref_from_name",
]

MAX_STUDY_ID = 128
_NAMESPACE_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_STUDY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_COMPARISON_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
# No '.' in arm names: it separates the parts of a member's study id.
_ARM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

_NAMESPACE_RULE = (
    "invalid namespace {value!r}: use 1-63 lowercase letters, digits and '-', starting and "
    "ending with a letter or digit"
)
_STUDY_RULE = (
    "invalid study name {value!r}: use 1-128 letters, digits, '.', '_' and '-', starting "
    "with a letter or digit"
)
_COMPARISON_RULE = (
    "invalid comparison name {value!r}: use 1-120 letters, digits, '.', '_' and '-', "
    "starting with a letter or digit"
)
_ARM_RULE = (
    "{field} {value!r} is not a valid arm name: use 1-64 letters, digits, '_' and '-', "
    "starting with a letter or digit"
)

_NAMESPACE_NAME = re.compile(r"namespaces/([^/]+)")
_STUDY_NAME = re.compile(r"namespaces/([^/]+)/studies/([^/]+)")
_TRIAL_NAME = re.compile(r"namespaces/([^/]+)/studies/([^/]+)/trials/(\d{1,18})")
_COMPARISON_NAME = re.compile(r"namespaces/([^/]+)/comparisons/([^/]+)")


# -- ids ---------------------------------------------------------------------------------------


def _check(pattern: re.Pattern[str], value: str, message: str, field: str) -> None:
    """Raises InvalidArgument(message formatted with ``value``) unless it matches whole."""
    if not pattern.fullmatch(value):
        raise InvalidArgument(message.format(value=value, field=field), field=field)


def check_namespace(namespace: str) -> None:
    """Raises InvalidArgument unless ``namespace`` is a valid namespace id."""
    _check(_NAMESPACE_ID, namespace, _NAMESPACE_RULE, "namespace")


def check_arm(name: str, field: str) -> None:
    """Raises InvalidArgument unless ``name`` is a valid comparison arm name."""
    _check(_ARM_ID, name, _ARM_RULE, field)


def member_study_id(comparison: str, arm: str, seed: int) -> str:
    """The study id of a comparison's member: ``{comparison}.{arm}.s{seed}``."""
    return f"{comparison}.{arm}.s{seed}"


# -- references --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StudyRef:
    """A study's identity: ``namespaces/{namespace}/studies/{study}``.

    Raises:
        InvalidArgument: an invalid namespace or study id (on construction).
    """

    namespace: str
    study: str

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        _check(_STUDY_ID, self.study, _STUDY_RULE, "study")

    @property
    def optuna_name(self) -> str:
        """The name of the Optuna study: ``{namespace}/{study}``."""
        return f"{self.namespace}/{self.study}"

    def __str__(self) -> str:
        return f"namespaces/{self.namespace}/studies/{self.study}"


@dataclasses.dataclass(frozen=True)
class TrialRef:
    """A trial's identity: its study and number."""

    study: StudyRef
    number: int

    def __str__(self) -> str:
        return f"{self.study}/trials/{self.number}"


@dataclasses.dataclass(frozen=True)
class ComparisonRef:
    """A comparison's identity: ``namespaces/{namespace}/comparisons/{comparison}``.

    Raises:
        InvalidArgument: an invalid namespace or comparison id (on construction).
    """

    namespace: str
    comparison: str

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        _check(_COMPARISON_ID, self.comparison, _COMPARISON_RULE, "comparison_id")

    def member(self, arm: str, seed: int) -> StudyRef:
        """The member study of ``arm`` and seed index ``seed``."""
        return StudyRef(self.namespace, member_study_id(self.comparison, arm, seed))

    def __str__(self) -> str:
        return f"namespaces/{self.namespace}/comparisons/{self.comparison}"


# -- parsing -----------------------------------------------------------------------------------


def namespace_from_name(name: str, field: str = "parent") -> str:
    """The namespace id of ``namespaces/{namespace}``. Raises: InvalidArgument."""
    m = _NAMESPACE_NAME.fullmatch(name)
    if not m:
        raise InvalidArgument(
            f"{field} must look like namespaces/NAMESPACE, got {name!r}", field=field
        )
    check_namespace(m.group(1))
    return m.group(1)


# Names repeat call after call (a trainer's trial, its study): parse each once.
@functools.lru_cache(maxsize=4096)
def study_ref_from_name(name: str, field: str = "name") -> StudyRef:
    """Parses ``namespaces/{namespace}/studies/{study}``. Raises: InvalidArgument."""
    m = _STUDY_NAME.fullmatch(name)
    if not m:
        raise InvalidArgument(
            f"{field} must look like namespaces/NAMESPACE/studies/STUDY, got {name!r}", field=field
        )
    return StudyRef(m.group(1), m.group(2))


@functools.lru_cache(maxsize=4096)
def trial_ref_from_name(name: str, field: str = "trial") -> TrialRef:
    """Parses ``namespaces/{ns}/studies/{study}/trials/{number}``. Raises: InvalidArgument."""
    m = _TRIAL_NAME.fullmatch(name)
    if not m:
        raise InvalidArgument(
            f"{field} must look like namespaces/NAMESPACE/studies/STUDY/trials/NUMBER, "
            f"got {name!r}",
            field=field,
        )
    return TrialRef(StudyRef(m.group(1), m.group(2)), int(m.group(3)))


def comparison_ref_from_name(name: str, field: str = "name") -> ComparisonRef:
    """Parses ``namespaces/{namespace}/comparisons/{comparison}``. Raises: InvalidArgument."""
    m = _COMPARISON_NAME.fullmatch(name)
    if not m:
        raise InvalidArgument(
            f"{field} must look like namespaces/NAMESPACE/comparisons/COMPARISON, got {name!r}",
            field=field,
        )
    return ComparisonRef(m.group(1), m.group(2))


def study_ref_from_optuna_name(optuna_name: str) -> StudyRef | None:
    """The study an Optuna study name ``{namespace}/{study}`` stands for; None if not ours."""
    namespace, slash, study = optuna_name.partition("/")
    if not slash:
        return None
    try:
        return StudyRef(namespace, study)
    except InvalidArgument:
        return None
