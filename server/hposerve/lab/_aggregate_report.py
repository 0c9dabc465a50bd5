"""The aggregate report's files: aggregate.json, aggregate.md and its plots, and a CLI table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hposerve.lab._aggregate_plots import plot_cd, plot_ecdf, plot_scores

__all__ = ["aggregate_table", "write_aggregate_report"]


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _score_cell(score: dict[str, Any], j: int) -> str:
    ci = score["ci"][j]
    if score["mean"][j] is None or ci is None:
        return "-"
    return f"{score['mean'][j]:.3f} [{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _friedman_line(ranks: dict[str, Any], what: str, alpha: float) -> str:
    test = ranks["friedman"]
    if test is None:
        return f"Friedman test over {what}: not computable (too few arms or blocks, or all tied)"
    verdict = "differ significantly" if test["p_value"] < alpha else "do not differ significantly"
    pairs = ", ".join(f"{a} vs {b}" for a, b in ranks["significant_pairs"]) or "none"
    return (
        f"Friedman test over {what} (N = {ranks['blocks']}): chi2 = {test['statistic']:.3f}, "
        f"p = {test['p_value']:.3g}: the arms' ranks {verdict} at {alpha}; Nemenyi CD = "
        f"{_fmt(ranks['cd'], '.3f')}; pairs differing by at least CD: {pairs}"
    )


def aggregate_table(summary: dict[str, Any]) -> str:
    """A plain-text table of the aggregate: score at the final budget with its CI, mean ranks
    with tasks and with runs as blocks, the fraction of targets reached; then the tests."""
    arms, final = summary["arms"], len(summary["budgets"]) - 1
    header = [
        "arm",
        f"score@{summary['budgets'][-1]} [{summary['confidence']:.0%} CI]",
        "rank (tasks)",
        "rank (runs)",
        "targets reached",
    ]
    rows = [header]
    for arm in arms:
        reached = summary["reached_fraction"][arm]
        mean_reached = sum(r for r in reached if r is not None) / len(reached) if reached else None
        rows.append(
            [
                arm,
                _score_cell(summary["normalized_score"][arm], final),
                _fmt(summary["ranks"]["task"]["mean"].get(arm), ".2f"),
                _fmt(summary["ranks"]["run"]["mean"].get(arm), ".2f"),
                _fmt(mean_reached, ".0%"),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    title = f"{len(summary['tasks'])} tasks: {', '.join(summary['tasks'])}"
    tests = [
        _friedman_line(summary["ranks"]["task"], "tasks", summary["alpha"]),
        _friedman_line(summary["ranks"]["run"], "(task, seed) runs", summary["alpha"]),
    ]
    return "\n".join([title, *lines, *tests])


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def _md_intro(summary: dict[str, Any]) -> list[str]:
    arms, tasks = summary["arms"], summary["tasks"]
    best_seen = [t for t, kind in summary["references"].items() if kind == "best_seen"]
    lines = [
        f"# Suite report: {len(tasks)} tasks, {len(arms)} arms",
        "",
        "Tasks: " + ", ".join(f"[`{t}`]({t}/report.md)" for t in tasks) + ".",
        "",
        "Normalized score (bayesmark): a run's best-so-far gap to the task's optimum divided by "
        "the median gap of random search at the same budget; 0 is the optimum, 1 is random, "
        "lower is better. Per task the mean over seeds, then the mean over tasks, with a "
        f"{summary['confidence']:.0%} bootstrap interval (seeds resampled within each task).",
        "",
    ]
    if best_seen:
        lines += [
            "Tasks without a known optimum are scored against the best value any arm saw: "
            + ", ".join(f"`{t}`" for t in best_seen)
            + ".",
            "",
        ]
    return lines


def _md_scores(summary: dict[str, Any]) -> list[str]:
    arms, budgets, tasks = summary["arms"], summary["budgets"], summary["tasks"]
    lines = ["## Normalized score", ""]
    rows = [
        [f"`{a}`"] + [_score_cell(summary["normalized_score"][a], j) for j in range(len(budgets))]
        for a in arms
    ]
    lines += _md_table(["Arm"] + [f"{b} trials" for b in budgets], rows)
    per_task = [
        [f"`{t}`"] + [_fmt(summary["normalized_score"][a]["per_task"][t][-1]) for a in arms]
        for t in tasks
    ]
    lines += [f"Per task, at {budgets[-1]} trials:", ""]
    return lines + _md_table(["Task", *(f"`{a}`" for a in arms)], per_task)


def _md_ranks(summary: dict[str, Any]) -> list[str]:
    arms = summary["arms"]
    lines = ["## Ranks", ""]
    ranks = summary["ranks"]
    rows = [
        [
            f"`{a}`",
            _fmt(ranks["task"]["mean"].get(a), ".2f"),
            _fmt(ranks["run"]["mean"].get(a), ".2f"),
        ]
        for a in arms
    ]
    lines += _md_table(["Arm", "Mean rank (blocks: tasks)", "Mean rank (blocks: runs)"], rows)
    lines += [
        "- " + _friedman_line(ranks["task"], "tasks", summary["alpha"]),
        "- " + _friedman_line(ranks["run"], "(task, seed) runs", summary["alpha"]),
        "",
        "## Win rates",
        "",
        "Fraction of (task, seed) pairs where the row arm ends better than the column arm "
        "(ties count half).",
        "",
    ]
    rates = summary["win_rates"]
    lines += _md_table(
        ["", *(f"`{a}`" for a in arms)],
        [[f"`{r}`"] + [_fmt(rates[r][c], ".2f") for c in arms] for r in arms],
    )
    lines += [
        "## Evaluations to target",
        "",
        "Fraction of (task, seed) runs that reached each target (a target closes that fraction "
        "of the gap between random's median first value and the optimum).",
        "",
    ]
    fractions = summary["target_fractions"]
    rows = [[f"`{a}`"] + [_fmt(r, ".0%") for r in summary["reached_fraction"][a]] for a in arms]
    return lines + _md_table(["Arm", *(f"{f:g}" for f in fractions)], rows)


def _md(summary: dict[str, Any], images: list[str]) -> str:
    lines = _md_intro(summary) + _md_scores(summary) + _md_ranks(summary)
    lines += ["## Plots", ""] + [f"![{image}]({image})\n" for image in images]
    return "\n".join(lines).rstrip() + "\n"


def write_aggregate_report(summary: dict[str, Any], out_dir: Path) -> list[Path]:
    """Writes aggregate.json, aggregate.md, scores.png, cd.png and ecdf.png into ``out_dir``.

    Returns:
        The paths written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "aggregate.json"
    json_path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    plots = {"scores.png": plot_scores, "cd.png": plot_cd, "ecdf.png": plot_ecdf}
    for name, plot in plots.items():
        plot(summary, out_dir / name)
    md_path = out_dir / "aggregate.md"
    md_path.write_text(_md(summary, list(plots)))
    return [md_path, json_path, *(out_dir / name for name in plots)]
