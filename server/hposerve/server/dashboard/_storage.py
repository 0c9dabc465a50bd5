"""The storage the dashboard sees: the server's live storage, filtered by who is looking.

optuna-dashboard reads and writes a ``BaseStorage``; ``DashboardStorage`` delegates to the
server's own (so the embedded journal's lock is no obstacle, and what trainers write is seen
at once) and applies the access rule of ``domain._access`` to the principal of the request
being served (``viewing``):

* only hposerve studies are listed, and only those the principal may see; a study it may not
  see is, to every read, a study that does not exist;
* study names read as people named them: ``study`` in the ``default`` namespace, else
  ``namespace/study`` (Optuna's own name, ``namespace/study``, is what the storage holds);
* writes from the UI (notes, tells, user attributes, preferences) need the editor role on the
  study; creating, renaming and deleting studies is refused: the service does those.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Container, Iterator, Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain import _optuna
from hposerve.server.domain._access import (
    Action,
    PermissionDenied,
    Principal,
    Resource,
    allows,
    visible_namespaces,
    visible_studies,
)
from hposerve.server.domain._names import StudyRef, study_ref_from_optuna_name

__all__ = ["DashboardStorage", "display_name", "viewing"]

DEFAULT_NAMESPACE = "default"


class _Anyone:
    """Auth is off: the request may see and change every study."""


ANYONE = _Anyone()
_VIEWER: contextvars.ContextVar[Principal | _Anyone | None] = contextvars.ContextVar(
    "hposerve_dashboard_viewer", default=None
)


@contextlib.contextmanager
def viewing(principal: Principal | _Anyone | None) -> Iterator[None]:
    """Serves the current request (thread) as ``principal``: ``ANYONE`` when auth is off, None
    for a request that may see no study."""
    token = _VIEWER.set(principal)
    try:
        yield
    finally:
        _VIEWER.reset(token)


def display_name(ref: StudyRef) -> str:
    """How the dashboard names a study."""
    if ref.namespace == DEFAULT_NAMESPACE:
        return ref.study
    return ref.optuna_name


def _ref_of_display(name: str) -> StudyRef | None:
    return study_ref_from_optuna_name(name if "/" in name else f"{DEFAULT_NAMESPACE}/{name}")


class DashboardStorage(BaseStorage):
    """A filtered view of ``storage`` for the principal of the current request.

    Thread-safety: as the wrapped storage; the principal is per thread (``viewing``).
    """

    def __init__(self, storage: BaseStorage) -> None:
        self._storage = storage
        self._trial_study: dict[int, int] = {}  # trial id -> study id, learned from reads

    # -- who may see what ----------------------------------------------------------------------

    def _may(self, ref: StudyRef, action: Action) -> bool:
        viewer = _VIEWER.get()
        if viewer is None:
            return False  # outside a request: nothing
        if isinstance(viewer, _Anyone):
            return True
        if action is Action.READ:
            seen: Container[str] = visible_namespaces(viewer)
            return ref.namespace in seen and ref.study in visible_studies(viewer, ref.namespace)
        return allows(viewer, action, Resource(namespace=ref.namespace, study=ref.study))

    def _ref(self, study_id: int) -> StudyRef:
        """The study ``study_id`` is, if the viewer may see it. Raises: KeyError."""
        ref = study_ref_from_optuna_name(self._storage.get_study_name_from_id(study_id))
        if ref is None or not self._may(ref, Action.READ):
            raise KeyError(f"no study with id {study_id}")
        return ref

    def _writable(self, study_id: int) -> None:
        ref = self._ref(study_id)
        if not self._may(ref, Action.WRITE):
            raise PermissionDenied(f"writing to {display_name(ref)} needs the editor role")

    def _writable_trial(self, trial_id: int) -> None:
        study_id = self._trial_study.get(trial_id)
        if study_id is None:
            raise PermissionDenied(f"trial {trial_id} is not one the dashboard has shown")
        self._writable(study_id)

    def study_of_trial(self, trial_id: int) -> int | None:
        """The study of a trial the dashboard has shown, or None."""
        return self._trial_study.get(trial_id)

    def may_write(self, study_id: int) -> bool:
        """Whether the viewer may write to the study (False for one it may not see)."""
        try:
            self._writable(study_id)
        except (KeyError, PermissionDenied):
            return False
        return True

    # -- studies -------------------------------------------------------------------------------

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        raise PermissionDenied("studies are created through the service, not the dashboard")

    def delete_study(self, study_id: int) -> None:
        raise PermissionDenied("studies are deleted through the service, not the dashboard")

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._writable(study_id)
        self._storage.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._writable(study_id)  # notes, preferences, artifacts
        self._storage.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        ref = _ref_of_display(study_name)
        if ref is None or not self._may(ref, Action.READ):
            raise KeyError(f"no study named {study_name!r}")
        return self._storage.get_study_id_from_name(ref.optuna_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return display_name(self._ref(study_id))

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        self._ref(study_id)
        return self._storage.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        self._ref(study_id)
        return self._storage.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        self._ref(study_id)
        return self._storage.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[Any]:
        # FrozenStudy objects (a type Optuna exports from no public module).
        shown = []
        for study in self._storage.get_all_studies():
            ref = study_ref_from_optuna_name(study.study_name)
            if ref is not None and self._may(ref, Action.READ):
                renamed = copy.copy(study)
                renamed.study_name = display_name(ref)
                shown.append(renamed)
        return shown

    # -- trials --------------------------------------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        raise PermissionDenied("trials are asked for through the service, not the dashboard")

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        raise PermissionDenied("parameters are sampled by the service, not the dashboard")

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        self._writable_trial(trial_id)  # a tell from the UI
        return self._storage.set_trial_state_values(trial_id, state, values)

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        raise PermissionDenied("intermediate values are reported through the service")

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._writable_trial(trial_id)
        self._storage.set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._writable_trial(trial_id)  # artifacts
        self._storage.set_trial_system_attr(trial_id, key, value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        study_id = self._trial_study.get(trial_id)
        if study_id is None:
            raise KeyError(f"no trial with id {trial_id}")
        self._ref(study_id)
        return self._storage.get_trial(trial_id)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        self._ref(study_id)
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        for trial in trials:
            self._trial_study[_optuna.trial_id_of(trial)] = study_id
        return trials

    def remove_session(self) -> None:
        self._storage.remove_session()
