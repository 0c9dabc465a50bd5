"""The public surface of hposerve.client, pinned: changing it is a deliberate act."""

from __future__ import annotations

import hposerve.client

PUBLIC = [
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


def test_all_is_pinned():
    assert sorted(PUBLIC) == PUBLIC
    assert hposerve.client.__all__ == PUBLIC


def test_every_public_name_exists_and_nothing_public_is_left_out():
    for name in PUBLIC:
        assert hasattr(hposerve.client, name), name
    # A public (not underscored) class or function in the package is listed, or is a module.
    exported = {
        name
        for name, value in vars(hposerve.client).items()
        if not name.startswith("_") and not isinstance(value, type(hposerve))
    }
    assert exported == set(PUBLIC)
