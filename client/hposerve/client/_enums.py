"""Trial states and study directions: the client's enums, and their proto forms.

``TrialState`` and ``StudyDirection`` have the names and values of Optuna's (which are
IntEnums too), so they compare equal to Optuna's members without importing Optuna:
``trial.state == optuna.trial.TrialState.COMPLETE`` holds. They also compare equal to their
lowercase names (``trial.state == "complete"``), as the client's states were strings before.
Optuna's members, and names, are accepted wherever a state or direction is passed in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from hposerve.v1 import types_pb2

from ._errors import InvalidArgument


class _NamedIntEnum(enum.IntEnum):
    """An IntEnum equal to its members' values and to their lowercase names (and aliases)."""

    __str__ = enum.Enum.__str__  # "TrialState.COMPLETE", as Optuna shows it

    def _names(self) -> tuple[str, ...]:
        return (self.name.lower(),)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other.lower() in self._names()
        return int(self) == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = enum.IntEnum.__hash__  # the value's hash, as Optuna's members have


class TrialState(_NamedIntEnum):
    """State of a trial; the names and values of ``optuna.trial.TrialState``."""

    RUNNING = 0
    COMPLETE = 1
    PRUNED = 2
    FAIL = 3
    WAITING = 4

    def _names(self) -> tuple[str, ...]:
        return ("fail", "failed") if self is TrialState.FAIL else (self.name.lower(),)

    def is_finished(self) -> bool:
        """Whether the trial finished: neither ``RUNNING`` nor ``WAITING``."""
        return self not in (TrialState.RUNNING, TrialState.WAITING)


class StudyDirection(_NamedIntEnum):
    """Direction of an objective; the names and values of ``optuna.study.StudyDirection``."""

    NOT_SET = 0
    MINIMIZE = 1
    MAXIMIZE = 2


_DIRECTIONS = {"minimize": types_pb2.MINIMIZE, "maximize": types_pb2.MAXIMIZE}
_DIRECTION_NAMES = {value: name for name, value in _DIRECTIONS.items()}
_STATES = {
    "running": types_pb2.RUNNING,
    "complete": types_pb2.COMPLETE,
    "pruned": types_pb2.PRUNED,
    "fail": types_pb2.FAILED,
    "failed": types_pb2.FAILED,
    "waiting": types_pb2.WAITING,
}
_STATE_NAMES = {
    types_pb2.RUNNING: "running",
    types_pb2.COMPLETE: "complete",
    types_pb2.PRUNED: "pruned",
    types_pb2.FAILED: "failed",
    types_pb2.WAITING: "waiting",
}


def _member_name(value: Any) -> str | None:
    raw = value if isinstance(value, str) else getattr(value, "name", None)
    return raw.lower() if isinstance(raw, str) else None


def direction_to_proto(direction: Any) -> types_pb2.Direction:
    """Converts ``"minimize"``, ``"MAXIMIZE"``, Optuna's ``StudyDirection.MINIMIZE``... to proto.

    Raises:
        InvalidArgument: Not a direction.
    """
    name = _member_name(direction)
    if name in _DIRECTIONS:
        return _DIRECTIONS[name]
    raise InvalidArgument(
        f"unknown direction {direction!r}; use 'minimize' or 'maximize'",
        field_violations=[("directions", f"unknown direction {direction!r}")],
    )


def directions_from_proto(directions: Iterable[types_pb2.Direction]) -> list[StudyDirection]:
    """Converts proto directions to ``StudyDirection``; none means one ``MINIMIZE``."""
    named = [_DIRECTION_NAMES.get(d, "minimize") for d in directions] or ["minimize"]
    return [StudyDirection[name.upper()] for name in named]


def state_to_proto(state: Any) -> types_pb2.TrialState:
    """Converts ``"complete"``, ``"PRUNED"``, Optuna's ``TrialState.FAILED``... to proto.

    Raises:
        InvalidArgument: Not a trial state.
    """
    name = _member_name(state)
    if name in _STATES:
        return _STATES[name]
    raise InvalidArgument(
        f"unknown trial state {state!r}; known: running, complete, pruned, failed, waiting"
    )


def state_name(state: types_pb2.TrialState) -> str:
    """Returns ``"running"``, ``"complete"``, ... for a proto ``TrialState``."""
    return _STATE_NAMES.get(state, "unspecified")


def state_from_proto(state: types_pb2.TrialState) -> TrialState:
    """Returns the ``TrialState`` of a proto state (an unspecified one reads as ``FAIL``)."""
    name = _STATE_NAMES.get(state, "fail")
    return TrialState.FAIL if name == "failed" else TrialState[name.upper()]


def state_to_enum(state: Any) -> TrialState:
    """Converts a name, our member or Optuna's to ``TrialState``. Raises InvalidArgument."""
    return state_from_proto(state_to_proto(state))
