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
    "COMPARISON_ATTR",
    "CONFIG_ATTR",
    "DEFAULT_DIRECTION",
    "EXPIRED_ATTR",
    "FINISHED_STATES",
    "INTERNAL_ATTR_PREFIX",
    "LEASE_ATTR",
    "MAX_ARMS",
    "MAX_ASK_COUNT",
    "MAX_LEASE_SECONDS",
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
LEASE_ATTR = "hposerve:lease"  # wall-clock expiry, written by heartbeats
EXPIRED_ATTR = "hposerve:expired"  # failed because its lease expired
RETRY_OF_ATTR = "hposerve:retry_of"  # the expired trial whose parameters this one retries
RETRIES_ATTR = "hposerve:retries"  # how many expiries led to this trial
SAMPLE_SECONDS_ATTR = "hposerve:sample_seconds"  # time spent in the sampler for this trial

# Limits on what one request may ask for.
MAX_ASK_COUNT = 1000
MAX_LEASE_SECONDS = 30 * 24 * 3600.0
MAX_STEP = 2**31 - 1  # Optuna's SQL schema keeps steps in 32 bits
MAX_ARMS = 100
MAX_SEEDS = 1000
MAX_TRIALS_PER_STUDY = 1_000_000
# Request ids remembered per study, per comparison, and for deletes; the oldest are dropped.
MAX_REMEMBERED_REQUESTS = 10_000

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
DEFAULT_DIRECTION = StudyDirection.MINIMIZE


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
