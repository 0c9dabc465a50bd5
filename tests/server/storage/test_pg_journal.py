"""The PostgreSQL journal backend: ordering, transactions, replicas, snapshots, schema."""

from __future__ import annotations

import concurrent.futures
import json
import pickle
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.trial import FrozenTrial, TrialState
from pg_support import POSTGRES_URL, MakeBackend, connect, journal_rows

from hposerve.server.domain._consistency import each_call_sees_earlier_writes
from hposerve.server.storage import _pg_tail
from hposerve.server.storage._pg_journal import (
    NO_SNAPSHOT,
    JournalLost,
    PostgresJournalBackend,
    postgres_layout,
)
from hposerve.server.storage._pg_storage import PostgresJournalStorage

pytestmark = pytest.mark.postgres


def read_all(backend: PostgresJournalBackend, start: int = 0) -> list[dict[str, Any]]:
    return list(backend.read_logs(start))


def test_snapshot_interface_is_the_one_journal_storage_checks() -> None:
    from optuna.storages.journal import _storage
    from optuna.storages.journal._base import BaseJournalSnapshot

    assert _storage.BaseJournalSnapshot is BaseJournalSnapshot
    assert issubclass(PostgresJournalBackend, BaseJournalSnapshot)


def test_a_batch_is_one_transaction_with_consecutive_numbers(make_backend: MakeBackend) -> None:
    backend = make_backend()
    backend.append_logs([{"i": 0}])
    backend.append_logs([{"i": 1}, {"i": 2}, {"i": 3}])
    backend.append_logs([])
    assert [seq for seq, _ in journal_rows(str(backend.schema))] == [0, 1, 2, 3]
    assert read_all(backend) == [{"i": i} for i in range(4)]
    assert read_all(backend, 2) == [{"i": 2}, {"i": 3}]
    assert read_all(backend, 4) == []


@pytest.mark.parametrize("group_commit", [True, False])
def test_an_entry_that_commits_late_is_not_skipped(
    make_backend: MakeBackend, group_commit: bool
) -> None:
    """A appends first and commits last; B appends second and commits first.

    With numbers taken from a sequence (bigserial), B would commit as log 1 while A's log 0 is
    uncommitted, a reader at 0 would see [B] and go on from 1: A would be lost to it.
    """
    slow, reader = make_backend(), make_backend()
    fast = make_backend(group_commit=group_commit)
    with connect() as conn:
        conn.execute("BEGIN")
        slow._execute_append(conn.cursor(), ['{"who":"slow"}'], uuid.uuid4(), 0)
        done = threading.Event()

        def append_fast() -> None:
            fast.append_logs([{"who": "fast"}])
            done.set()

        thread = threading.Thread(target=append_fast, daemon=True)
        thread.start()
        committed_early = done.wait(0.5)
        seen_meanwhile = read_all(reader)
        conn.execute("COMMIT")
    thread.join(10)
    assert not committed_early, "the second appender did not wait for the first"
    assert seen_meanwhile == []
    assert read_all(reader) == [{"who": "slow"}, {"who": "fast"}]


def test_an_aborted_append_leaves_no_hole(make_backend: MakeBackend) -> None:
    backend = make_backend()
    with connect() as conn:
        conn.execute("BEGIN")
        backend._execute_append(conn.cursor(), ['{"aborted":1}'], uuid.uuid4(), 0)
        conn.execute("ROLLBACK")
    backend.append_logs([{"i": 0}])
    assert [seq for seq, _ in journal_rows(str(backend.schema))] == [0]
    assert read_all(backend) == [{"i": 0}]


def _append_batches(backend: PostgresJournalBackend, writer: int, batches: int) -> None:
    rng = random.Random(writer)
    i = 0
    for _ in range(batches):
        size = rng.randint(1, 3)
        backend.append_logs([{"w": writer, "i": i + k} for k in range(size)])
        i += size


