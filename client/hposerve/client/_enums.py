"""The proto enums (directions, trial states) to and from the names users write.

Optuna's ``StudyDirection`` and ``TrialState`` members are recognized by their member name,
without importing Optuna.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hposerve.v1 import types_pb2

from ._errors import InvalidArgument

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


def directions_from_proto(directions: Iterable[types_pb2.Direction]) -> list[str]:
    """Converts proto directions to ``"minimize"``/``"maximize"``; none means one minimize."""
    return [_DIRECTION_NAMES.get(d, "minimize") for d in directions] or ["minimize"]


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
