"""The bench's workload: one trial of a 5-parameter space, 5 reports and a tell, timed.

The same per-trial work runs on an Optuna study in-process and through the service.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    "N_REPORTS",
    "Sizes",
    "ms",
    "objective_value",
    "optimize_figures",
    "optuna_space",
    "optuna_trials",
    "quantile",
    "round_trips_per_trial",
    "service_trials",
]

N_REPORTS = 5


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each case runs."""

    growth_trials: int  # RandomSampler trials on one study; also gives random_ms_per_trial
    growth_window: int  # per-trial time of the last window over the first
    baseline_trials: int  # in-process InMemory and SQLite
    proxy_trials: int  # Optuna's GrpcStorageProxy
    tpe_window: tuple[int, int]  # TPE trials measured: [start, end)
    concurrent_seconds: float
    concurrent_processes: int = 4
    concurrent_threads: int = 8  # per process: 32 trainers
    tpe_background_studies: int = 2


# -- the workload --------------------------------------------------------------------------


def optuna_space() -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    return {
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
        "dropout": FloatDistribution(0.0, 0.5),
        "layers": IntDistribution(1, 8),
        "activation": CategoricalDistribution(["relu", "gelu", "tanh", "silu", "elu", "selu"]),
    }


def objective_value(params: dict[str, Any], step: int) -> float:
    """A cheap deterministic loss, so that samplers and pruners have something to work on."""
    return (
        (math.log10(params["lr"]) + 3) ** 2
        + params["dropout"]
        + 0.1 * params["layers"]
        + (1.0 / (step + 1))
    )


def _timed_trials(study: Any, n: int, *, should_prune: bool) -> list[float]:
    space = optuna_space()  # the client takes Optuna's distributions as they are
    times = []
    for _ in range(n):
        start = time.perf_counter()
        trial = study.ask(space)
        for step in range(N_REPORTS):
            trial.report(objective_value(trial.params, step), step)
            if should_prune:
                trial.should_prune()
        study.tell(trial, objective_value(trial.params, N_REPORTS))
        times.append(time.perf_counter() - start)
    return times


def optuna_trials(study: Any, n: int) -> list[float]:
    """Runs ``n`` trials of the workload on an Optuna study; returns seconds per trial."""
    return _timed_trials(study, n, should_prune=True)


def service_trials(study: Any, n: int) -> list[float]:
    """Runs ``n`` trials of the workload through the service; returns seconds per trial.

    The service's report answers the pruning decision itself: no should-prune call.
    """
    return _timed_trials(study, n, should_prune=False)


def round_trips_per_trial(study: Any, n: int) -> float:
    """Runs ``n`` trials of the workload through the service; returns the calls per trial that
    waited for an answer (round trips: a report on a study that never prunes needs none)."""
    transport = study._transport
    before = transport.round_trips
    service_trials(study, n)
    return (transport.round_trips - before) / n


def optimize_figures(client: Any, n: int) -> dict[str, float]:
    """The workload's ``n`` trials through ``study.optimize`` on a random study that never
    prunes (each tell carries the next ask): ms and round trips per trial."""
    study = client.create_study(
        name="bench-optimize", sampler={"type": "random", "seed": 0}, pruner={"type": "none"}
    )

    def objective(trial: Any) -> float:
        for step in range(N_REPORTS):
            trial.report(objective_value(trial.params, step), step)
        return objective_value(trial.params, N_REPORTS)

    # As Optuna's own logging is set to WARNING for the bench: at INFO, optimize logs each
    # trial with the study's best (a call of its own).
    client_log = logging.getLogger("hposerve.client")
    level = client_log.level
    client_log.setLevel(logging.WARNING)
    try:
        before, start = study._transport.round_trips, time.perf_counter()
        study.optimize(objective, n_trials=n, search_space=optuna_space())
    finally:
        client_log.setLevel(level)
    return {
        "optimize_ms_per_trial": (time.perf_counter() - start) / n * 1e3,
        "optimize_round_trips_per_trial": (study._transport.round_trips - before) / n,
    }


def ms(seconds: Sequence[float]) -> float:
    """The mean of ``seconds``, in milliseconds."""
    return statistics.fmean(seconds) * 1e3


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values (the nearest rank below)."""
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
