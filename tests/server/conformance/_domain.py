"""``DomainBackend``: the suite's cases on ``StudyRegistry`` in-process, no gRPC."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain import (
    DomainError,
    StudyOptions,
    StudyRef,
    StudyRegistry,
    TrialRef,
)
from hposerve.server.storage import close_storage, open_storage
from hposerve.server.transport._errors import to_status
from hposerve.v1 import specs_pb2

from .backends import DEFAULT_NAMESPACE, Backend, BackendError, Study, Trial

STATES = {
    "running": TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
    "waiting": TrialState.WAITING,
}
_STATE_NAMES = {v: k for k, v in STATES.items()}


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """Raises a domain error as the status the server would answer with."""
    try:
        yield
    except DomainError as e:
        raise BackendError.from_status(to_status(e)) from e


def _seconds(dt: datetime.datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _trial_from_record(record: Any) -> Trial:
    t: FrozenTrial = record.trial
    ref: TrialRef = record.ref
    return Trial(
        namespace=ref.study.namespace,
        study=ref.study.study,
        number=t.number,
        state=_STATE_NAMES[t.state],
        values=tuple(t.values or ()),
        params=dict(t.params),
        distributions=dict(t.distributions),
        intermediate_values=dict(t.intermediate_values),
        user_attrs=dict(t.user_attrs),
        lease_expires=record.lease_expires,
        start=_seconds(t.datetime_start),
        complete=_seconds(t.datetime_complete),
        sample_seconds=t.system_attrs.get("hposerve:sample_seconds", 0.0),
    )


def _study_from_info(info: Any) -> Study:
    config = info.config
    return Study(
        namespace=info.ref.namespace,
        study=info.ref.study,
        directions=tuple(d.name.lower() for d in config.directions),
        sampler=config.sampler,
        pruner=config.pruner,
        options=dataclasses.asdict(config.options),
        trial_count=info.trial_count,
        complete_trial_count=info.complete_trial_count,
    )


class DomainBackend(Backend):
    """``StudyRegistry`` in-process over the embedded journal; leases expire by ``reap``."""

    kind = "domain"

    def __init__(
        self, data_dir: Path, *, registry: Callable[[Any], StudyRegistry] = StudyRegistry
    ) -> None:
        self._storage = open_storage(None, data_dir=data_dir)
        self.registry = registry(self._storage)

    def close(self) -> None:
        self.registry.close()
        close_storage(self._storage)

    @staticmethod
    def _ref(study: str, namespace: str = DEFAULT_NAMESPACE) -> StudyRef:
        return StudyRef(namespace, study)

    def _trial(self, study: str, number: int) -> TrialRef:
        return TrialRef(self._ref(study), number)

    def create_study(
        self,
        study: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        directions: Sequence[str] = (),
        sampler: specs_pb2.SamplerSpec | None = None,
        pruner: specs_pb2.PrunerSpec | None = None,
        options: Mapping[str, Any] | None = None,
        load_if_exists: bool = False,
        request_id: str = "",
    ) -> Study:
        with _mapped():
            info = self.registry.create_study(
                self._ref(study, namespace),
                directions=[StudyDirection[d.upper()] for d in directions],
                sampler=sampler,
                pruner=pruner,
                options=StudyOptions(**(options or {})),
                load_if_exists=load_if_exists,
                request_id=request_id,
            )
            return _study_from_info(info)

    def get_study(self, study: str, *, namespace: str = DEFAULT_NAMESPACE) -> Study:
        with _mapped():
            return _study_from_info(self.registry.get_study(self._ref(study, namespace)))

    def study_pages(
        self, *, namespace: str = DEFAULT_NAMESPACE, page_size: int
    ) -> list[list[Study]]:
        limit = page_size or sys.maxsize
        pages: list[list[Study]] = []
        after = ""
        with _mapped():
            while page := self.registry.list_studies(namespace, after=after, limit=limit):
                pages.append([_study_from_info(i) for i in page])
                if len(page) < limit:
                    break
                after = page[-1].ref.study
        return pages

    def delete_study(self, study: str, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        with _mapped():
            self.registry.delete_study(self._ref(study, namespace))

    def ask(
        self,
        study: str,
        space: Mapping[str, BaseDistribution] | None = None,
        *,
        count: int = 1,
        request_id: str = "",
    ) -> list[Trial]:
        with _mapped():
            records = self.registry.ask(
                self._ref(study), search_space=space or {}, count=count, request_id=request_id
            )
            return [_trial_from_record(r) for r in records]

    def suggest(self, study: str, number: int, name: str, distribution: BaseDistribution) -> Any:
        with _mapped():
            return self.registry.suggest(self._trial(study, number), name, distribution)

    def report(self, study: str, number: int, *, step: int, value: float) -> bool:
        with _mapped():
            return self.registry.report(self._trial(study, number), step=step, value=value)

    def should_prune(self, study: str, number: int) -> bool:
        with _mapped():
            return self.registry.should_prune(self._trial(study, number))

    def tell(
        self, study: str, number: int, state: str = "complete", values: Sequence[float] = ()
    ) -> Trial:
        with _mapped():
            record = self.registry.tell(
                self._trial(study, number), state=STATES[state], values=values
            )
            return _trial_from_record(record)

    def heartbeat(self, study: str, numbers: Sequence[int]) -> list[float | None]:
        with _mapped():
            records = self.registry.heartbeat([self._trial(study, n) for n in numbers])
            return [r.lease_expires if r is not None else None for r in records]

    def get_trial(self, study: str, number: int) -> Trial:
        with _mapped():
            return _trial_from_record(self.registry.get_trial(self._trial(study, number)))

    def trial_pages(
        self, study: str, *, states: Sequence[str] = (), page_size: int
    ) -> list[list[Trial]]:
        limit = page_size or sys.maxsize
        wanted = [STATES[s] for s in states]
        pages: list[list[Trial]] = []
        after = -1
        with _mapped():
            while page := self.registry.list_trials(
                self._ref(study), states=wanted, after=after, limit=limit
            ):
                pages.append([_trial_from_record(r) for r in page])
                if len(page) < limit:
                    break
                after = page[-1].ref.number
        return pages

    def best_trial(self, study: str) -> Trial:
        with _mapped():
            return _trial_from_record(self.registry.best_trial(self._ref(study)))

    def pareto_front(self, study: str) -> list[Trial]:
        with _mapped():
            return [_trial_from_record(r) for r in self.registry.pareto_front(self._ref(study))]

    def enqueue(
        self,
        study: str,
        params: Mapping[str, Any],
        *,
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
        request_id: str = "",
    ) -> Trial | None:
        with _mapped():
            record = self.registry.enqueue(
                self._ref(study),
                params=params,
                user_attrs=user_attrs or {},
                skip_if_exists=skip_if_exists,
                request_id=request_id,
            )
            return None if record is None else _trial_from_record(record)

    def set_user_attrs(self, study: str, number: int, attrs: Mapping[str, Any]) -> Trial:
        with _mapped():
            record = self.registry.set_user_attrs(self._trial(study, number), attrs)
            return _trial_from_record(record)

    def reap(self, now: float | None = None) -> list[tuple[str, int]]:
        return reaped(self.registry, now)


def reaped(registry: StudyRegistry, now: float | None) -> list[tuple[str, int]]:
    return sorted((r.study.study, r.number) for r in registry.reap_expired(now=now))