@pytest.mark.parametrize("group_commit", [True, False])
def test_a_polling_reader_sees_every_entry_once_in_order(
    make_backend: MakeBackend, group_commit: bool
) -> None:
    writers = [make_backend(group_commit=group_commit) for _ in range(4)]
    reader = make_backend()
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def poll() -> None:
        while True:
            finished = stop.is_set()  # read once more after the writers are done
            seen.extend(reader.read_logs(len(seen)))
            if finished:
                return

    poller = threading.Thread(target=poll)
    poller.start()
    threads = [
        threading.Thread(target=_append_batches, args=(backend, n, 120))
        for n, backend in enumerate(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    poller.join()

    rows = journal_rows(str(reader.schema))
    assert [seq for seq, _ in rows] == list(range(len(rows)))
    assert seen == [json.loads(log) for _, log in rows]
    for writer in range(len(writers)):
        own = [log["i"] for log in seen if log["w"] == writer]
        assert own == list(range(len(own))) and len(own) >= 120


def test_a_lost_connection_is_retried_without_writing_twice(make_backend: MakeBackend) -> None:
    backend = make_backend()
    backend.append_logs([{"i": 0}])
    _terminate_connection(backend)
    backend.append_logs([{"i": 1}])
    # The first attempt committed but its answer was lost: the retry finds the batch there.
    batch = uuid.uuid4()
    with backend._lock:
        backend._append_once(['{"i":2}'], batch)
        backend._append_once(['{"i":2}'], batch, retry=True)
    assert read_all(make_backend()) == [{"i": 0}, {"i": 1}, {"i": 2}]


def _terminate_connection(backend: PostgresJournalBackend) -> None:
    """Kills the backend's connections (its writer's and its reader's)."""
    with connect() as conn:
        for link in (backend._writer, backend._reader):
            with link.lock:
                pid = backend._connection(link).info.backend_pid
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_a_replica_that_read_logs_the_database_lost_stops(make_backend: MakeBackend) -> None:
    """What a database crash before the WAL flush looks like to a replica that read the tail."""
    writer, replica = make_backend(), make_backend()
    writer.append_logs([{"i": 0}])
    writer.append_logs([{"i": 1}])
    assert read_all(replica) == [{"i": 0}, {"i": 1}]
    with connect() as conn:
        conn.execute(f'DELETE FROM "{replica.schema}".hposerve_journal WHERE seq = 1')
        conn.execute(f'UPDATE "{replica.schema}".hposerve_journal_head SET next_seq = 1')
    writer.append_logs([{"i": "other"}])  # takes number 1 again
    _terminate_connection(replica)
    with pytest.raises(JournalLost, match="log 1"):
        read_all(replica, 2)
    with pytest.raises(JournalLost):
        replica.append_logs([{"i": 2}])


def test_a_replica_reconnects_when_nothing_was_lost(make_backend: MakeBackend) -> None:
    replica = make_backend()
    replica.append_logs([{"i": 0}])
    assert read_all(replica) == [{"i": 0}]
    _terminate_connection(replica)
    assert read_all(replica, 1) == []
    replica.append_logs([{"i": 1}])
    assert read_all(replica, 1) == [{"i": 1}]


def test_replicas_see_each_others_trials_on_the_next_call(make_backend: MakeBackend) -> None:
    a = JournalStorage(make_backend())
    b = JournalStorage(make_backend())
    sampler = optuna.samplers.RandomSampler(seed=0)
    study_a = optuna.create_study(storage=a, study_name="shared", sampler=sampler)
    study_b = optuna.load_study(study_name="shared", storage=b, sampler=sampler)

    told = study_a.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study_a.tell(told, 0.25)
    asked = study_b.ask()
    assert asked.number == 1
    assert [(t.number, t.state, t.value) for t in study_b.get_trials()[:1]] == [
        (0, TrialState.COMPLETE, 0.25)
    ]
    study_b.tell(asked, 0.5)
    assert [t.value for t in study_a.get_trials()] == [0.25, 0.5]


def _fill(storage: JournalStorage, trials: int, name: str = "big") -> None:
    study = optuna.create_study(storage=storage, study_name=name)
    study.set_user_attr("k", "v")
    for n in range(trials):
        trial = study.ask()
        trial.suggest_int("n", 0, 1000)
        trial.report(n / 2, 0)
        study.tell(trial, float(n))


def _state(storage: JournalStorage) -> list[Any]:
    studies = storage.get_all_studies()
    return [(s, storage.get_all_trials(s._study_id)) for s in studies]


@pytest.mark.parametrize("storage_class", [JournalStorage, PostgresJournalStorage])
def test_a_restart_from_a_snapshot_equals_a_full_replay(
    make_backend: MakeBackend, storage_class: type[JournalStorage]
) -> None:
    writer = storage_class(make_backend(snapshot_every=1))
    _fill(writer, 230)  # Optuna offers snapshots at trials 100 and 200
    with connect() as conn:
        (snapshot_at,) = conn.execute(
            f'SELECT log_number FROM "{make_backend().schema}".hposerve_journal_snapshot'
        ).fetchone()
    assert snapshot_at > 0

    restored_backend = make_backend()
    starts: list[int] = []
    read = restored_backend.read_logs

    def spy(log_number_from: int) -> Iterator[dict[str, Any]]:
        starts.append(log_number_from)
        return read(log_number_from)

    restored_backend.read_logs = spy  # type: ignore[method-assign]
    restored = storage_class(restored_backend)
    replayed = JournalStorage(make_backend(snapshot_every=None))

    assert starts[0] == snapshot_at
    assert _state(restored) == _state(replayed) == _state(writer)
    # The restored replica goes on writing where the log is.
    study = optuna.load_study(study_name="big", storage=restored)
    study.tell(study.ask(), 1.0)
    assert len(optuna.load_study(study_name="big", storage=writer).trials) == 231


def test_the_replay_is_pickled_only_for_a_snapshot_that_is_kept(make_backend: MakeBackend) -> None:
    """Optuna pickles its whole replay every 100 trials; the backend keeps few of them."""
    storage = PostgresJournalStorage(make_backend(snapshot_every=10_000))
    _fill(storage, 230)
    assert pickle.dumps(storage._replay_result) == NO_SNAPSHOT
    assert make_backend().load_snapshot() is None

    storage = PostgresJournalStorage(make_backend(snapshot_every=1))
    _fill(storage, 101, "kept")  # Optuna offers one at trial 100
    kept = pickle.loads(make_backend().load_snapshot() or b"")
    # Optuna's own class: a snapshot loads in any replica, and without hposerve.
    assert type(kept) is type(JournalStorage(make_backend())._replay_result)
    assert pickle.dumps(storage._replay_result) != NO_SNAPSHOT


def test_waiting_trials_are_listed_as_a_scan_lists_them(make_backend: MakeBackend) -> None:
    """The index of waiting trials, against a scan, as two replicas enqueue and start them."""
    waiting = (TrialState.WAITING,)
    a, b = PostgresJournalStorage(make_backend()), PostgresJournalStorage(make_backend())
    study = optuna.create_study(storage=a, study_name="w")
    study_id = study._study_id
    on_b = optuna.load_study(study_name="w", storage=b)

    def scanned(storage: JournalStorage) -> list[FrozenTrial]:
        trials = storage.get_all_trials(study_id, deepcopy=False)
        return [t for t in trials if t.state == TrialState.WAITING]

    def agree() -> list[Any]:
        listed = [s.get_all_trials(study_id, states=waiting) for s in (a, b)]
        assert listed[0] == scanned(a) and listed[1] == scanned(b)
        return [t.system_attrs["fixed_params"] for t in listed[0]]

    study.enqueue_trial({"x": 1})
    on_b.enqueue_trial({"x": 2})
    on_b.enqueue_trial({"x": 3})
    assert agree() == [{"x": 1}, {"x": 2}, {"x": 3}]
    on_b.tell(on_b.ask({"x": optuna.distributions.IntDistribution(0, 9)}), 1.0)  # starts x=1
    study.tell(study.ask(), 1.0)  # x=2
    assert agree() == [{"x": 3}]
    assert PostgresJournalStorage(make_backend()).get_all_trials(study_id, states=waiting) == (
        scanned(a)
    )  # rebuilt by a replica that replays the journal
    optuna.delete_study(study_name="w", storage=a)
    with pytest.raises(KeyError):
        a.get_all_trials(study_id, states=waiting)


def test_snapshots_are_kept_only_for_their_optuna_version(make_backend: MakeBackend) -> None:
    backend = make_backend(snapshot_every=1)
    backend.append_logs([{"i": 0}])
    read_all(backend)
    backend.save_snapshot(b"state")
    assert make_backend().load_snapshot() == b"state"
    with connect() as conn:
        conn.execute(
            f'UPDATE "{backend.schema}".hposerve_journal_snapshot SET optuna_version = %s',
            ("0.0.1",),
        )
    assert make_backend().load_snapshot() is None


def test_fewer_new_logs_than_snapshot_every_store_no_snapshot(make_backend: MakeBackend) -> None:
    backend = make_backend(snapshot_every=3)
    backend.append_logs([{"i": 0}, {"i": 1}])
    read_all(backend)
    backend.save_snapshot(b"early")
    assert backend.load_snapshot() is None
    backend.append_logs([{"i": 2}])
    read_all(backend)
    backend.save_snapshot(b"later")
    assert backend.load_snapshot() == b"later"


def test_replicas_opening_a_fresh_database_at_once_all_succeed(pg_schema: str) -> None:
    def open_one(_: int) -> PostgresJournalBackend:
        return PostgresJournalBackend(POSTGRES_URL, schema=pg_schema)

    # An error in any of them is raised here.
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        backends = list(pool.map(open_one, range(6)))
    for backend in backends:
        backend.close()


def test_the_schema_can_come_from_the_url(pg_schema: str) -> None:
    backend = PostgresJournalBackend(f"{POSTGRES_URL}?hposerve_schema={pg_schema}")
    try:
        backend.append_logs([{"i": 0}])
        assert backend.schema == pg_schema
        assert len(journal_rows(pg_schema)) == 1
    finally:
        backend.close()


def test_a_closed_backend_refuses_calls(make_backend: MakeBackend) -> None:
    backend = make_backend()
    backend.close()
    backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        backend.append_logs([{"i": 0}])


def test_a_pickled_backend_opens_its_own_connection(make_backend: MakeBackend) -> None:
    import pickle

    backend = make_backend()
    backend.append_logs([{"i": 0}])
    copy = pickle.loads(pickle.dumps(backend))
    try:
        assert read_all(copy) == [{"i": 0}]
    finally:
        copy.close()


def test_the_layout_follows_the_option_then_what_the_database_holds(pg_schema: str) -> None:
    url = f"{POSTGRES_URL}?hposerve_schema={pg_schema}"
    assert postgres_layout(url) == "journal"
    assert postgres_layout(url + "&hposerve_backend=rdb") == "rdb"
    with connect() as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
    rdb = optuna.storages.RDBStorage(f"{POSTGRES_URL}?options=-csearch_path%3D{pg_schema}")
    try:
        rdb.create_new_study([optuna.study.StudyDirection.MINIMIZE], "old")
        assert postgres_layout(url) == "rdb"
        assert postgres_layout(url + "&hposerve_backend=journal") == "journal"
    finally:
        rdb.engine.dispose()
    PostgresJournalBackend(url).close()
    assert postgres_layout(url) == "journal"  # both: the journal is what hposerve wrote


class _Calls:
    """Registry-like calls: each public method is one call (``_consistency``)."""

    def run(self, do: Any) -> Any:
        return do()


_Calls = each_call_sees_earlier_writes(_Calls)


def _counting_queries(backend: PostgresJournalBackend) -> list[int]:
    """Counts the backend's read queries (an append's own read is not one)."""
    queries: list[int] = []
    query_page = backend._query_page

    def counted(position: int) -> Any:
        queries.append(position)
        return query_page(position)

    backend._query_page = counted  # type: ignore[method-assign]
    return queries


def test_a_call_queries_once_however_many_reads_it_makes(make_backend: MakeBackend) -> None:
    backend = make_backend()
    storage = JournalStorage(backend)
    study = optuna.create_study(storage=storage, study_name="s")
    study.add_trial(optuna.trial.create_trial(value=1.0))
    queries = _counting_queries(backend)

    def reads() -> None:
        for _ in range(5):
            storage.get_all_trials(study._study_id)
            storage.get_trial(0)

    _Calls().run(reads)
    assert len(queries) == 1
    reads()  # outside a call: every read looks
    assert len(queries) == 11


def test_a_call_sees_what_another_replica_wrote_before_it_began(
    make_backend: MakeBackend,
) -> None:
    a, b = JournalStorage(make_backend()), JournalStorage(make_backend())
    study = optuna.create_study(storage=a, study_name="s")
    study_id = study._study_id
    calls = _Calls()

    def in_one_call() -> tuple[int, int]:
        before = len(a.get_all_trials(study_id))
        b.create_new_trial(study_id)  # committed while the call runs
        return before, len(a.get_all_trials(study_id))

    # Within the call that began before B's write, A need not look again...
    assert calls.run(in_one_call) == (0, 0)
    # ...the next call began after it, and sees it, however recently A had looked.
    assert calls.run(lambda: len(a.get_all_trials(study_id))) == 1

    # A's own write brings back what came before it, inside the same call too.
    def write_then_read() -> int:
        b.create_new_trial(study_id)
        a.set_study_user_attr(study_id, "k", 1)
        return len(a.get_all_trials(study_id))

    assert calls.run(write_then_read) == 2


def test_concurrent_calls_query_at_most_once_each(make_backend: MakeBackend) -> None:
    backend = make_backend()
    storage = JournalStorage(backend)
    study = optuna.create_study(storage=storage, study_name="s")
    queries = _counting_queries(backend)
    barrier = threading.Barrier(8)

    def call() -> None:
        barrier.wait()
        _Calls().run(lambda: [storage.get_all_trials(study._study_id) for _ in range(10)])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: call(), range(8)))
    assert 1 <= len(queries) <= 8


