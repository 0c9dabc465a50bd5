"""``hposerve demo`` end to end: real server, real trainer processes, a tiny budget."""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import pytest

from hposerve.client import Client
from hposerve.lab._demo import add_arguments, main
from hposerve.lab._demo_tuning import _shares, run_demo
from hposerve.server import make_server

EXPECTED_KEYS = {"lr", "batch_size", "weight_decay", "dropout", "n_layers", "n_units", "schedule"}


@pytest.mark.slow
def test_demo_on_an_embedded_server(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(workers=2, trials=4, epochs=2, data_dir=str(tmp_path), out=out)

    assert result.n_complete + result.n_pruned + result.n_failed == 4
    assert result.n_complete >= 1
    assert result.best_value is not None and math.isfinite(result.best_value)
    assert result.best_number is not None
    assert set(result.best_params) >= EXPECTED_KEYS
    assert result.worker_exit_codes == [0, 0]
    assert result.ok
    text = out.getvalue()
    assert text.count("\n[") >= 4  # a progress line per finished trial
    assert f"best trial #{result.best_number}" in text
    assert "pruned" in text


@pytest.mark.slow
def test_demo_against_a_running_server_through_main(tmp_path: Path) -> None:
    server = make_server("127.0.0.1:0", data_dir=tmp_path)
    server.start()
    try:
        target = f"127.0.0.1:{server.port}"
        args = argparse.Namespace(
            workers=1,
            trials=2,
            epochs=2,
            seed=3,
            data_dir=None,
            target=target,
            no_compare=True,
            out=None,
        )
        assert main(args) == 0
        with Client(target) as client:
            (study,) = [s for s in client.list_studies() if s.name.startswith("demo-mlp-digits")]
            assert study.n_trials == 2
            assert (study.sampler, study.pruner) == ("tpe", "median")
    finally:
        server.stop(grace=1)


def test_shares_split_trials_evenly() -> None:
    assert _shares(5, 2) == [3, 2]
    assert _shares(4, 2) == [2, 2]
    assert _shares(1, 3) == [1]  # no idle trainer processes


def test_arguments_and_their_validation() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--workers", "3", "--data-dir", "/tmp/x", "--target", "h:1"])
    assert (args.workers, args.data_dir, args.target, args.seed) == (3, "/tmp/x", "h:1", 0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--trials", "0"])


def test_bad_sizes_fail_before_starting_anything() -> None:
    with pytest.raises(ValueError, match="workers"):
        run_demo(workers=0, target="127.0.0.1:1")
