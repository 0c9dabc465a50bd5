"""What a study is created with, where hposerve keeps its own data in Optuna, and the limits.

A study's hposerve configuration (sampler and pruner specs, options) is the JSON study system
attribute ``hposerve:config``, so that any process opening the same storage rebuilds the same
study. The other ``hposerve:*`` attributes are listed here, in one place.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hposerve.server.domain._exceptions import InvalidArgument
from hposerve.v1 import specs_pb2

__all__ = [
    "ASKED_BY_ATTR",
    "COMPARISON_ATTR",
    "CONFIG_ATTR",
    "DEFAULT_DIRECTION",
    "EXPIRED_ATTR",
    "FINISHED_STATES",
    "INTERNAL_ATTR_PREFIX",
    "LEASE_ATTR",
    "MAX_ARMS",
    "MAX_ASK_COUNT",
    "MAX_ASK_SAMPLES",
    "MAX_BATCH_REPORTS",
    "MAX_BRUTEFORCE_VALUES",
    "MAX_CHOICES",
    "MAX_COMPARISON_MEMBERS",
    "MAX_COMPARISON_TRIALS",
    "MAX_EI_CANDIDATES",
    "MAX_GRID_POINTS",
    "MAX_INC_POPSIZE",
    "MAX_LEASE_SECONDS",
    "MAX_OBJECTIVES",
    "MAX_PAGE_TOKEN",
    "MAX_PARAMS",
    "MAX_POPULATION",
    "MAX_QUICK_REPORTS",
    "MAX_QUICK_SAMPLES",
    "MAX_REFERENCE_POINTS",
    "MAX_REMEMBERED_REQUESTS",
    "MAX_SEEDS",
    "MAX_STEP",
    "MAX_TRIALS_PER_STUDY",
    "REQUEST_ATTR",
    "RETRIES_ATTR",
    "RETRY_OF_ATTR",
    "SAMPLE_SECONDS_ATTR",
    "StudyConfig",
    "StudyOptions",
    "check_ask_size",
    "directions_or_default",
]

# Every system attribute hposerve keeps for itself starts with this (clients are not shown them).
INTERNAL_ATTR_PREFIX = "hposerve:"
# Study system attributes.
CONFIG_ATTR = "hposerve:config"  # StudyConfig as JSON
COMPARISON_ATTR = "hposerve:comparison"  # on each member study: its comparison's definition
# Study and trial system attributes: the request id that created it.
REQUEST_ATTR = "hposerve:request"
# Trial system attributes.
ASKED_BY_ATTR = "hposerve:asked_by"  # the ask request that handed out an enqueued trial
LEASE_ATTR = "hposerve:lease"  # wall-clock expiry, written by heartbeats
EXPIRED_ATTR = "hposerve:expired"  # failed because its lease expired
RETRY_OF_ATTR = "hposerve:retry_of"  # the expired trial whose parameters this one retries
RETRIES_ATTR = "hposerve:retries"  # how many expiries led to this trial
SAMPLE_SECONDS_ATTR = "hposerve:sample_seconds"  # time spent in the sampler for this trial

# Limits on what one request may ask for: each bounds the time or memory one small request
# can make the server spend, and is refused (InvalidArgument naming the field and the limit)
# before anything is written. README "Guarantees" lists them; tests/server/limits checks each.
MAX_ASK_COUNT = 1000  # trials per AskTrials
MAX_LEASE_SECONDS = 30 * 24 * 3600.0
MAX_STEP = 2**31 - 1  # Optuna's SQL schema keeps steps in 32 bits
# Parameters in one search space (AskTrials, a comparison): 150 are a large real model.
MAX_PARAMS = 1000
# Parameters sampled by one AskTrials (count × parameters): each is a sampler call and a
# journal write, ~0.3 ms on a busy 2-core machine, so one ask holds its study ~3 s at most; a
# client wanting more asks in several calls.
MAX_ASK_SAMPLES = 10_000
# Above this many samples (count × parameters) an ask never runs on the event loop.
MAX_QUICK_SAMPLES = 64
# Reports in one ReportIntermediateValues: each is a storage write, so one batch holds its
# study for a bounded time (a client sends more in several batches).
MAX_BATCH_REPORTS = 1000
# Above this many reports a batch is applied on the pool, not on the event loop.
MAX_QUICK_REPORTS = 64
# Choices of one categorical distribution.
MAX_CHOICES = 10_000
# Points of a grid sampler's grid (the product of its axes): Optuna keeps the whole product in
# memory, ~60 bytes a point (a 130³ grid kept +135 MB); 100,000 points are ~6 MB.
MAX_GRID_POINTS = 100_000
# Values of one parameter of a brute-force study: Optuna caches the enumerated values of up to
# 128 ranges process-wide (a range of 3e6 kept +158 MB); 10,000 values × 128 stay under 40 MB.
MAX_BRUTEFORCE_VALUES = 10_000
# Objectives of one study.
MAX_OBJECTIVES = 16
# Comparisons: arms, seeds, each member's budget, member studies (seeds × arms, each one study
# written at creation) and trials over all members (seeds × arms × trials_per_study; a grid
# arm's members each hold their grid, so seeds × grid points count against it too).
MAX_ARMS = 100
MAX_SEEDS = 1000
MAX_TRIALS_PER_STUDY = 1_000_000
MAX_COMPARISON_MEMBERS = 1000
MAX_COMPARISON_TRIALS = 1_000_000  # a grid member loaded keeps ~60 bytes a point: ≤ 60 MB
# Sampler arguments bounded from above (their cost grows with them at every ask):
MAX_EI_CANDIDATES = 10_000  # TPE's n_ei_candidates (default 24): samples scored per parameter
MAX_POPULATION = 10_000  # CMA-ES popsize, NSGA-II/III population_size (defaults 4+3ln(n), 50)
MAX_INC_POPSIZE = 16  # CMA-ES's restart multiplier (default 2): popsize × this per restart
MAX_REFERENCE_POINTS = 100_000  # NSGA-III: C(objectives + dividing_parameter - 1, ...)
# A page token (opaque to clients): a resource id and a little framing.
MAX_PAGE_TOKEN = 1024
# Request ids remembered per study, per comparison, and for deletes; the oldest are dropped.
MAX_REMEMBERED_REQUESTS = 10_000

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
DEFAULT_DIRECTION = StudyDirection.MINIMIZE


def check_ask_size(count: int, n_params: int, field: str = "search_space") -> None:
    """Refuses an ask of ``count`` trials of ``n_params`` parameters past the limits.

    Raises:
        InvalidArgument: more than MAX_PARAMS parameters, or more than MAX_ASK_SAMPLES of
            them sampled in all (``count`` × parameters).
    """
    if n_params > MAX_PARAMS:
        raise InvalidArgument(
            f"{field} has {n_params} parameters, more than the limit MAX_PARAMS = {MAX_PARAMS}",
            field=field,
        )
    if count * n_params > MAX_ASK_SAMPLES:
        raise InvalidArgument(
            f"count {count} × {n_params} parameters = {count * n_params} samples in one ask, "
            f"more than the limit MAX_ASK_SAMPLES = {MAX_ASK_SAMPLES}; ask in several calls",
            field="count",
        )


def directions_or_default(directions: Sequence[StudyDirection]) -> tuple[StudyDirection, ...]:
    """The directions given, or one objective minimized: the rule for studies and comparisons."""
    return tuple(directions) or (DEFAULT_DIRECTION,)


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """Per-study service options (stored with the study).

    Attributes:
        lease_seconds: How long a handed-out trial lives without a heartbeat.
        retry_expired_trials: Enqueue the parameters of a trial whose lease expired again.
        max_retries: How many times one set of parameters is retried at most.

    Raises:
        InvalidArgument: an option out of range (on construction).
    """

    lease_seconds: float = 300.0
    retry_expired_trials: bool = False
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.lease_seconds <= MAX_LEASE_SECONDS:
            raise InvalidArgument(
                f"lease_seconds must be in (0, {MAX_LEASE_SECONDS:.0f}], got {self.lease_seconds}",
                field="options.lease_seconds",
            )
        if self.max_retries < 0:
            raise InvalidArgument(
                f"max_retries must be >= 0, got {self.max_retries}", field="options.max_retries"
            )

    def to_dict(self) -> dict[str, Any]:
        """The stored (JSON) form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> StudyOptions:
        """Reads the stored form."""
        return cls(**raw)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """What a study was created with."""

    directions: tuple[StudyDirection, ...]
    sampler: specs_pb2.SamplerSpec
    pruner: specs_pb2.PrunerSpec
    options: StudyOptions
    create_time: float

    def to_json(self) -> str:
        """The value of the study's ``hposerve:config`` attribute (directions are Optuna's)."""
        return json.dumps(
            {
                "sampler": json_format.MessageToDict(self.sampler),
                "pruner": json_format.MessageToDict(self.pruner),
                "options": self.options.to_dict(),
                "create_time": self.create_time,
            }
        )

    @classmethod
    def from_attrs(
        cls, directions: Sequence[StudyDirection], attrs: Mapping[str, Any]
    ) -> StudyConfig:
        """Reads the stored config; a study made by plain Optuna gets the defaults."""
        raw = json.loads(attrs.get(CONFIG_ATTR, "{}"))
        return cls(
            directions=tuple(directions),
            sampler=json_format.ParseDict(raw.get("sampler", {}), specs_pb2.SamplerSpec()),
            pruner=json_format.ParseDict(raw.get("pruner", {}), specs_pb2.PrunerSpec()),
            options=StudyOptions.from_dict(raw.get("options", {})),
            create_time=raw.get("create_time", 0.0),
        )
