"""The timers inside a server under the concurrent load (hposerve.lab._bench_ask_waits), end to
end at a toy size: they count the asks of the trainers' study and what those asks waited for."""

from __future__ import annotations

import pytest

from hposerve.lab import _bench_ask_waits


def test_the_asks_of_the_trainers_study_and_their_waits_are_timed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--storage", "embedded", "--seconds", "1", "--processes", "1", "--threads", "2"]
    totals = _bench_ask_waits.main(argv)
    asks, ask_wall, ask_cpu = totals["ask"]
    assert asks >= 5
    assert ask_cpu > 0 and ask_wall > 0
    # Every ask creates its trial under the storage's lock; the random sampler draws blind, so
    # only the first ask counts the trials (the others number it from a hint).
    created = totals["JournalStorage.create_new_trial"]
    assert created[0] == asks and created[1] <= ask_wall
    assert totals.get("trial_count", [0])[0] <= 1
    assert totals["storage lock, waiting"][0] >= asks
    # The TPE studies' asks are not counted: sampling there is TPE's, here the random sampler's.
    assert totals["sample_new"][0] == asks
    out = capsys.readouterr().out
    assert "asks of the trainers' study timed" in out and "concurrent_trials_per_s" in out
