"""The private Optuna internals that ``hposerve.server.domain._optuna`` relies on still exist.

Each function of ``_optuna`` is run on a real study, the way the service runs it, so that an
Optuna release that renames or removes what it touches fails here, naming it, rather than as
an INTERNAL answer in production.
"""

from __future__ import annotations

import ast
import inspect
import pathlib

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.trial import TrialState

import hposerve.server
from hposerve.server.domain import _optuna
from hposerve.server.storage import LocalJournalBackend, close_storage, open_storage

SPACE = {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(1, 5)}


@pytest.fixture
def study() -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))


def test_the_private_attributes_used_exist(study: optuna.Study, tmp_path: pathlib.Path) -> None:
    trial = study.ask()
    journal = JournalStorage(LocalJournalBackend(tmp_path / "journal.log"))
    frozen = study._storage.get_all_studies()[0]
    missing = [
        what
        for what, present in {
            "Study._storage": hasattr(study, "_storage"),
            "Study._study_id": hasattr(study, "_study_id"),
            "Study._thread_local.cached_all_trials": hasattr(
                study._thread_local, "cached_all_trials"
            ),
            "Study._thread_local.in_optimize_loop": hasattr(
                study._thread_local, "in_optimize_loop"
            ),
            "FrozenStudy._study_id": hasattr(frozen, "_study_id"),
            "Trial._trial_id": hasattr(trial, "_trial_id"),
            "Trial._suggest": callable(getattr(trial, "_suggest", None)),
            "Trial._cached_frozen_trial": hasattr(trial, "_cached_frozen_trial"),
            # What a trial sampled elsewhere is built with (``new_trial(sampled=...)``): all
            # that ``Trial.__init__`` sets.
            "Trial.__init__ sets only these": set(vars(trial))
            == {
                "study",
                "_trial_id",
                "storage",
                "_cached_frozen_trial",
                "relative_search_space",
                "_relative_params",
                "_fixed_params",
            },
            "FrozenTrial._trial_id": hasattr(study.trials[0], "_trial_id"),
            "BaseDistribution._contains": callable(
                getattr(FloatDistribution(0.0, 1.0), "_contains", None)
            ),
            "optuna.study._tell._tell_with_warning": callable(
                getattr(optuna.study._tell, "_tell_with_warning", None)
            ),
            "optuna.storages.journal._base.BaseJournalSnapshot": isinstance(
                _optuna.BaseJournalSnapshot, type
            ),
            # What storage._pg_storage extends: the replayed state, pickled for snapshots, the
            # two replays that change a trial's state, what reads without the lock use, and
            # the per-worker bookkeeping kept for the thread that wrote a log.
            "JournalStorage._replay_result": isinstance(
                getattr(journal, "_replay_result", None), _optuna.JournalStorageReplayResult
            ),
            "JournalStorage._sync_with_backend": callable(
                getattr(journal, "_sync_with_backend", None)
            ),
            "JournalStorage._thread_lock": hasattr(journal, "_thread_lock"),
            # Writes let go of the lock while their log travels: the one place a log is sent.
            "JournalStorage._write_log": callable(getattr(journal, "_write_log", None)),
            # The created trial's id, read after the create's sync (set only by a create).
            "JournalStorage.create_new_trial reads _last_created_trial_id_by_this_process": (
                "_last_created_trial_id_by_this_process"
                in inspect.getsource(JournalStorage.create_new_trial)
            ),
            **{
                f"JournalStorageReplayResult.{name}": hasattr(journal._replay_result, name)
                for name in (
                    "apply_logs",
                    "worker_id",  # what "this worker" is, per log: the thread that wrote it
                    "_worker_id_prefix",
                    "_is_issued_by_this_worker",
                    "_apply_create_trial",
                    "_apply_set_trial_state_values",
                    "_trials",
                    "_trial_id_to_study_id",
                    "_studies",
                    "_study_id_to_trial_ids",
                    "log_number_read",
                )
            },
        }.items()
        if not present
    ]
    close_storage(journal)
    assert missing == []


def test_ids_storage_and_cached_trial(study: optuna.Study) -> None:
    trial = study.ask()
    assert _optuna.storage_of(study) is study._storage
    assert _optuna.study_id_of(study) == study._study_id
    assert _optuna.study_id_of(_optuna.storage_of(study).get_all_studies()[0]) == study._study_id
    assert _optuna.trial_id_of(trial) == _optuna.trial_id_of(study.trials[0])
    assert _optuna.cached_trial(trial).number == trial.number


def test_suggest_and_refresh(study: optuna.Study) -> None:
    trial = study.ask()
    value = _optuna.suggest(trial, "x", SPACE["x"])
    assert 0.0 <= value <= 1.0 and trial.params == {"x": value}
    # Another process writes the trial: a refresh sees it.
    storage = _optuna.storage_of(study)
    storage.set_trial_user_attr(_optuna.trial_id_of(trial), "k", 1)
    assert "k" not in _optuna.cached_trial(trial).user_attrs
    _optuna.refresh_trial(trial)
    assert _optuna.cached_trial(trial).user_attrs == {"k": 1}
    _optuna.drop_trials_cache(study)
    assert study._thread_local.cached_all_trials is None


