"""The domain: studies, trials under leases, comparisons, specs and names. No gRPC here.

Every contract raises the exceptions of ``_exceptions`` (InvalidArgument, NotFound, ...) and
nothing else on purpose; the transport maps each to one status.

The parts, each with one job:

* ``_names``: resource names (ids, references, parsing and formatting).
* ``_config``: study options and configuration, stored attribute keys, limits.
* ``_studies.StudyRegistry``: the entry point to studies, over ``_catalog`` (create, get,
  list, delete), ``_asking`` (ask, suggest, enqueue), ``_trials`` (report, tell, heartbeat,
  attributes, reads) and ``_leases`` (expiry, and the ``LeaseReaper`` thread the server runs).
* ``_live_study``, ``_cache``, ``_requests``: a study in use, the live-object cache, the
  request-id memo.
* ``_comparison_plan`` (validation, arms, grids, members) and ``_comparisons`` (the registry).
* ``_specs`` (over ``_spec_fields`` and ``_values``), ``_grid``: sampler and pruner specs,
  parameter values, derived grids.
* ``_optuna``: every touch of Optuna's private internals.
* ``_access`` (who may do what: the one rule), ``_admin`` (teams, tokens, shares: validation),
  ``_quotas`` (studies, running trials and asks per second, per namespace).
"""

from hposerve.server.domain._catalog import StudyInfo
from hposerve.server.domain._comparison_plan import ComparisonArm, ComparisonSpec
from hposerve.server.domain._comparisons import (
    ComparisonAsk,
    ComparisonInfo,
    ComparisonRegistry,
    MemberProgress,
)
from hposerve.server.domain._config import StudyConfig, StudyOptions
from hposerve.server.domain._exceptions import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from hposerve.server.domain._leases import LeaseReaper
from hposerve.server.domain._live_study import TrialRecord
from hposerve.server.domain._names import ComparisonRef, StudyRef, TrialRef
from hposerve.server.domain._quotas import QuotaLimits, QuotaOverride, Quotas
from hposerve.server.domain._sampling import SamplingProcesses
from hposerve.server.domain._studies import StudyRegistry

__all__ = [
    "AlreadyExists",
    "ComparisonArm",
    "ComparisonAsk",
    "ComparisonInfo",
    "ComparisonRef",
    "ComparisonRegistry",
    "ComparisonSpec",
    "DomainError",
    "FailedPrecondition",
    "InvalidArgument",
    "LeaseReaper",
    "MemberProgress",
    "NotFound",
    "PermissionDenied",
    "QuotaLimits",
    "QuotaOverride",
    "Quotas",
    "ResourceExhausted",
    "SamplingProcesses",
    "StudyConfig",
    "StudyInfo",
    "StudyOptions",
    "StudyRef",
    "StudyRegistry",
    "TrialRecord",
    "TrialRef",
    "Unauthenticated",
]
