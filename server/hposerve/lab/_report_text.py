"""The report in words: the plain-text table the CLI prints, and report.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hposerve.lab._report_scores_text import md_scores

__all__ = ["report_md", "summary_table"]


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _fmt_p(p: float | None) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _median_key(results: dict[str, Any]) -> str:
    return f"median_{results['metric']}"


def _cell(arm: dict[str, Any], key: str, j: int) -> str:
    median = arm[key][j]
    if median is None:
        return "-"
    lo, hi = arm["iqr"][j]
    text = f"{_fmt(median)} [{_fmt(lo)}, {_fmt(hi)}]"
    # Say when fewer seeds than the arm has contributed (a partial comparison).
    if arm["n"][j] < arm["seeds"]:
        text += f" n={arm['n'][j]}"
    return text


def _done(arm: dict[str, Any], budget: int) -> str:
    done = arm["trials_done"]
    if not done:
        return f"0/{budget}"
    lo, hi = min(done), max(done)
    return f"{lo}/{budget}" if lo == hi else f"{lo}-{hi}/{budget}"


def _last(values: list[Any] | None) -> Any:
    return values[-1] if values is not None else None


def _test_note(results: dict[str, Any]) -> str:
    """What the p column means, or why it is empty: no test could be run at the last budget."""
    arms, baseline = results["arms"], results["baseline"]
    # Say why the baseline is that arm when it is not random search, the usual reference.
    where = "" if baseline == "random" else f"; baseline {baseline}: {results['baseline_reason']}"
    if any(_last(arm["p_vs_baseline"]) is not None for arm in arms.values()):
        return f"* p < {results['alpha']} (one-sided Mann-Whitney U against {baseline}){where}"
    if len(arms) == 1:
        return f"no test: {baseline} is the only arm"
    seeds = ", ".join(f"{name} {arm['n'][-1]}" for name, arm in arms.items())
    return (
        f"no test against {baseline} at {results['budgets'][-1]} trials: it needs "
        f"{results['min_seeds_for_test']} seeds with a value on each side (seeds with a value: "
        f"{seeds}){where}"
    )


def summary_table(results: dict[str, Any]) -> str:
    """A plain-text table of the results, for the CLI.

    One row per arm: seeds, finished trials per seed (of the largest budget), the median
    metric at each budget with its IQR in brackets (and ``n=`` when not every seed has got that
    far), the mean rank, the p-value against the baseline at the largest budget (``*`` when
    significant) and the sampler's milliseconds per trial. A last line names the baseline and
    explains the p column, or says why no test could be run.

    Args:
        results: What ``build_results`` returned (or results.json, loaded).

    Returns:
        The table, lines joined by newlines, without a trailing newline.
    """
    budgets = results["budgets"]
    key = _median_key(results)
    metric = results["metric"]
    header = ["arm", "seeds", "trials done"]
    header += [f"{metric}@{b} [IQR]" for b in budgets]
    header += [f"score@{budgets[-1]}", "mean rank", f"p vs {results['baseline']}@{budgets[-1]}"]
    header.append("sampler ms/trial")
    rows = [header]
    for name, arm in results["arms"].items():
        p, sig = _last(arm["p_vs_baseline"]), _last(arm["significant"])
        rows.append(
            [name, str(arm["seeds"]), _done(arm, budgets[-1])]
            + [_cell(arm, key, j) for j in range(len(budgets))]
            + [
                _fmt(_last(arm.get("normalized_score")), ".3f"),
                _fmt(arm["mean_rank"], ".2f"),
                _fmt_p(p) + ("*" if sig else ""),
                _fmt(arm["sample_ms_per_trial"], ".2f"),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    # Arm names left-aligned, numbers right-aligned.
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    title = f"{results['task']} ({results['direction']}, metric: {metric})"
    if results["partial"]:
        title += " - partial: some runs have not reached the largest budget"
    return "\n".join([title, *lines, _test_note(results)])


# -- report.md ---------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_setup(results: dict[str, Any]) -> list[str]:
    arms, optimum, metric = results["arms"], results["optimum"], results["metric"]
    lines = [f"# Comparison report: {results['task']}", ""]
    if results["partial"]:
        lines += [
            "> **Partial comparison.** Some runs have not reached the largest budget yet; "
            "values at a budget use only the seeds that got there (`n=` says how many), and the "
            "numbers will change as the comparison finishes.",
            "",
        ]
    what = (
        "regret (distance of the best value so far from the optimum)"
        if metric == "regret"
        else "best value so far"
    )
    return lines + [
        "## Setup",
        "",
        f"- Task: `{results['task']}`",
        f"- Direction: {results['direction']}",
        f"- Optimum: {'unknown' if optimum is None else f'{optimum:.6g}'}",
        f"- Metric: {what}",
        "- Arms: " + ", ".join(f"`{a}` ({arms[a]['seeds']} seeds)" for a in arms),
        f"- Budgets (trials): {', '.join(str(b) for b in results['budgets'])}",
        f"- Baseline: `{results['baseline']}`, {results['baseline_reason']}",
        f"- Generated: {results['generated_at']}",
        "",
        "Pruned and failed trials use up budget but give no value. Running trials are not "
        "counted until they finish.",
        "",
    ]


def _md_medians(results: dict[str, Any]) -> list[str]:
    budgets, key, arms = results["budgets"], _median_key(results), results["arms"]
    lines = [f"## Median {results['metric']} [IQR] by budget", ""]
    header = ["Arm", "Seeds", "Trials done"] + [f"{b} trials" for b in budgets] + ["Mean rank"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, arm in arms.items():
        cells = [f"`{_md_escape(name)}`", str(arm["seeds"]), _done(arm, budgets[-1])]
        cells += [_cell(arm, key, j) for j in range(len(budgets))]
        cells.append(_fmt(arm["mean_rank"], ".2f"))
        lines.append("| " + " | ".join(cells) + " |")
    rank_note = {
        "per_seed": "each seed's arms ranked against each other at each budget (1 = best, ties "
        "averaged), then averaged over seeds and budgets",
        "median": "arms' medians ranked at each budget (1 = best, ties averaged; the arms do "
        "not share the same seeds), then averaged over budgets",
        None: "no budget had a value for every arm yet",
    }[results["rank_method"]]
    return lines + ["", f"Mean rank: {rank_note}.", ""]


def _md_verdict(name: str, arm: dict[str, Any], results: dict[str, Any]) -> str:
    baseline, budgets = results["baseline"], results["budgets"]
    base = results["arms"][baseline]
    p, sig = arm["p_vs_baseline"][-1], arm["significant"][-1]
    at = f"at {budgets[-1]} trials"
    if p is None:
        return (
            f"- `{name}`: cannot be tested {at} yet: too few seeds have got there "
            f"({arm['n'][-1]} vs {base['n'][-1]}; a test needs {results['min_seeds_for_test']} "
            "on each side)."
        )
    if sig:
        return f"- `{name}` beats `{baseline}` significantly {at} (p = {p:.3g})."
    return f"- `{name}` does not beat `{baseline}` significantly {at} (p = {p:.3g})."


def _md_tests(results: dict[str, Any]) -> list[str]:
    baseline, arms, budgets = results["baseline"], results["arms"], results["budgets"]
    lines = [
        f"## Against `{baseline}`",
        "",
        f"The baseline is `{baseline}`: {results['baseline_reason']}.",
        "",
    ]
    others = {name: arm for name, arm in arms.items() if name != baseline}
    if not others:
        return lines + ["It is the only arm: there is nothing to test against it.", ""]
    lines += [
        f"One-sided Mann-Whitney U test per budget: is the arm's {results['metric']} lower "
        f"(better) than `{baseline}`'s? Needs {results['min_seeds_for_test']} seeds with a "
        "value on each side. Each budget is tested on its own (no correction for testing "
        "several).",
        "",
        "| Arm | Budget | Seeds (arm / baseline) | p | Significant at 0.05? |",
        "|---|---|---|---|---|",
    ]
    base = arms[baseline]
    for name, arm in others.items():
        for j, budget in enumerate(budgets):
            p, sig = arm["p_vs_baseline"][j], arm["significant"][j]
            answer = "-" if sig is None else ("yes" if sig else "no")
            lines.append(
                f"| `{_md_escape(name)}` | {budget} | {arm['n'][j]} / {base['n'][j]} "
                f"| {_fmt_p(p)} | {answer} |"
            )
    verdicts = [_md_verdict(name, arm, results) for name, arm in others.items()]
    return lines + ["", *verdicts, ""]


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


def _md_costs(results: dict[str, Any]) -> list[str]:
    arms = results["arms"]
    lines = ["## Sampler time", "", "| Arm | Sampler ms per trial |", "|---|---|"]
    for name, arm in arms.items():
        lines.append(f"| `{_md_escape(name)}` | {_fmt(arm['sample_ms_per_trial'], '.2f')} |")
    lines.append("")
    stepped = {a: arm for a, arm in arms.items() if arm["total_steps"] is not None}
    if not stepped:
        return lines
    lines += [
        "## Training steps",
        "",
        "A trial uses `last_step + 1` training steps; arms whose trials reported no "
        "intermediate values are left out.",
        "",
        "| Arm | Pruned trials (median) | Total steps (median) | Steps to best (median) |",
        "|---|---|---|---|",
    ]
    for name, arm in stepped.items():
        to_best = [s for s in arm["steps_to_best"] if s is not None]
        lines.append(
            f"| `{_md_escape(name)}` | {_fmt(_median(arm['pruned_trials']), '.3g')} "
            f"| {_fmt(_median(arm['total_steps']), '.6g')} "
            f"| {_fmt(_median(to_best), '.6g')} |"
        )
    return lines + [""]


def report_md(results: dict[str, Any], images: Sequence[str], captions: dict[str, str]) -> str:
    """report.md: setup, medians by budget, tests against the baseline, costs, the plots.

    Args:
        results: What ``build_results`` returned.
        images: File names of the plots written beside report.md.
        captions: A caption per image file name.
    """
    lines = _md_setup(results) + _md_medians(results) + _md_tests(results)
    lines += md_scores(results)
    lines += _md_costs(results) + ["## Curves", ""]
    for image in images:
        lines += [f"![{image}]({image})", "", captions.get(image, ""), ""]
    return "\n".join(lines).rstrip() + "\n"
