"""kill -9 of a process mid-append loses nothing that the backend acknowledged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from optuna.storages import JournalStorage
from pg_support import POSTGRES_URL, journal_rows

from hposerve.server.storage._pg_journal import PostgresJournalBackend

pytestmark = pytest.mark.postgres

# Appends batches of 1-3 logs as fast as it can; prints each batch once append_logs returned.
_APPENDER = textwrap.dedent(
    """
    import json, random, sys, uuid
    from hposerve.server.storage._pg_journal import PostgresJournalBackend

    backend = PostgresJournalBackend(sys.argv[1], schema=sys.argv[2])
    run, rng, n = uuid.uuid4().hex[:8], random.Random(), 0
    while True:
        batch = [{"run": run, "n": n + k, "pad": "x" * rng.randint(0, 2000)}
                 for k in range(rng.randint(1, 3))]
        backend.append_logs(batch)
        n += len(batch)
        print(json.dumps([[log["run"], log["n"]] for log in batch]), flush=True)
    """
)


def _run_and_kill(schema: str, acks_before_kill: int) -> list[tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _APPENDER, POSTGRES_URL, schema],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acked: list[tuple[str, int]] = []
    try:
        for _ in range(acks_before_kill):
            line = proc.stdout.readline()
            assert line, "the appender died before it was killed"
            acked += [(run, n) for run, n in json.loads(line)]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        # Whatever it printed before it died was acknowledged too.
        rest, _ = proc.communicate(timeout=30)
    for line in rest.splitlines():
        if line.strip():
            acked += [(run, n) for run, n in json.loads(line)]
    assert proc.returncode == -signal.SIGKILL
    return acked


def test_kill_9_mid_append_loses_nothing_acknowledged(pg_schema: str) -> None:
    PostgresJournalBackend(POSTGRES_URL, schema=pg_schema).close()
    acked: list[tuple[str, int]] = []
    for attempt in range(4):
        acked += _run_and_kill(pg_schema, acks_before_kill=50 + 40 * attempt)

    rows = journal_rows(pg_schema)
    assert [seq for seq, _ in rows] == list(range(len(rows)))  # no hole left by a kill
    logged = [(log["run"], log["n"]) for log in map(json.loads, (text for _, text in rows))]
    assert len(logged) == len(set(logged))  # nothing written twice
    assert set(acked) <= set(logged)
    # Each run's logs are a prefix 0..k: a kill loses at most its unacknowledged tail.
    for run in {run for run, _ in logged}:
        numbers = [n for r, n in logged if r == run]
        assert numbers == list(range(len(numbers)))


def test_a_killed_writers_journal_replays(pg_schema: str) -> None:
    script = textwrap.dedent(
        """
        import sys, optuna
        from optuna.storages import JournalStorage
        from hposerve.server.storage._pg_journal import PostgresJournalBackend

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        storage = JournalStorage(PostgresJournalBackend(sys.argv[1], schema=sys.argv[2]))
        study = optuna.create_study(storage=storage, study_name="s", load_if_exists=True)
        while True:
            trial = study.ask()
            trial.suggest_float("x", 0, 1)
            study.tell(trial, 1.0)
            print(trial.number, flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, POSTGRES_URL, pg_schema], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    told = [int(proc.stdout.readline()) for _ in range(30)]
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    told += [int(line) for line in rest.split()]

    backend = PostgresJournalBackend(POSTGRES_URL, schema=pg_schema)
    try:
        storage = JournalStorage(backend)
        (study,) = storage.get_all_studies()
        trials = storage.get_all_trials(study._study_id)
        complete = {t.number for t in trials if t.state.is_finished()}
        assert set(told) <= complete
    finally:
        backend.close()
