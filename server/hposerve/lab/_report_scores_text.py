"""report.md's score sections: normalized score, evaluations to target, win rates."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["md_scores"]


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _reference_note(results: dict[str, Any]) -> str:
    if results["reference_kind"] == "optimum":
        return "the task's optimum"
    reference = results["reference"]
    value = "-" if reference is None else f"{reference:.6g}"
    return (
        f"the best value any arm saw ({value}): the task's optimum is unknown, so scores are "
        "relative to this comparison"
    )


def _md_normalized(results: dict[str, Any]) -> list[str]:
    budgets, normalizer = results["budgets"], results["normalizer"]
    lines = [
        "## Normalized score",
        "",
        f"Bayesmark's score: each run's best-so-far gap to the reference, divided by the median "
        f"gap of `{normalizer}` at the same budget, averaged over seeds: 0 is the reference, 1 "
        f"is `{normalizer}`'s median, lower is better. Reference: {_reference_note(results)}.",
        "",
        "| Arm | " + " | ".join(f"{b} trials" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for name, arm in results["arms"].items():
        lines.append(f"| `{name}` | " + " | ".join(_fmt(s) for s in arm["normalized_score"]) + " |")
    return [*lines, ""]


def _runtime_cell(runtimes: list[int | None], reached: float | None) -> str:
    hits = [r for r in runtimes if r is not None]
    median = f"{np.median(hits):.3g}" if hits else "-"
    return f"{median} ({_fmt(reached, '.0%')})"


def _md_targets(results: dict[str, Any]) -> list[str]:
    fractions = results["target_fractions"]
    lines = [
        "## Evaluations to target",
        "",
        "COCO's runtime: the trials a run needs until its gap to the reference is at most the "
        f"target. A target closes a fraction of the gap between `{results['normalizer']}`'s "
        "median first value and the reference. Each cell: the median over the seeds that "
        "reached it (the fraction of seeds that did).",
        "",
        "| Arm | "
        + " | ".join(
            f"{f:.0%} (gap {_fmt(g)})"
            for f, g in zip(fractions, results["target_gaps"], strict=True)
        )
        + " |",
        "|---|" + "---|" * len(fractions),
    ]
    for name, arm in results["arms"].items():
        cells = [
            _runtime_cell([r[i] for r in arm["evals_to_target"]], arm["reached_fraction"][i])
            for i in range(len(fractions))
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _md_wins(results: dict[str, Any]) -> list[str]:
    rates, names = results["win_rates"], list(results["arms"])
    lines = [
        "## Win rates",
        "",
        f"The fraction of seeds where the row arm's best after {results['budgets'][-1]} trials "
        "is better than the column arm's (ties count half).",
        "",
        "| | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for row in names:
        lines.append(
            f"| `{row}` | " + " | ".join(_fmt(rates[row][col], ".2f") for col in names) + " |"
        )
    return [*lines, ""]


def md_scores(results: dict[str, Any]) -> list[str]:
    """The report.md sections on normalized score, evaluations to target and win rates."""
    return _md_normalized(results) + _md_targets(results) + _md_wins(results)