def test_a_trial_through_the_registry_is_three_appends_and_a_query_per_call(
    make_backend: MakeBackend,
) -> None:
    from hposerve.server.domain import StudyRegistry

    backend = make_backend()
    registry = StudyRegistry(JournalStorage(backend))
    ref = _random_study(registry, "counted")
    space = {f"x{i}": optuna.distributions.FloatDistribution(0, 1) for i in range(5)}
    queries = _counting_queries(backend)
    appends: list[int] = []
    append_logs = backend.append_logs
    backend.append_logs = lambda logs: (appends.append(len(logs)), append_logs(logs))[1]  # type: ignore[method-assign]
    for i in range(10):
        (record,) = registry.ask(ref, search_space=space, request_id=f"r{i}")
        assert set(record.trial.params) == set(space)
        registry.report(record.ref, step=0, value=0.5)
        registry.tell(record.ref, state=TrialState.COMPLETE, values=[0.5])
    assert len(appends) == 30  # the ask's one record, the report, the tell
    assert len(queries) <= 30  # at most one per call
    stored = registry.list_trials(ref, states=[], after=-1, limit=100)
    assert [len(r.trial.params) for r in stored] == [5] * 10


@pytest.mark.parametrize("storage_class", [JournalStorage, PostgresJournalStorage])
def test_a_call_sees_the_trials_another_replica_changed_before_it_began(
    make_backend: MakeBackend, storage_class: type[JournalStorage]
) -> None:
    a, b = storage_class(make_backend()), storage_class(make_backend())
    study_id = optuna.create_study(storage=b, study_name="s")._study_id
    first = b.create_new_trial(study_id)
    calls = _Calls()
    assert calls.run(lambda: a.get_trial(first).user_attrs) == {}

    def b_writes_during_the_call() -> dict[str, Any]:
        a.get_all_trials(study_id)  # A looks: the rest of the call needs no query
        b.set_trial_user_attr(first, "k", 1)
        b.create_new_trial(study_id)
        return a.get_trial(first).user_attrs

    assert calls.run(b_writes_during_the_call) == {}
    # The next call began after B's writes: A sees them, from any read.
    assert calls.run(lambda: a.get_trial(first).user_attrs) == {"k": 1}
    second = calls.run(lambda: a.get_trial_id_from_study_id_trial_number(study_id, 1))
    assert a.get_trial(second).number == 1
    with pytest.raises(KeyError):
        calls.run(lambda: a.get_trial_id_from_study_id_trial_number(study_id, 2))