def test_new_trial_samples_the_space_and_stores_nothing_when_sampling_fails(
    study: optuna.Study,
) -> None:
    trial = _optuna.new_trial(study, SPACE, system_attrs={"k": 1})
    assert set(trial.params) == {"x", "n"}
    assert study.trials[-1].state == TrialState.RUNNING
    assert study.trials[-1].system_attrs == {"k": 1}
    bad = {
        "x": FloatDistribution(0.0, 1.0),
        "c": optuna.distributions.CategoricalDistribution(["a"]),
    }
    study.sampler = _Refusing()
    with pytest.raises(ValueError, match="refused"):
        _optuna.new_trial(study, bad)
    assert len(study.trials) == 1
    # No per-thread cache of the study's trials kept the provisional trials (a Study's copy
    # gets caches of its own).
    cached = study._get_trials(deepcopy=False, use_cache=True)
    assert [t._trial_id for t in cached] == [0]
    # The live trial handed out reads and writes the stored trial, not the view.
    trial.report(0.5, 0)
    assert study.trials[0].intermediate_values == {0: 0.5}
    _optuna.tell(study, trial, [0.25], TrialState.COMPLETE)
    assert study.trials[0].value == 0.25


class _Refusing(optuna.samplers.RandomSampler):
    def sample_independent(self, *args: object, **kwargs: object) -> object:
        raise ValueError("refused")


def test_a_trial_sampled_elsewhere_is_stored_without_sampling_again() -> None:
    multivariate = optuna.samplers.TPESampler(seed=0, n_startup_trials=0, multivariate=True)
    elsewhere = optuna.create_study(sampler=multivariate)
    _, sampled = _optuna.sample_new(elsewhere, SPACE, system_attrs={"k": "v"}, number=0)
    assert elsewhere.trials == []  # nothing stored where it was sampled
    here = optuna.create_study(sampler=_NeverSamples())
    trial = _optuna.new_trial(here, SPACE, sampled=sampled)
    assert trial.params == sampled.template.params
    assert trial.relative_params == sampled.relative_params  # drawn once, not again here
    assert here.trials[0].system_attrs == {"k": "v"}
    trial.report(1.0, 0)  # a live trial of ``here``
    here.tell(trial, 1.0)
    assert here.trials[0].intermediate_values == {0: 1.0}


class _NeverSamples(optuna.samplers.RandomSampler):
    def before_trial(self, *args: object) -> None:
        raise AssertionError("sampled again")

    def sample_relative(self, *args: object) -> dict[str, object]:
        raise AssertionError("sampled again")


def test_tell_finishes_without_a_copy_and_allows_study_stop(study: optuna.Study) -> None:
    trial = study.ask(SPACE)
    _optuna.tell(study, trial, [0.5], TrialState.COMPLETE)
    assert study.trials[-1].state == TrialState.COMPLETE and study.trials[-1].values == [0.5]
    # A sampler that stops the study when done (the grid sampler) is told as in optimize().
    grid = optuna.create_study(sampler=optuna.samplers.GridSampler({"x": [0.0]}))
    only = grid.ask({"x": FloatDistribution(0.0, 1.0)})
    _optuna.tell(grid, only.number, [1.0], TrialState.COMPLETE)
    assert grid.trials[-1].state == TrialState.COMPLETE
    assert grid._thread_local.in_optimize_loop is False


def test_the_grid_sampler_internals_used_exist() -> None:
    sampler = optuna.samplers.GridSampler({"x": [0, 1]})
    for name in ("_get_unvisited_grid_ids", "_same_search_space", "after_trial"):
        assert callable(getattr(sampler, name)), name
    assert sampler._n_min_trials == 2
    assert sampler._search_space == {"x": [0, 1]}
    assert isinstance(_optuna.grid_sampler({"x": [0, 1]}), optuna.samplers.GridSampler)


def test_contains() -> None:
    assert _optuna.contains(FloatDistribution(0.0, 1.0), 0.5)
    assert not _optuna.contains(FloatDistribution(0.0, 1.0), 2.0)


def test_wrapped_backend(tmp_path: pathlib.Path) -> None:
    embedded = open_storage(None, data_dir=tmp_path)
    try:
        assert isinstance(embedded, JournalStorage)
        assert isinstance(_optuna.wrapped_backend(embedded), LocalJournalBackend)
    finally:
        close_storage(embedded)
    rdb = optuna.storages.get_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert isinstance(_optuna.wrapped_backend(rdb), optuna.storages.RDBStorage)
    assert _optuna.wrapped_backend(optuna.storages.InMemoryStorage()) is None


def test_no_other_server_module_touches_optuna_internals() -> None:
    """Private Optuna names are reached from ``_optuna`` only."""
    root = pathlib.Path(hposerve.server.__file__).parent
    private = {
        "_storage",
        "_study_id",
        "_trial_id",
        "_thread_local",
        "_suggest",
        "_cached_frozen_trial",
        "_contains",
        "_tell_with_warning",
        "_backend",
    }
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "_optuna.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute) and node.attr in private:
                # self._storage and the like are our own attributes, not Optuna's.
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    name = node.attr
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optuna"):
                if any(part.startswith("_") for part in (node.module or "").split(".")):
                    name = node.module
            elif isinstance(node, ast.Constant) and node.value in private:
                name = node.value  # getattr(x, "_backend")
            where = path.relative_to(root).as_posix()
            if name:
                offenders.append(f"{where}:{node.lineno}: {name}")
    assert offenders == []
