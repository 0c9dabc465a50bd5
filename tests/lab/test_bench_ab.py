"""The A/B driver (hposerve.lab._bench_ab) end to end at a toy size: it alternates the two
checkouts, runs each from its own tree, and prints the medians and their ratios."""

from __future__ import annotations

import pathlib

import pytest

from hposerve.lab import _bench_ab

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_two_checkouts_alternate_and_their_medians_are_compared(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [str(ROOT), str(ROOT), "--storage", "embedded", "--pairs", "1", "--seconds", "1"]
    argv += ["--processes", "1", "--threads", "2", "--tpe-studies", "0"]
    runs = _bench_ab.main(argv)
    assert [len(runs["old"]), len(runs["new"])] == [1, 1]
    assert all(r["concurrent_trials_per_s"] > 0 for side in runs.values() for r in side)
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[:2]] == ["old", "new"]  # alternated, old first
    assert out[-1].startswith("new/old  concurrent_trials_per_s ")


def test_a_path_that_is_no_checkout_is_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SystemExit, match="not a checkout of hposerve"):
        _bench_ab.main([str(tmp_path), str(ROOT), "--pairs", "1"])