def test_reads_in_a_call_do_not_wait_for_a_write_on_its_way(make_backend: MakeBackend) -> None:
    """A sync holds the storage's lock while its query travels. A read in a call that has
    looked since it began answers without the lock, and so does one in a call that looks
    without the lock and finds nothing new; a read outside a call waits for it."""
    storage = PostgresJournalStorage(make_backend())
    study_id = optuna.create_study(storage=storage, study_name="s")._study_id
    trial_id = storage.create_new_trial(study_id)
    calls = _Calls()
    looked, held = threading.Event(), threading.Event()

    def reads() -> tuple[int, int]:
        storage.get_all_trials(study_id)  # looks, under the lock
        looked.set()
        held.wait(10)
        number = storage.get_trial(trial_id).number
        return number, storage.get_trial_id_from_study_id_trial_number(study_id, 0)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        in_call = pool.submit(calls.run, reads)
        assert looked.wait(10)
        with storage._thread_lock:  # as a sync on its way holds it
            held.set()
            assert in_call.result(timeout=5) == (0, trial_id)
            outside = pool.submit(storage.get_trial, trial_id)
            next_call = pool.submit(calls.run, lambda: storage.get_trial(trial_id).number)
            assert next_call.result(timeout=5) == 0
            with pytest.raises(TimeoutError):
                outside.result(timeout=0.3)
        assert outside.result(timeout=10).number == 0


