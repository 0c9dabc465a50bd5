"""A study's own attributes: its user attributes and its metric names, as Optuna keeps them.

They are Optuna's (``Study.user_attrs``, ``Study.set_metric_names``), so a study read by plain
Optuna or optuna-dashboard from the same storage shows the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.server.domain._live_study import LiveStudy
from hposerve.server.domain._names import StudyRef

__all__ = ["StudyAttributes", "StudyAttrs"]


@dataclasses.dataclass(frozen=True)
class StudyAttrs:
    """A study's user attributes and metric names (None when never set)."""

    user_attrs: dict[str, Any]
    metric_names: list[str] | None


class StudyAttributes:
    """Reads and sets the attributes of studies.

    Thread-safety: every method may be called from any thread; a write holds the study's
    ``lock``.
    """

    def __init__(self, live: Callable[[StudyRef], LiveStudy]) -> None:
        self._live = live

    def get(self, ref: StudyRef) -> StudyAttrs:
        """Raises: NotFound."""
        study = self._live(ref).study
        return StudyAttrs(dict(study.user_attrs), study.metric_names)

    def update(
        self, ref: StudyRef, *, user_attrs: Mapping[str, Any], metric_names: Sequence[str]
    ) -> StudyAttrs:
        """Sets user attributes (others are kept) and, when given, the metric names.

        Raises:
            NotFound: no such study.
            InvalidArgument: not one metric name per objective, or an empty one.
        """
        live = self._live(ref)
        names = list(metric_names)
        if names:
            n = len(live.config.directions)
            if len(names) != n or not all(names):
                raise InvalidArgument(
                    f"{ref} has {n} objective(s): give one non-empty metric name each, got {names}",
                    field="metric_names",
                )
        if any(not key for key in user_attrs):
            raise InvalidArgument("a user attribute needs a non-empty key", field="user_attrs")
        with live.lock:
            for key, value in user_attrs.items():
                live.study.set_user_attr(key, value)
            if names:
                live.study.set_metric_names(names)
        return self.get(ref)
