"""The lab, built on the client: built-in tasks, the comparison runner and its reports, the demo
and the bench. Installed with ``pip install "hposerve[lab]"``; the service never imports it.

The names below are imported on first use, so that ``import hposerve.lab`` (and the
``hposerve`` command) stays cheap: scipy and numpy load with the report, torch with a task.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hposerve.lab._aggregate import aggregate, aggregate_results
    from hposerve.lab._demo_tuning import DemoResult, run_demo
    from hposerve.lab._report import ArmRun, build_results, summary_table, write_report
    from hposerve.lab._runner import (
        CompareResult,
        arms_for,
        budgets_for,
        run_comparison,
        write_comparison_report,
    )
    from hposerve.lab._suite import SuiteResult, run_suite
    from hposerve.lab._tasks import Task, get_task, task_names

__all__ = [
    "ArmRun",
    "CompareResult",
    "DemoResult",
    "SuiteResult",
    "Task",
    "aggregate",
    "aggregate_results",
    "arms_for",
    "budgets_for",
    "build_results",
    "get_task",
    "run_comparison",
    "run_demo",
    "run_suite",
    "summary_table",
    "task_names",
    "write_comparison_report",
    "write_report",
]

# Public name -> the private module that defines it.
_HOMES = {
    "aggregate": "_aggregate",
    "aggregate_results": "_aggregate",
    "SuiteResult": "_suite",
    "run_suite": "_suite",
    "ArmRun": "_report",
    "build_results": "_report",
    "summary_table": "_report",
    "write_report": "_report",
    "CompareResult": "_runner",
    "arms_for": "_runner",
    "budgets_for": "_runner",
    "run_comparison": "_runner",
    "write_comparison_report": "_runner",
    "DemoResult": "_demo_tuning",
    "run_demo": "_demo_tuning",
    "Task": "_tasks",
    "get_task": "_tasks",
    "task_names": "_tasks",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