def test_a_call_behind_fetches_what_it_lacks_before_it_waits_for_the_lock(
    make_backend: MakeBackend,
) -> None:
    """The query of a call whose replay lacks a log another replica wrote travels without the
    storage's lock; only applying the rows waits for it."""
    storage = PostgresJournalStorage(make_backend())
    study_id = optuna.create_study(storage=storage, study_name="s")._study_id
    other = PostgresJournalStorage(make_backend())  # another replica
    trial_id = other.create_new_trial(study_id)
    backend = storage._backend
    before = backend._fetched.tail.end
    calls = _Calls()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with storage._thread_lock:  # as a sync on its way holds it
            read = pool.submit(calls.run, lambda: storage.get_trial(trial_id).number)
            for _ in range(250):  # the log arrives while the lock is held...
                if backend._fetched.tail.end > before:
                    break
                time.sleep(0.02)
            assert backend._fetched.tail.end == before + 1
            with pytest.raises(TimeoutError):  # ...and is applied once the lock is free
                read.result(timeout=0.3)
        assert read.result(timeout=10) == 0


def _after_append(storage: PostgresJournalStorage, then: Any) -> None:
    """Runs ``then()`` (on another thread, to its end) after the next append of this thread
    has committed and before it takes the storage's lock again: as another thread's write or
    sync would, while this write's log travels without the lock."""
    backend = storage._backend
    append_logs = backend.append_logs
    me = threading.get_ident()

    def append(logs: list[dict[str, Any]]) -> None:
        append_logs(logs)
        if threading.get_ident() == me:
            backend.append_logs = append_logs  # type: ignore[method-assign]
            worker = threading.Thread(target=then)
            worker.start()
            worker.join(10)

    backend.append_logs = append  # type: ignore[method-assign]


