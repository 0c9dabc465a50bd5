"""Optuna's ``JournalStorage`` on the PostgreSQL journal, without two costs that grow with it.

Snapshots. Optuna's ``JournalStorage`` offers its backend a snapshot every 100 trials, and
pickles its whole replayed state to do so, under the lock that every storage call of the
process waits for: 13 ms at 1,000 trials, 60 ms at 4,000. The PostgreSQL backend keeps one
only every ``snapshot_every`` logs (10,000 by default) and discards the rest. Here the replayed
state pickles to a small marker (``NoSnapshot``) unless the backend would keep it.

Waiting trials. Each ask on a replica looks for trials that another replica enqueued; Optuna
finds them by a scan of all the study's trials (0.3 ms at 4,000 trials, 2.3 ms at 20,000, under
the study's sampling lock). The replay here keeps the waiting trials of each study as it
applies the logs, and ``get_all_trials(..., states=(WAITING,))`` reads them from there
(without the lock, as below).

Reads without the lock. Optuna's ``JournalStorage`` takes its one lock for every read, and a
sync holds it while its query travels to the database and back: under load each read of an
ask waited about 1.5 ms for the lock, five times per ask. ``get_trial``,
``get_trial_id_from_study_id_trial_number`` and the list of waiting trials answer from the
replay without the lock when it already holds every log committed before the registry call
began (``holds_call``): taking the lock would only have waited for writes that are not
acknowledged yet. The replay replaces a trial's ``FrozenTrial`` whole (and a study's set of
waiting trials), and only appends to a study's list of trials, so a read of one entry sees it
before or after a change, never halfway. A call whose replay lacks what it must see fetches
that first, without the lock (``fetch_for_call``): the sync then applies rows already fetched,
rather than hold the lock across a query while every other thread's sync waits.

Writes without the lock. Optuna's ``JournalStorage`` holds its lock while a write's log travels
to the database and back, so a replica's writes went one round trip at a time, however many
threads made them. Here the lock is released while the log travels (``_write_log``): other
threads read meanwhile, and their writes join the same append (the backend's group commit).
Each write still syncs under the lock once its append is back, as Optuna's does. A trial's
write does not even wait for the lock before its log is queued (``_StorageLock``): Optuna
enters it only to call ``_write_log`` first thing, and that wait (for the lock and then for the
interpreter) cost an ask 1.3-2.4 ms under load while it held its study's turn. What Optuna
keeps for "this worker" (one thread: the trial it created last, the trial it popped, the error
its log raises) is kept for the thread that wrote the log even when another thread's sync
applies it (``_Replay``): an error is handed to the writer, which raises it at its own sync.

A tell's reports with its outcome. Within ``reports_with_outcome`` (``domain._held_reports``)
a trial's reports are held and go in the same append as the thread's next write, the tell's
outcome: one append and one sync for the tell instead of one more per report. The thread's
``get_trial`` shows them meanwhile, as Optuna's tell reads them. A write of several logs
raises the error of its first failing log, once.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Container, Iterable, Sequence
from typing import Any, TypeVar

from optuna.storages import JournalStorage
from optuna.trial import FrozenTrial, TrialState

from hposerve.server.domain._held_reports import held_reports
from hposerve.server.domain._optuna import JournalOperation, JournalStorageReplayResult
from hposerve.server.storage._pg_journal import NoSnapshot, PostgresJournalBackend

__all__ = ["PostgresJournalStorage"]

T = TypeVar("T")


# What _Replay adds to Optuna's state.
_OWN = ("_snapshot_due", "_waiting", "_applying", "_created", "_errors")


class _Replay(JournalStorageReplayResult):
    """Optuna's replayed state, pickled in full only when a snapshot is due, and with the
    waiting trials of each study kept (see the module docstring)."""

    _snapshot_due: Callable[[], bool]
    # study id -> ids of its waiting trials; each set replaced whole (rare), so that it can be
    # read without the lock
    _waiting: dict[int, frozenset[int]]
    _applying: dict[str, Any] | None  # the log of this process being applied, if any
    _created: dict[str, int]  # worker (a thread of this process) -> the trial it created last
    _errors: dict[str, Exception]  # worker -> the error its log raised in another's sync

    @classmethod
    def adopt(cls, replay: JournalStorageReplayResult, due: Callable[[], bool]) -> _Replay:
        adopted = cls.__new__(cls)
        vars(adopted).update(vars(replay))
        adopted._snapshot_due = due
        adopted._waiting = {}
        adopted._applying = None
        adopted._created = {}
        adopted._errors = {}
        for trial_id, trial in adopted._trials.items():
            if trial.state == TrialState.WAITING:
                study_id = adopted._trial_id_to_study_id[trial_id]
                adopted._wait(study_id, trial_id, True)
        return adopted

    @property
    def worker_id(self) -> str:
        """The thread that wrote the log being applied, if this process wrote it; else the
        calling thread (Optuna's). Optuna's replay credits "this worker" by it."""
        applying = self._applying
        return applying["worker_id"] if applying is not None else super().worker_id

    @property  # type: ignore[override]
    def _last_created_trial_id_by_this_process(self) -> int:
        return self._created.get(self.worker_id, -1)

    @_last_created_trial_id_by_this_process.setter
    def _last_created_trial_id_by_this_process(self, trial_id: int) -> None:
        self._created[self.worker_id] = trial_id

    def apply_logs(self, logs: Iterable[dict[str, Any]]) -> None:
        """Applies each log as its writer would; an error of another thread's log is kept for
        that thread (``take_error``), as the writer's own sync would have raised it. Logs
        after a failing one are applied too (Optuna's would wait for the next sync)."""
        me = self.worker_id
        mine: Exception | None = None
        for log in logs:
            writer = log.get("worker_id", "")
            ours = writer.startswith(self._worker_id_prefix)
            self._applying = log if ours else None
            try:
                super().apply_logs((log,))
            except Exception as error:
                if not ours:
                    raise
                # A write of several logs (a tell's reports and outcome) raises the error of
                # its first failing log: the rest fail for the same reason, and are applied
                # (as Optuna's next sync would) rather than raised in a later call.
                if writer == me:
                    mine = mine or error
                else:
                    self._errors.setdefault(writer, error)
            finally:
                self._applying = None
        if mine is not None:
            raise mine

    def take_error(self) -> Exception | None:
        """The error the calling thread's last log raised when another thread applied it."""
        return self._errors.pop(self.worker_id, None)

    def waiting_trials(self, study_id: int) -> list[FrozenTrial]:
        """The study's waiting trials, in order; KeyError if there is no such study."""
        if study_id not in self._studies:
            return self.get_all_trials(study_id, (TrialState.WAITING,))  # Optuna's KeyError
        return [self._trials[i] for i in sorted(self._waiting.get(study_id, ()))]

    def _apply_create_trial(self, log: dict[str, Any]) -> None:
        created = len(self._trials)  # the id Optuna gives the trial, if it creates it
        super()._apply_create_trial(log)
        if len(self._trials) > created and self._trials[created].state == TrialState.WAITING:
            self._wait(log["study_id"], created, True)

    def _apply_set_trial_state_values(self, log: dict[str, Any]) -> None:
        super()._apply_set_trial_state_values(log)
        trial_id = log["trial_id"]
        trial = self._trials.get(trial_id)
        if trial is not None and trial.state != TrialState.WAITING:
            self._wait(self._trial_id_to_study_id[trial_id], trial_id, False)

    def _wait(self, study_id: int, trial_id: int, waits: bool) -> None:
        ids = self._waiting.get(study_id, frozenset())
        if (trial_id in ids) != waits:
            self._waiting[study_id] = ids | {trial_id} if waits else ids - {trial_id}

    def __reduce__(self) -> Any:
        if not self._snapshot_due():
            return NoSnapshot, ()  # what NO_SNAPSHOT holds
        # Pickled as Optuna's own class, so that a snapshot loads in any replica and without
        # hposerve.
        state = {k: v for k, v in vars(self).items() if k not in _OWN}
        return object.__new__, (JournalStorageReplayResult,), state


class _StorageLock:
    """Optuna's storage lock, which a trial's write enters only to send its log first and
    ``_write_log`` lets go of at once. A write entered after ``send_first`` does not wait for it
    there: ``_write_log`` takes it once the log is on its way. (Each wait for the lock is also a
    wait for the interpreter: under load it cost an ask 1.3-2.4 ms while it held its study's
    turn.)"""

    def __init__(self, lock: Any) -> None:
        self._lock = lock  # Optuna's (or what a tool put in its place: the bench's timed one)
        self._local = threading.local()  # .skip: the next entry does not wait; .skipped: it did not

    def send_first(self, skip: bool) -> None:
        """Whether this thread's next entry skips the lock (its first act is ``_write_log``)."""
        self._local.skip = skip

    def take_skipped(self) -> bool:
        """Whether this thread is inside an entry that skipped the lock (and forgets it)."""
        skipped = getattr(self._local, "skipped", False)
        self._local.skipped = False
        return skipped

    def __enter__(self) -> _StorageLock:
        if getattr(self._local, "skip", False):
            self._local.skip, self._local.skipped = False, True
        else:
            self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()  # taken by _write_log after a skipped entry

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self._lock.acquire(blocking, timeout))

    def release(self) -> None:
        self._lock.release()


class PostgresJournalStorage(JournalStorage):
    """``JournalStorage(PostgresJournalBackend(...))`` that pickles a snapshot only when the
    backend stores it, and lists waiting trials without a scan. Thread-safe and process-safe,
    as Optuna's."""

    _thread_lock: _StorageLock  # type: ignore[assignment]

    def __init__(self, backend: PostgresJournalBackend) -> None:
        self._replayed = 0  # the logs before this are replayed whole (see _sync_with_backend)
        super().__init__(backend)  # loads the last snapshot, if any, and replays the rest
        self._adopt()

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._adopt()

    # A trial's writes whose first act under the lock is to send their log (Optuna's).
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        return self._sending_first(super().create_new_trial, study_id, template_trial)

    def set_trial_param(self, *args: Any, **kwargs: Any) -> None:
        self._sending_first(super().set_trial_param, *args, **kwargs)

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        held = held_reports()
        if held is None:
            self._sending_first(
                super().set_trial_intermediate_value, trial_id, step, intermediate_value
            )
            return
        # Sent with this thread's next write (the tell's outcome), as Optuna would write it.
        fields = {"trial_id": trial_id, "step": step, "intermediate_value": intermediate_value}
        held.append(self._log(JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE, fields))

    def set_trial_user_attr(self, *args: Any, **kwargs: Any) -> None:
        self._sending_first(super().set_trial_user_attr, *args, **kwargs)

    def set_trial_system_attr(self, *args: Any, **kwargs: Any) -> None:
        self._sending_first(super().set_trial_system_attr, *args, **kwargs)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state == TrialState.RUNNING:  # Optuna reads the trial first, under the lock
            return super().set_trial_state_values(trial_id, state, values)
        return self._sending_first(super().set_trial_state_values, trial_id, state, values)

    def _sending_first(self, write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._thread_lock.send_first(True)
        try:
            return write(*args, **kwargs)
        finally:
            self._thread_lock.send_first(False)  # were it to fail before entering the lock

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        if states != (TrialState.WAITING,):
            self._holds_call()  # for its fetch without the lock
            return super().get_all_trials(study_id, deepcopy, states)
        replay = self._replay_result
        assert isinstance(replay, _Replay)
        if self._holds_call():
            trials = replay.waiting_trials(study_id)  # without the lock, as get_trial
        else:
            with self._thread_lock:
                self._sync_with_backend()
                trials = replay.waiting_trials(study_id)
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trial(self, trial_id: int) -> FrozenTrial:
        if not self._holds_call():
            trial = super().get_trial(trial_id)
        else:
            trial = self._replay_result.get_trial(trial_id)
        held = held_reports()
        return _with_held(trial, trial_id, held) if held else trial

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        if not self._holds_call():
            return super().get_trial_id_from_study_id_trial_number(study_id, trial_number)
        ids = self._replay_result._study_id_to_trial_ids[study_id]  # Optuna's KeyError if none
        if len(ids) <= trial_number:
            raise KeyError(f"No trial with {trial_number=} exists in study with {study_id=}.")
        return ids[trial_number]

    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        # Optuna calls it with the lock held, or entered without it (``_StorageLock``): not held
        # while the log travels (module docstring). The worker is the calling thread, as
        # Optuna's (the replay's ``worker_id`` is another thread's while that one applies logs).
        # Reports held for this write go in the same append, before it (``_held_reports``).
        held = held_reports() or []
        logs = [*held, self._log(op_code, extra_fields)]
        held.clear()
        if not self._thread_lock.take_skipped():
            self._thread_lock.release()
        try:
            self._backend.append_logs(logs)
        finally:
            self._thread_lock.acquire()

    def _log(self, op_code: int, fields: dict[str, Any]) -> dict[str, Any]:
        """A log as Optuna writes it, by the calling thread."""
        worker = f"{self._worker_id_prefix}{threading.get_ident()}"
        return {"op_code": op_code, "worker_id": worker, **fields}

    def _sync_with_backend(self) -> None:
        super()._sync_with_backend()
        # Only once every log read is applied: Optuna counts a log read before applying it.
        self._replayed = self._replay_result.log_number_read
        replay = self._replay_result
        error = replay.take_error() if isinstance(replay, _Replay) else None  # not yet adopted
        if error is not None:
            raise error

    def _holds_call(self) -> bool:
        """Whether the replay holds what this call must see; if not, what it lacks is fetched
        first, without the lock (``fetch_for_call``), for the sync that follows."""
        backend = self._backend
        assert isinstance(backend, PostgresJournalBackend)
        if backend.holds_call(self._replayed):
            return True
        backend.fetch_for_call(self._replay_result.log_number_read)
        return backend.holds_call(self._replayed)

    def _adopt(self) -> None:
        self._thread_lock = _StorageLock(self._thread_lock)  # no other thread has it yet
        backend = self._backend
        assert isinstance(backend, PostgresJournalBackend)
        self._replay_result = _Replay.adopt(self._replay_result, backend.snapshot_due)
        self._replayed = self._replay_result.log_number_read


def _with_held(trial: FrozenTrial, trial_id: int, held: list[dict[str, Any]]) -> FrozenTrial:
    """``trial`` (``trial_id``) as it will be once the reports this thread holds for it are
    written."""
    steps = {log["step"]: log["intermediate_value"] for log in held if log["trial_id"] == trial_id}
    if not steps:
        return trial
    seen = copy.copy(trial)
    seen.intermediate_values = {**trial.intermediate_values, **steps}
    return seen
