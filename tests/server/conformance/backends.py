"""The interface the conformance cases are written against, and its neutral form.

Two backends implement it: ``DomainBackend`` (``_domain.py``) calls ``StudyRegistry``
in-process; ``GrpcBackend`` (``_grpc.py``) calls a real server through the raw stub, so the
servicer, the converters and the error table are on the path. Both take and return one neutral
form (study ids, Optuna distributions, state names, plain Python values) and raise one error,
``BackendError``, built from the google.rpc.Status each refusal becomes: the domain's
exceptions go through the server's own table (``to_status``), so the two backends cannot drift
apart in how they map them.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from google.rpc import code_pb2, error_details_pb2, status_pb2
from optuna.distributions import BaseDistribution

from hposerve.v1 import specs_pb2

DEFAULT_NAMESPACE = "default"
ERROR_DOMAIN = "hposerve.v1"


def study_name(study: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The resource name of a study, as messages spell it."""
    return f"namespaces/{namespace}/studies/{study}"


def trial_name(study: str, number: int, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The resource name of a trial, as messages spell it."""
    return f"{study_name(study, namespace)}/trials/{number}"


# -- the neutral form ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Study:
    """A study as either backend returns it."""

    namespace: str
    study: str
    directions: tuple[str, ...]
    sampler: specs_pb2.SamplerSpec
    pruner: specs_pb2.PrunerSpec
    options: dict[str, Any]
    trial_count: int
    complete_trial_count: int

    @property
    def name(self) -> str:
        return study_name(self.study, self.namespace)


@dataclasses.dataclass(frozen=True)
class Trial:
    """A trial as either backend returns it: everything a bad request must leave alone."""

    namespace: str
    study: str
    number: int
    state: str
    values: tuple[float, ...]
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    intermediate_values: dict[int, float]
    user_attrs: dict[str, Any]
    lease_expires: float | None
    start: float | None
    complete: float | None
    sample_seconds: float

    @property
    def name(self) -> str:
        return trial_name(self.study, self.number, self.namespace)


Snapshot = tuple[int, list[Trial]]


class BackendError(Exception):
    """A refusal: the status code's name, the message and the field (or subject) at fault."""

    def __init__(self, code: str, message: str, field: str, reason: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.reason = reason

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> BackendError:
        """Reads a google.rpc.Status, requiring the one detail its code calls for."""
        code = code_pb2.Code.Name(status.code)
        wanted: dict[str, type[Any]] = {
            "INVALID_ARGUMENT": error_details_pb2.BadRequest,
            "FAILED_PRECONDITION": error_details_pb2.PreconditionFailure,
            "NOT_FOUND": error_details_pb2.ErrorInfo,
            "ALREADY_EXISTS": error_details_pb2.ErrorInfo,
        }
        if code not in wanted:
            return cls(code, status.message, "", "")
        detail = wanted[code]()
        found = [d for d in status.details if d.Is(detail.DESCRIPTOR)]
        assert found, f"no {detail.DESCRIPTOR.full_name} detail in {status}"
        found[0].Unpack(detail)
        field = reason = ""
        if isinstance(detail, error_details_pb2.BadRequest):
            assert detail.field_violations and detail.field_violations[0].field, status
            field = detail.field_violations[0].field
        elif isinstance(detail, error_details_pb2.PreconditionFailure):
            assert detail.violations and detail.violations[0].description, status
            field = detail.violations[0].subject
        else:
            assert detail.reason and detail.domain == ERROR_DOMAIN, status
            field, reason = detail.metadata["field"], detail.reason
        return cls(code, status.message, field, reason)


# -- the interface --------------------------------------------------------------------------------


class Backend(abc.ABC):
    """The service's study operations in neutral form. Every method raises ``BackendError``.

    Trials are named by their study id and number; ``namespace`` defaults to "default". A
    state is "running", "complete", "pruned", "failed" or "waiting" (Optuna's FAIL is
    "failed", as in the client); a direction "minimize" or "maximize".
    Not thread-safe beyond what the service itself is.
    """

    kind: str

    @abc.abstractmethod
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
    ) -> Study: ...

    @abc.abstractmethod
    def get_study(self, study: str, *, namespace: str = DEFAULT_NAMESPACE) -> Study: ...

    @abc.abstractmethod
    def study_pages(
        self, *, namespace: str = DEFAULT_NAMESPACE, page_size: int
    ) -> list[list[Study]]:
        """Every study of a namespace, page by page, in name order."""

    @abc.abstractmethod
    def delete_study(self, study: str, *, namespace: str = DEFAULT_NAMESPACE) -> None: ...

    @abc.abstractmethod
    def ask(
        self,
        study: str,
        space: Mapping[str, BaseDistribution] | None = None,
        *,
        count: int = 1,
        request_id: str = "",
    ) -> list[Trial]: ...

    @abc.abstractmethod
    def suggest(
        self, study: str, number: int, name: str, distribution: BaseDistribution
    ) -> Any: ...

    @abc.abstractmethod
    def report(self, study: str, number: int, *, step: int, value: float) -> bool: ...

    @abc.abstractmethod
    def should_prune(self, study: str, number: int) -> bool: ...

    @abc.abstractmethod
    def tell(
        self, study: str, number: int, state: str = "complete", values: Sequence[float] = ()
    ) -> Trial: ...

    @abc.abstractmethod
    def heartbeat(self, study: str, numbers: Sequence[int]) -> list[float | None]:
        """Renews leases: each trial's new expiry, or None when it is not running."""

    @abc.abstractmethod
    def get_trial(self, study: str, number: int) -> Trial: ...

    @abc.abstractmethod
    def trial_pages(
        self, study: str, *, states: Sequence[str] = (), page_size: int
    ) -> list[list[Trial]]:
        """The trials of a study (of some states only), page by page, in number order."""

    @abc.abstractmethod
    def best_trial(self, study: str) -> Trial: ...

    @abc.abstractmethod
    def pareto_front(self, study: str) -> list[Trial]: ...

    @abc.abstractmethod
    def enqueue(
        self,
        study: str,
        params: Mapping[str, Any],
        *,
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
        request_id: str = "",
    ) -> Trial | None:
        """Enqueues parameters; None when skipped as already enqueued."""

    @abc.abstractmethod
    def set_user_attrs(self, study: str, number: int, attrs: Mapping[str, Any]) -> Trial: ...

    @abc.abstractmethod
    def reap(self, now: float | None = None) -> list[tuple[str, int]]:
        """Fails the trials whose lease expired by ``now`` (default: now); returns them."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- built on the above ----------------------------------------------------------------------

    def list_studies(self, *, namespace: str = DEFAULT_NAMESPACE) -> list[Study]:
        return [s for page in self.study_pages(namespace=namespace, page_size=0) for s in page]

    def list_trials(self, study: str, *, states: Sequence[str] = ()) -> list[Trial]:
        return [t for page in self.trial_pages(study, states=states, page_size=0) for t in page]

    def snapshot(self, study: str) -> Snapshot:
        """Everything a bad request must leave alone: the trial count and every trial."""
        return self.get_study(study).trial_count, self.list_trials(study)

    def study_names(self, *, namespace: str = DEFAULT_NAMESPACE) -> set[str]:
        return {s.name for s in self.list_studies(namespace=namespace)}
