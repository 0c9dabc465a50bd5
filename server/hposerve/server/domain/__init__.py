"""The domain: studies, trials under leases, comparisons, specs and access. No gRPC here.

Every contract raises the exceptions of ``_exceptions`` (InvalidArgument, NotFound, ...) and
nothing else on purpose; the transport maps each to one status.
"""

from hposerve.server.domain._comparisons import (
    ComparisonArm,
    ComparisonRef,
    ComparisonRegistry,
    ComparisonSpec,
)
from hposerve.server.domain._exceptions import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from hposerve.server.domain._studies import StudyOptions, StudyRef, StudyRegistry, TrialRef

__all__ = [
    "AlreadyExists",
    "ComparisonArm",
    "ComparisonRef",
    "ComparisonRegistry",
    "ComparisonSpec",
    "DomainError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "StudyOptions",
    "StudyRef",
    "StudyRegistry",
    "TrialRef",
]
