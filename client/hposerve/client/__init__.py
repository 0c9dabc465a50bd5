"""hposerve thin client: ask a remote Optuna study for hyperparameters from a training loop.

Needs only grpcio and protobuf. Example::

    from hposerve.client import Client, TrialPruned

    with Client("localhost:50051") as client:
        study = client.create_study(name="mlp", direction="minimize", load_if_exists=True)
        study.optimize(objective, n_trials=50)
"""

from ._client import Client, StudySummary
from ._comparison import (
    Comparison,
    ComparisonArm,
    ComparisonMember,
    ComparisonRun,
    ComparisonTrial,
)
from ._config import ClientConfig
from ._distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from ._enums import StudyDirection, TrialState
from ._errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    HposerveError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ServerError,
    TrialPruned,
    Unauthenticated,
    Unavailable,
)
from ._refine import narrow_space
from ._specs import pruner_spec, sampler_spec
from ._study import Study
from ._trial import FrozenTrial, Trial

__all__ = [
    "AlreadyExists",
    "CategoricalDistribution",
    "Client",
    "ClientConfig",
    "Comparison",
    "ComparisonArm",
    "ComparisonMember",
    "ComparisonRun",
    "ComparisonTrial",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FloatDistribution",
    "FrozenTrial",
    "HposerveError",
    "IntDistribution",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServerError",
    "Study",
    "StudyDirection",
    "StudySummary",
    "Trial",
    "TrialPruned",
    "TrialState",
    "Unauthenticated",
    "Unavailable",
    "narrow_space",
    "pruner_spec",
    "sampler_spec",
]
