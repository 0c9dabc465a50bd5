"""A tell's carried reports go to the PostgreSQL journal in one append with its outcome
(``domain._held_reports``), and its reads see them meanwhile."""

from __future__ import annotations

import contextlib
import json
import threading

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from pg_support import MakeBackend, connect, journal_rows

from hposerve.server.domain import _optuna
from hposerve.server.domain._held_reports import reports_with_outcome
from hposerve.server.storage._pg_storage import PostgresJournalStorage

pytestmark = pytest.mark.postgres


def _appends(schema: str) -> list[list[int]]:
    """The op codes of the journal's logs, one list per append, in order."""
    with connect() as conn:
        rows = conn.execute(
            f'SELECT batch, log FROM "{schema}".hposerve_journal ORDER BY seq'
        ).fetchall()
    appends: list[list[int]] = []
    for batch, log in rows:
        if batch is not None:  # on the first row of each append
            appends.append([])
        appends[-1].append(json.loads(log)["op_code"])
    return appends


def _study(make_backend: MakeBackend) -> tuple[PostgresJournalStorage, optuna.Study]:
    storage = PostgresJournalStorage(make_backend())
    return storage, optuna.create_study(storage=storage, study_name="s")


def _asked(study: optuna.Study) -> optuna.Trial:
    """A new trial as the domain's tell reports to it: with a cached copy of its own, which
    ``Trial.report`` writes to (the storage's record would show a held report early)."""
    trial = study.ask()
    _optuna.own_cached_trial(trial)
    return trial


REPORT = _optuna.JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE
STATE = _optuna.JournalOperation.SET_TRIAL_STATE_VALUES


@pytest.mark.parametrize("held", [True, False])
def test_reports_and_the_outcome_are_one_append_and_read_meanwhile(
    make_backend: MakeBackend, pg_schema: str, held: bool
) -> None:
    storage, study = _study(make_backend)
    trial = _asked(study)
    before = len(_appends(pg_schema))
    with reports_with_outcome() if held else contextlib.nullcontext():
        trial.report(0.5, 0)
        trial.report(0.25, 1)
        # The thread's own reads show the reports before they are written.
        assert storage.get_trial(trial._trial_id).intermediate_values == {0: 0.5, 1: 0.25}
        _optuna.tell(study, trial, [0.1], TrialState.COMPLETE)
    appends = _appends(pg_schema)[before:]
    assert appends == ([[REPORT, REPORT, STATE]] if held else [[REPORT], [REPORT], [STATE]])
    # Read back by another replica, from the database.
    stored = PostgresJournalStorage(make_backend()).get_trial(trial._trial_id)
    assert stored.intermediate_values == {0: 0.5, 1: 0.25}
    assert (stored.state, stored.values) == (TrialState.COMPLETE, [0.1])


def test_a_pruned_tell_takes_its_last_held_report_as_its_value(
    make_backend: MakeBackend, pg_schema: str
) -> None:
    storage, study = _study(make_backend)
    trial = _asked(study)
    with reports_with_outcome():
        trial.report(3.0, 0)
        trial.report(2.0, 4)
        _optuna.tell(study, trial, None, TrialState.PRUNED)
    stored = PostgresJournalStorage(make_backend()).get_trial(trial._trial_id)
    assert (stored.state, stored.values, stored.intermediate_values) == (
        TrialState.PRUNED,
        [2.0],
        {0: 3.0, 4: 2.0},
    )


def test_reports_held_by_a_tell_that_fails_before_its_outcome_are_dropped(
    make_backend: MakeBackend, pg_schema: str
) -> None:
    storage, study = _study(make_backend)
    trial = _asked(study)
    before = len(journal_rows(pg_schema))
    with pytest.raises(RuntimeError), reports_with_outcome():
        trial.report(0.5, 0)
        raise RuntimeError("the tell failed before it wrote the outcome")
    storage.set_trial_user_attr(trial._trial_id, "next", 1)  # the thread's next write
    rows = journal_rows(pg_schema)[before:]
    assert [json.loads(log)["op_code"] for _, log in rows] == [
        _optuna.JournalOperation.SET_TRIAL_USER_ATTR
    ]
    assert storage.get_trial(trial._trial_id).intermediate_values == {}


def _finished_elsewhere(make_backend: MakeBackend, trial_id: int) -> None:
    other = PostgresJournalStorage(make_backend())  # another replica
    other.set_trial_state_values(trial_id, TrialState.FAIL)


def test_a_trial_finished_elsewhere_fails_the_append_once(
    make_backend: MakeBackend, pg_schema: str
) -> None:
    storage, study = _study(make_backend)
    trial = _asked(study)
    _finished_elsewhere(make_backend, trial._trial_id)
    with pytest.raises(UpdateFinishedTrialError), reports_with_outcome():
        trial.report(0.5, 0)
        storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [0.1])
    # The outcome's log failed for the same reason; it is not raised by a later write.
    second = study.ask()
    storage.set_trial_user_attr(second._trial_id, "after", True)
    stored = storage.get_trial(trial._trial_id)
    assert (stored.state, stored.intermediate_values) == (TrialState.FAIL, {})


def test_an_append_applied_by_another_thread_raises_its_first_error_in_its_writer(
    make_backend: MakeBackend,
) -> None:
    storage, study = _study(make_backend)
    trial = _asked(study)
    second = study.ask()
    _finished_elsewhere(make_backend, trial._trial_id)
    raised: list[BaseException] = []

    def tell() -> None:
        try:
            with reports_with_outcome():
                trial.report(0.5, 0)
                storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [0.1])
        except BaseException as error:  # noqa: BLE001 - recorded for the test
            raised.append(error)
        # The writer's next write raises nothing of the failed append.
        storage.set_trial_user_attr(second._trial_id, "after", True)

    storage._thread_lock.acquire()
    writer = threading.Thread(target=tell)
    try:
        writer.start()
        for _ in range(200):  # the append reaches the database while the lock is held...
            if storage._backend.read_logs(storage._replay_result.log_number_read):
                break
            writer.join(0.02)
        storage._sync_with_backend()  # ...and this thread applies both of its logs
    finally:
        storage._thread_lock.release()
    writer.join(10)
    assert [type(e) for e in raised] == [UpdateFinishedTrialError]
    assert storage.get_trial(second._trial_id).user_attrs == {"after": True}
