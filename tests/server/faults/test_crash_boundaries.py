"""A crash at every journal line boundary of a session, then the client's retry of every call.

The session (``_session.CALLS``) runs once on the embedded journal; the journal's line
boundaries are where a kill -9 can cut it (each write is whole lines in one ``write(2)``). For
every boundary k, a copy of the journal cut after its first k lines is opened by a new server,
every call of the session is retried with its request id, and then:

* a call whose records were all written before the cut answers exactly as it did (the same
  trials, with the same sampled values; the same study and comparison definitions);
* a call cut short or never made answers the same shape (its parameters are sampled afresh);
* the storage ends exactly as after the uncut session: no trial created twice, no enqueued
  trial twice, every study with its full configuration, every comparison whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hposerve.server import make_server
from hposerve.server.storage._open import JOURNAL_FILE

from ._session import CALLS, Stubs, identity, snapshot


def _run(data: Path, answered: int = 0) -> tuple[list[Any], list[int], dict[str, Any]]:
    """The session's answers, the journal's size after each call, and the final storage.

    Of the first ``answered`` calls, those a client makes again only until answered are
    skipped (None).
    """
    server = make_server("127.0.0.1:0", data_dir=data).start()
    stubs = Stubs(f"127.0.0.1:{server.port}")
    try:
        answers, ends = [], []
        for i, call in enumerate(CALLS):
            skip = i < answered and not call.retried_when_answered
            answers.append(None if skip else stubs.call(call))
            ends.append((data / JOURNAL_FILE).stat().st_size)
        return answers, ends, snapshot(stubs)
    finally:
        stubs.close()
        server.stop(grace=0)


def _boundaries(journal: Path) -> list[int]:
    data = journal.read_bytes()
    return [0] + [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any], list[int], Any]:
    data = tmp_path_factory.mktemp("reference")
    answers, ends, final = _run(data)
    refused = [
        (c.rpc, a) for c, a in zip(CALLS, answers, strict=True) if not hasattr(a, "ListFields")
    ]
    assert refused == [], "the session must succeed uncut"
    return data / JOURNAL_FILE, answers, ends, final


def test_the_session_writes_every_kind_of_record(reference: Any) -> None:
    journal, _, ends, _ = reference
    # Enough boundaries to cut inside each call that writes several records.
    assert len(_boundaries(journal)) > len(CALLS) + 10
    assert ends == sorted(ends)


def test_a_crash_at_any_line_then_the_retries_change_nothing_twice(
    reference: Any, tmp_path: Path
) -> None:
    journal, answers, ends, final = reference
    failures: list[str] = []
    for k, cut in enumerate(_boundaries(journal)):
        data = tmp_path / f"cut-{k}"
        data.mkdir()
        with journal.open("rb") as src, (data / JOURNAL_FILE).open("wb") as dst:
            dst.write(src.read(cut))
        answered = sum(end <= cut for end in ends)  # every record of these was written
        retried, _, after = _run(data, answered)
        for i, (call, first, again) in enumerate(zip(CALLS, answers, retried, strict=True)):
            whole = i < answered
            if again is None:
                continue
            want = identity(call, first, values=whole)
            got = identity(call, again, values=whole)
            if want != got:
                failures.append(f"cut after line {k}: call {i} {call.rpc}: {got} != {want}")
        if after != final:
            failures.append(f"cut after line {k}: storage {after} != {final}")
        shutil.rmtree(data)
    assert failures == []
