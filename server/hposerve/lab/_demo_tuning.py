"""The demo's tuning run: trainer processes tune the digits MLP through one server.

The main process starts a server on the embedded default storage (unless given ``target``),
creates a TPE study with a median pruner through the thin client, and spawns trainer
processes. Each trainer asks the service for hyperparameters one at a time (define-by-run,
with conditional parameters), reports the validation loss after every epoch and stops when the
server says the trial should be pruned. Meanwhile the main process polls the study and prints a
line per finished trial, then the best trial and how many were pruned.
"""

from __future__ import annotations

import functools
import math
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from hposerve.client import Client, FrozenTrial, Study
from hposerve.lab._processes import run_trainers, server_target
from hposerve.lab._report_runs import state_name

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_TRIALS", "DEFAULT_WORKERS", "DemoResult", "run_demo"]

# Defaults sized for about 1-1.5 minutes on 2 cores: enough trials for TPE to improve visibly,
# enough epochs that median pruning (which stops most trials at epoch 3 or soon after) saves
# most of the training time.
DEFAULT_WORKERS = 2
DEFAULT_TRIALS = 150
DEFAULT_EPOCHS = 40

# With nothing finishing for this long, a status line shows that work is still going on.
_QUIET_SECONDS = 10.0
_PRUNER_STARTUP_TRIALS = 5  # no pruning until this many trials have finished
_PRUNER_WARMUP_STEPS = 3  # epochs 0..2 are never pruned: early losses say little


@dataclass(frozen=True)
class DemoResult:
    """What a demo run found.

    Attributes:
        study_name: The study the run created (unique per run).
        best_value: Lowest final validation loss, or None if no trial completed.
        best_params: Parameters of the best trial (empty if none completed).
        best_number: Number of the best trial, or None.
        n_complete: Trials that ran all epochs.
        n_pruned: Trials the median pruner stopped early.
        n_failed: Trials that failed (training diverged, or the objective raised). A trial
            whose trainer process died stays running on the server until its lease expires,
            so it is in none of the three counts.
        elapsed: Wall-clock seconds of the whole run, server start to stop included.
        worker_exit_codes: Exit code of each trainer process (0 when it finished its share).
    """

    study_name: str
    best_value: float | None
    best_params: dict[str, Any]
    best_number: int | None
    n_complete: int
    n_pruned: int
    n_failed: int
    elapsed: float
    worker_exit_codes: list[int | None] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every trainer finished cleanly and at least one trial completed."""
        return self.best_value is not None and all(c == 0 for c in self.worker_exit_codes)


def _shares(trials: int, workers: int) -> list[int]:
    """Splits ``trials`` over ``workers`` as evenly as possible, dropping empty shares."""
    base, extra = divmod(trials, workers)
    return [n for n in (base + (i < extra) for i in range(workers)) if n > 0]


def _trainer(target: str, study_name: str, n_trials: int, epochs: int, seed: int) -> None:
    """Body of one trainer process: runs ``n_trials`` trials of the MLP objective."""
    import torch

    from hposerve.lab._mlp_digits import objective

    # One thread: on 2 cores, several trainers with a thread pool each only fight over the
    # cores (and the server's sampler runs on the same machine).
    torch.set_num_threads(1)
    with Client(target) as client:
        study = client.get_study(study_name)
        study.optimize(
            functools.partial(objective, epochs=epochs, seed=seed),
            n_trials=n_trials,
            # A diverged configuration fails its trial; the trainer goes on with the next.
            catch=(FloatingPointError,),
        )


def _counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    counts = dict.fromkeys(("complete", "pruned", "failed", "running", "waiting"), 0)
    for t in trials:
        state = state_name(t)  # FrozenTrial.state is a TrialState, not its name
        counts[state] = counts.get(state, 0) + 1
    return counts


def _best(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The complete trial with the lowest value (computed here: no RPC, no error if none)."""
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None


def _finish_order(trial: FrozenTrial) -> tuple[float, int]:
    done = trial.datetime_complete
    return (done.timestamp() if done is not None else math.inf, trial.number)


