"""A trial's write on the PostgreSQL journal sends its log before it waits for Optuna's
storage lock (``_pg_storage._StorageLock``), and takes the lock for its sync after."""

from __future__ import annotations

import threading

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from pg_support import MakeBackend, journal_rows

from hposerve.server.storage._pg_storage import PostgresJournalStorage

pytestmark = pytest.mark.postgres


def _storage_with_a_trial(make_backend: MakeBackend) -> tuple[PostgresJournalStorage, int]:
    storage = PostgresJournalStorage(make_backend())
    study_id = optuna.create_study(storage=storage, study_name="s")._study_id
    return storage, storage.create_new_trial(study_id)


WRITES = {
    "user attr": lambda s, t: s.set_trial_user_attr(t, "k", 1),
    "system attr": lambda s, t: s.set_trial_system_attr(t, "k", 1),
    "param": lambda s, t: s.set_trial_param(t, "x", 0.5, FloatDistribution(0, 1)),
    "report": lambda s, t: s.set_trial_intermediate_value(t, 0, 0.5),
    "tell": lambda s, t: s.set_trial_state_values(t, TrialState.COMPLETE, [0.5]),
    "create": lambda s, t: s.create_new_trial(0),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_write_sends_its_log_while_another_thread_holds_the_lock(
    make_backend: MakeBackend, pg_schema: str, write: str
) -> None:
    storage, trial_id = _storage_with_a_trial(make_backend)
    before = len(journal_rows(pg_schema))
    storage._thread_lock.acquire()  # another thread's sync, say
    writer = threading.Thread(target=WRITES[write], args=(storage, trial_id))
    try:
        writer.start()
        # The log reaches the database while the lock is held...
        for _ in range(200):
            if len(journal_rows(pg_schema)) > before:
                break
            writer.join(0.02)
        assert len(journal_rows(pg_schema)) == before + 1
        # ...and the write ends only once it has the lock to sync.
        assert writer.is_alive()
    finally:
        storage._thread_lock.release()
    writer.join(10)
    assert not writer.is_alive()


def test_a_write_that_fails_before_its_log_leaves_the_lock_working(
    make_backend: MakeBackend,
) -> None:
    storage, trial_id = _storage_with_a_trial(make_backend)
    bad = optuna.trial.create_trial(
        params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=1.0
    )
    bad._distributions = {}  # a parameter without its distribution: fails building the log
    with pytest.raises(KeyError):
        storage.create_new_trial(0, template_trial=bad)
    # This thread's next use of the lock holds it (the failed write's skip was dropped).
    with storage._thread_lock:
        assert not storage._thread_lock.acquire(blocking=False)
    assert storage._thread_lock.acquire(blocking=False)
    storage._thread_lock.release()
    storage.set_trial_user_attr(trial_id, "after", True)
    assert storage.get_trial(trial_id).user_attrs == {"after": True}
