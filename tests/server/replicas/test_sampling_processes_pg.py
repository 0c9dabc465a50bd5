"""A replica's sampling process on the PostgreSQL journal sees every trial, the other replica's
too, before it samples: its seeded asks choose what Optuna in-process chooses on those trials."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hposerve.server.domain import SamplingProcesses, StudyOptions, StudyRef, StudyRegistry
from hposerve.server.storage import close_storage, mirror_of, open_storage
from hposerve.v1 import specs_pb2

pytestmark = pytest.mark.postgres

SPACE = {"x": FloatDistribution(-5.0, 5.0), "n": IntDistribution(1, 8)}


class _Refusing(optuna.samplers.RandomSampler):
    def sample_relative(self, *args, **kwargs):
        raise AssertionError("sampled in the server")

    def sample_independent(self, *args, **kwargs):
        raise AssertionError("sampled in the server")


def test_asks_see_the_other_replicas_trials(journal_url):
    a_storage, b_storage = open_storage(journal_url), open_storage(journal_url)
    sampling = SamplingProcesses(mirror_of(a_storage), 1)
    a, b = StudyRegistry(a_storage, sampling=sampling), StudyRegistry(b_storage)
    try:
        ref = StudyRef("default", "pg-sampling")
        spec = specs_pb2.TpeSampler(seed=5, n_startup_trials=4, multivariate=True)
        a.create_study(
            ref,
            directions=[],
            sampler=specs_pb2.SamplerSpec(tpe=spec),
            pruner=None,
            options=StudyOptions(),
            load_if_exists=False,
        )
        a._catalog.live(ref).study.sampler = _Refusing()
        local = optuna.create_study(
            sampler=optuna.samplers.TPESampler(seed=5, n_startup_trials=4, multivariate=True)
        )
        for i in range(12):
            (mine,) = a.ask(ref, search_space=SPACE)
            expected = local.ask(SPACE)
            assert mine.trial.params == expected.params, f"ask {i}"
            a.tell(mine.ref, state=TrialState.COMPLETE, values=[mine.trial.params["x"] ** 2])
            local.tell(expected, mine.trial.params["x"] ** 2)
            # The other replica's trial: the next ask of A's sampling process must know it.
            (theirs,) = b.ask(ref, search_space=SPACE)
            value = (theirs.trial.params["x"] - 2.0) ** 2
            b.tell(theirs.ref, state=TrialState.COMPLETE, values=[value])
            local.add_trial(
                optuna.trial.create_trial(
                    params=theirs.trial.params, distributions=SPACE, value=value
                )
            )
        assert sampling.pids()[0] is not None
    finally:
        sampling.close()
        for registry, storage in ((a, a_storage), (b, b_storage)):
            registry.close()
            close_storage(storage)