def _format_params(params: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


class _Progress:
    """Prints a line per newly finished trial, and a status line when things are quiet.

    Each line shows the state as of that trial (trials finished so far and the best among
    them), so a poll that finds several finished trials still prints a consistent history.
    """

    _FINISHED = ("complete", "pruned", "failed")

    def __init__(self, out: TextIO, total: int, started: float) -> None:
        self._out = out
        self._total = total
        self._started = started
        self._finished: dict[int, FrozenTrial] = {}
        self._last_line = time.monotonic()

    def _print(self, text: str) -> None:
        print(f"[{time.monotonic() - self._started:6.1f}s] {text}", file=self._out, flush=True)
        self._last_line = time.monotonic()

    def _status(self, running: int) -> str:
        counts = _counts(list(self._finished.values()))
        status = (
            f"{len(self._finished)}/{self._total} done, {running} running, "
            f"{counts['pruned']} pruned, {counts['failed']} failed"
        )
        best = _best(list(self._finished.values()))
        if best is not None:
            status += f" | best {best.value:.4f} (#{best.number})"
        return status

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        running = _counts(trials)["running"]
        new = [
            t for t in trials if state_name(t) in self._FINISHED and t.number not in self._finished
        ]
        new.sort(key=_finish_order)
        for t in new:
            self._finished[t.number] = t
            if t.state == "complete":
                what = f"complete  loss {t.value:.4f}"
            elif t.state == "pruned":
                what = f"pruned    after epoch {t.last_step}"
            else:
                what = "failed"
            self._print(f"trial {t.number:3d} {what:<28} | {self._status(running)}")
        if time.monotonic() - self._last_line >= _QUIET_SECONDS:
            self._print(f"... {self._status(running)}")


def run_demo(
    *,
    workers: int = DEFAULT_WORKERS,
    trials: int = DEFAULT_TRIALS,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    target: str | None = None,
    out: TextIO = sys.stdout,
) -> DemoResult:
    """Tunes the digits MLP with ``workers`` trainer processes through an hposerve server.

    Args:
        workers: Trainer processes (each one torch thread).
        trials: Trials in total, split evenly over the trainers.
        epochs: Training epochs per trial (the pruner's steps).
        seed: Seeds the TPE sampler and the training of every trial. With more than one
            trainer the order of asks varies, so results are not bit-for-bit reproducible.
        data_dir: Directory of the embedded server's storage; None for the server's default.
            Ignored with ``target``.
        target: ``host:port`` of a running server to use instead of starting one.
        out: Where progress and the summary go.

    Returns:
        The best trial and the counts of complete, pruned and failed trials.

    Raises:
        ValueError: If ``workers``, ``trials`` or ``epochs`` is below 1.
        hposerve.client.HposerveError: If the server cannot be reached or refuses the study.
    """
    for name, value in (("workers", workers), ("trials", trials), ("epochs", epochs)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    started = time.monotonic()
    # A fresh study per run, so that re-running on the same data directory starts over.
    study_name = f"demo-mlp-digits-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    with server_target(target, data_dir) as (target, embedded), Client(target) as client:
        study = _create_study(client, study_name, seed)
        where = "embedded server" if embedded else "server"
        print(
            f"hposerve demo: study {study_name!r} on {where} {target}\n"
            f"  task: PyTorch MLP on sklearn digits, {epochs} epochs/trial; "
            f"TPE (seed {seed}) + median pruning\n"
            f"  {trials} trials over {workers} trainer processes "
            f"(starting them takes a few seconds)",
            file=out,
            flush=True,
        )
        progress = _Progress(out, trials, started)
        codes = run_trainers(
            _trainer,
            [(target, study_name, n, epochs, seed) for n in _shares(trials, workers)],
            name="hposerve-demo-trainer",
            poll=lambda _running: progress.update(study.trials),
        )
        final = study.trials
        progress.update(final)
    result = _result(study_name, final, time.monotonic() - started, codes)
    _print_summary(result, out)
    return result


def _create_study(client: Client, name: str, seed: int) -> Study:
    return client.create_study(
        name=name,
        direction="minimize",
        sampler={"type": "tpe", "seed": seed},
        pruner={
            "type": "median",
            "n_startup_trials": _PRUNER_STARTUP_TRIALS,
            "n_warmup_steps": _PRUNER_WARMUP_STEPS,
        },
        load_if_exists=True,
    )


def _result(
    study_name: str, trials: Sequence[FrozenTrial], elapsed: float, codes: list[int | None]
) -> DemoResult:
    counts = _counts(trials)
    best = _best(trials)
    return DemoResult(
        study_name=study_name,
        best_value=best.value if best is not None else None,
        best_params=dict(best.params) if best is not None else {},
        best_number=best.number if best is not None else None,
        n_complete=counts["complete"],
        n_pruned=counts["pruned"],
        n_failed=counts["failed"],
        elapsed=elapsed,
        worker_exit_codes=codes,
    )


def _print_summary(result: DemoResult, out: TextIO) -> None:
    total = result.n_complete + result.n_pruned + result.n_failed
    lines = [
        f"\nfinished in {result.elapsed:.1f}s: {total} trials, {result.n_complete} complete, "
        f"{result.n_pruned} pruned, {result.n_failed} failed"
    ]
    if result.best_value is not None:
        lines.append(f"best trial #{result.best_number}: validation loss {result.best_value:.4f}")
        lines.append(f"  {_format_params(result.best_params)}")
    else:
        lines.append("no trial completed")
    bad = [(i, c) for i, c in enumerate(result.worker_exit_codes) if c != 0]
    for i, code in bad:
        lines.append(f"trainer {i} exited with code {code} (see its output above)")
    print("\n".join(lines), file=out, flush=True)