def test_a_write_keeps_its_outcome_when_another_thread_applies_its_log(
    make_backend: MakeBackend,
) -> None:
    storage = PostgresJournalStorage(make_backend())
    study_id = optuna.create_study(storage=storage, study_name="s")._study_id
    created: list[int] = []

    # Another thread creates a trial after this one's create committed: that thread's sync
    # applies both; each still gets its own trial.
    _after_append(storage, lambda: created.append(storage.create_new_trial(study_id)))
    mine = storage.create_new_trial(study_id)
    assert (mine, created) == (0, [1])
    assert [t.number for t in storage.get_all_trials(study_id)] == [0, 1]

    # This thread's write to a finished trial, applied by another thread's sync: the error is
    # this thread's, raised by its own write; the other thread's read goes on.
    storage.set_trial_state_values(mine, TrialState.COMPLETE, [1.0])
    read: list[int] = []
    _after_append(storage, lambda: read.append(len(storage.get_all_trials(study_id))))
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_intermediate_value(mine, 0, 1.0)
    assert read == [2]
    assert storage.get_trial(mine).intermediate_values == {}
    storage.set_trial_intermediate_value(created[0], 0, 2.0)  # the next write of it is fine


def test_writes_of_many_threads_share_appends_and_each_gets_its_own_trial(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend()
    storage = PostgresJournalStorage(backend)
    study_id = optuna.create_study(storage=storage, study_name="s")._study_id
    sent: list[int] = []
    send_queued = backend._send_queued

    def counted() -> None:
        sent.append(len(backend._queue))
        send_queued()

    backend._send_queued = counted  # type: ignore[method-assign]
    barrier = threading.Barrier(16)

    def trial(_: int) -> int:
        barrier.wait()
        trial_id = storage.create_new_trial(study_id)
        storage.set_trial_intermediate_value(trial_id, 0, float(trial_id))
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [float(trial_id)])
        return trial_id

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(trial, range(16)))
    assert sorted(ids) == list(range(16))  # no trial handed to two threads
    for t in storage.get_all_trials(study_id):
        assert (t.state, t.values, t.intermediate_values) == (
            TrialState.COMPLETE,
            [float(t._trial_id)],
            {0: float(t._trial_id)},
        )
    assert sum(sent) == 48 and len(sent) < 48  # some appends carried several threads' logs


