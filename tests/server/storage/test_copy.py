"""hposerve storage copy: every study moves between two storages, verified equal; a non-empty
destination is refused; a difference fails loudly."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_support import POSTGRES_URL, connect

from hposerve.cli._storage import opened
from hposerve.client import Client, FloatDistribution
from hposerve.server import make_server
from hposerve.server.storage._copy import CopyMismatch, compare_storages, copy_storage

REDIS_URL = os.environ.get("HPOSERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SPACE = {"x": FloatDistribution(0.0, 1.0)}


@contextlib.contextmanager
def pg_url(layout: str) -> Iterator[str]:
    """A PostgreSQL storage URL on a fresh schema of its own, in ``layout``."""
    schema = f"hposerve_test_copy_{uuid.uuid4().hex[:10]}"
    with connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    query = (
        f"hposerve_schema={schema}"
        if layout == "journal"
        else f"hposerve_backend=rdb&options=-csearch_path%3D{schema}"
    )
    try:
        yield f"{POSTGRES_URL}?{query}"
    finally:
        with connect() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """An empty Redis database (of 8..15), flushed afterwards."""
    import redis

    base = REDIS_URL.rsplit("/", 1)[0]
    for db in range(8, 16):
        client = redis.Redis.from_url(f"{base}/{db}")
        if client.dbsize() == 0:
            try:
                yield f"{base}/{db}"
            finally:
                client.flushdb()
                client.close()
            return
        client.close()
    pytest.skip("no empty Redis database among 8..15")


KINDS: dict[str, Callable[[Path], Any]] = {
    "embedded": lambda tmp: contextlib.nullcontext(str(tmp / f"data-{uuid.uuid4().hex[:6]}")),
    "journal-file": lambda tmp: contextlib.nullcontext(f"journal://{tmp}/{uuid.uuid4().hex}.log"),
    "sqlite": lambda tmp: contextlib.nullcontext(f"sqlite:///{tmp}/{uuid.uuid4().hex}.db"),
    "pg-journal": lambda tmp: pg_url("journal"),
    "pg-rdb": lambda tmp: pg_url("rdb"),
    "redis": lambda tmp: redis_url(),
}
MARKS = {"pg-journal": pytest.mark.postgres, "pg-rdb": pytest.mark.postgres}
MARKS["redis"] = pytest.mark.redis
PAIRS = [
    ("embedded", "sqlite"),
    ("sqlite", "journal-file"),
    ("journal-file", "embedded"),
    ("embedded", "pg-journal"),
    ("pg-journal", "pg-rdb"),
    ("pg-rdb", "embedded"),
    ("embedded", "redis"),
    ("redis", "pg-journal"),
]


def _pair(src: str, dst: str) -> Any:
    marks = [MARKS[k] for k in (src, dst) if k in MARKS]
    return pytest.param(src, dst, id=f"{src}-to-{dst}", marks=marks)


def fill(spec: str) -> list[Any]:
    """Two studies written through a real server on ``spec``; returns what they hold."""
    kwargs = {"storage": spec} if "://" in spec else {"data_dir": spec}
    srv = make_server("127.0.0.1:0", **kwargs).start()
    try:
        with Client(f"127.0.0.1:{srv.port}") as client:
            study = client.create_study(
                name="copied",
                sampler={"type": "random", "seed": 1},
                pruner={"type": "median"},
                lease_seconds=90,
            )
            study.set_user_attr("owner", "vision")
            for i in range(4):
                trial = study.ask()
                trial.suggest_float("x", 0.0, 1.0)
                trial.suggest_categorical("act", ["relu", "gelu"])
                trial.report(1.0 / (i + 1), 0)
                trial.set_user_attr("i", i)
                study.tell(trial, float(i))
            study.tell(study.ask(SPACE), state="pruned")
            study.tell(study.ask(SPACE), state="failed")
            study.ask(SPACE)  # left running, with its lease
            study.enqueue_trial({"x": 0.5})
            multi = client.create_study(name="multi", directions=["minimize", "maximize"])
            multi.tell(multi.ask(SPACE), [1.0, 2.0])
            return [
                (t.number, t.state, t.values, t.params, t.intermediate_values, t.user_attrs)
                for s in (study, multi)
                for t in s.trials
            ]
    finally:
        srv.stop(grace=1)


@pytest.mark.parametrize(("src", "dst"), [_pair(s, d) for s, d in PAIRS])
def test_copy_moves_every_study_and_they_compare_equal(tmp_path: Path, src: str, dst: str):
    with KINDS[src](tmp_path) as src_spec, KINDS[dst](tmp_path) as dst_spec:
        before = fill(src_spec)
        result = subprocess.run(
            [sys.executable, "-m", "hposerve.cli", "storage", "copy", src_spec, dst_spec],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "copied 2 studies, 9 trials; DST equals SRC" in result.stdout
        assert "trial" in result.stderr  # the progress bar
        with opened(src_spec) as a, opened(dst_spec) as b:
            assert compare_storages(a, b) == []
        # A server on the copy serves the same studies, configuration included.
        kwargs = {"storage": dst_spec} if "://" in dst_spec else {"data_dir": dst_spec}
        srv = make_server("127.0.0.1:0", **kwargs).start()
        try:
            with Client(f"127.0.0.1:{srv.port}") as client:
                study = client.get_study("copied")
                assert study.proto.sampler.random.seed == 1
                assert study.lease_seconds == 90
                assert study.user_attrs == {"owner": "vision"}
                after = [
                    (t.number, t.state, t.values, t.params, t.intermediate_values, t.user_attrs)
                    for s in (study, client.get_study("multi"))
                    for t in s.trials
                ]
                assert after == before
                # The copy goes on where the source stopped: the enqueued trial comes next.
                assert study.ask(SPACE).params == {"x": 0.5}
        finally:
            srv.stop(grace=1)


def test_a_non_empty_destination_is_refused_unless_allowed(tmp_path: Path):
    src, dst = str(tmp_path / "src"), f"sqlite:///{tmp_path}/dst.db"
    fill(src)
    with opened(src) as a, opened(dst) as b:
        copy_storage(a, b)
    command = [sys.executable, "-m", "hposerve.cli", "storage", "copy", "--quiet", src, dst]
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1
    assert "already holds" in again.stderr
    # Allowed into a non-empty one, a clash of names is still refused, writing nothing.
    other = subprocess.run(
        [*command[:5], "--allow-non-empty", *command[5:]], capture_output=True, text=True
    )
    assert other.returncode == 1 and "already holds" in other.stderr
    with opened(dst) as b:
        assert sorted(s.study_name for s in b.get_all_studies()) == [
            "default/copied",
            "default/multi",
        ]
    # Into another storage holding unrelated studies, allowed, the copy goes through.
    third = str(tmp_path / "third")
    with opened(third) as c:
        from optuna.study import StudyDirection

        c.create_new_study([StudyDirection.MINIMIZE], "default/unrelated")
    refused = subprocess.run([*command[:6], src, third], capture_output=True, text=True)
    assert refused.returncode == 1 and "is not empty" in refused.stderr
    allowed = subprocess.run(
        [*command[:5], "--allow-non-empty", src, third], capture_output=True, text=True
    )
    assert allowed.returncode == 0, allowed.stderr


def test_compare_fails_loudly_on_a_difference(tmp_path: Path):
    src, dst = str(tmp_path / "src"), f"sqlite:///{tmp_path}/dst.db"
    fill(src)
    with opened(src) as a, opened(dst) as b:
        copy_storage(a, b)
        study_id = b.get_study_id_from_name("default/copied")
        b.set_study_user_attr(study_id, "owner", "audio")
        running = next(t for t in b.get_all_trials(study_id) if t.state.name == "RUNNING")
        b.set_trial_user_attr(running._trial_id, "i", 99)
        differences = compare_storages(a, b)
    assert differences == [
        "default/copied: user attributes differ: {'owner': 'vision'} != {'owner': 'audio'}",
        "default/copied: trial 6: user attributes differ: {} != {'i': 99}",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "hposerve.cli", "storage", "compare", src, dst],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "trial 6: user attributes differ" in result.stdout
    assert str(CopyMismatch(differences)).startswith("2 differences:")