def test_the_tail_kept_reaches_furthest_whichever_fetch_ends_last(
    make_backend: MakeBackend,
) -> None:
    backend = make_backend()
    rows = [(i, "{}") for i in range(5)]
    backend._keep_tail(0, rows, fetched_at=2.0)  # an append's rows, to its own logs
    backend._keep_tail(0, rows[:3], fetched_at=3.0)  # a read sent later, before they committed
    assert (backend._fetched.tail.end, backend._fetched.tail.fetched_at) == (5, 3.0)
    backend._keep_tail(2, rows[2:], fetched_at=1.0)  # an older fetch changes nothing
    assert (
        backend._fetched.tail.start,
        backend._fetched.tail.end,
        backend._fetched.tail.fetched_at,
    ) == (0, 5, 3.0)


def test_a_call_is_held_by_any_fetch_sent_after_it_began_that_the_replay_has_read(
    make_backend: MakeBackend,
) -> None:
    from hposerve.server.domain._consistency import began_at

    backend = make_backend()
    rows = [(i, "{}") for i in range(5)]
    backend._keep_tail(0, rows[:3], fetched_at=2.0)
    backend._keep_tail(0, rows, fetched_at=3.0)  # the replay lags behind this one
    for started, replayed, held in (
        (1.5, 3, True),  # the earlier fetch was sent after the call began, and is read
        (1.5, 2, False),
        (2.5, 3, False),  # only the later fetch was sent after the call began
        (2.5, 5, True),
        (3.5, 5, False),  # no fetch since the call began
    ):
        with began_at(started):
            assert backend.holds_call(replayed) is held, (started, replayed)
    assert backend.holds_call(5) is False  # outside a call
    for i in range(3 * _pg_tail.MARKS):  # bounded; the newest are kept
        backend._keep_tail(5 + i, [(5 + i, "{}")], fetched_at=4.0 + i)
    assert len(backend._fetched._marks) <= 2 * _pg_tail.MARKS
    with began_at(4.0 + 3 * _pg_tail.MARKS - 1):
        assert backend.holds_call(5 + 3 * _pg_tail.MARKS)


def test_a_tell_that_loses_a_race_with_another_replica_answers_as_a_retried_tell(
    make_backend: MakeBackend,
) -> None:
    from hposerve.server.domain import FailedPrecondition, StudyRegistry
    from hposerve.server.domain._consistency import began_at

    a = StudyRegistry(PostgresJournalStorage(make_backend()))
    b = StudyRegistry(PostgresJournalStorage(make_backend()))
    ref = _random_study(a, "raced")
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    first, second = (a.ask(ref, search_space=space, request_id=f"r{i}")[0] for i in range(2))
    for record, value, answer in ((first, 0.5, "ok"), (second, 0.7, "refused")):
        # A looks, then B tells the trial (a tell retried there while the first attempt, on A,
        # still runs); A's tell began before B's, reads the trial as running, and loses.
        with began_at(time.monotonic()):
            assert a.get_trial(record.ref).trial.state == TrialState.RUNNING
            b.tell(record.ref, state=TrialState.COMPLETE, values=[value])
            if answer == "ok":  # the same outcome: answered as a retried tell
                told = a.tell(record.ref, state=TrialState.COMPLETE, values=[value])
                assert (told.trial.state, told.trial.values) == (TrialState.COMPLETE, [value])
            else:
                with pytest.raises(FailedPrecondition, match="already finished"):
                    a.tell(record.ref, state=TrialState.COMPLETE, values=[0.0])


def _random_study(registry: Any, name: str) -> Any:
    """Creates a study with the random sampler and no pruner; returns its ref."""
    from hposerve.server.domain import StudyOptions, StudyRef
    from hposerve.v1 import specs_pb2

    ref = StudyRef("default", name)
    registry.create_study(
        ref,
        directions=[],
        sampler=specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=0)),
        pruner=specs_pb2.PrunerSpec(none=specs_pb2.NopPruner()),
        options=StudyOptions(),
        load_if_exists=False,
    )
    return ref
