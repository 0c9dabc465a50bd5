"""The aggregate's plots: normalized score by budget, critical-difference diagrams, ECDFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hposerve.lab._report_plots import pyplot

__all__ = ["cliques", "plot_cd", "plot_ecdf", "plot_scores"]


def _colors(arms: list[str]) -> dict[str, str]:
    return {arm: f"C{i % 10}" for i, arm in enumerate(arms)}


def plot_scores(summary: dict[str, Any], path: Path) -> None:
    """scores.png: each arm's mean normalized score by budget, with its confidence band."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        budgets = summary["budgets"]
        for arm, color in _colors(summary["arms"]).items():
            score = summary["normalized_score"][arm]
            mean = np.array([np.nan if m is None else m for m in score["mean"]])
            ci = np.array([[np.nan, np.nan] if c is None else c for c in score["ci"]], dtype=float)
            ax.plot(budgets, mean, marker="o", color=color, label=arm)
            ax.fill_between(budgets, ci[:, 0], ci[:, 1], color=color, alpha=0.15, linewidth=0)
        ax.axhline(1.0, color="0.5", linestyle="--", linewidth=1)
        ax.axhline(0.0, color="0.5", linestyle=":", linewidth=1)
        ax.set_xlabel("trials")
        ax.set_ylabel("normalized score (0 = optimum, 1 = random)")
        level = f"{summary['confidence']:.0%}"
        ax.set_title(f"mean over {len(summary['tasks'])} tasks, {level} bootstrap CI")
        ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def cliques(ranks: list[float], cd: float) -> list[tuple[int, int]]:
    """Maximal runs ``(i, j)`` of ascending ``ranks`` spanning less than ``cd``: the groups a
    critical-difference diagram joins with a bar (no significant difference inside)."""
    out: list[tuple[int, int]] = []
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not (out and out[-1][1] >= j):
            out.append((i, j))
    return out


def _cd_panel(ax: Any, ranks: dict[str, Any], k: int, title: str) -> None:
    order = sorted(ranks["mean"].items(), key=lambda kv: kv[1])
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-(len(order) + 1) * 0.5, 1.6)
    ax.hlines(0, 1, k, color="k", linewidth=1)
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.1, color="k", linewidth=1)
        ax.text(r, 0.2, str(r), ha="center", fontsize="small")
    for n, (arm, rank) in enumerate(order):
        left = n < (len(order) + 1) // 2
        y = -0.5 * (n + 1 if left else len(order) - n)
        end = 0.6 if left else k + 0.4
        ax.plot([rank, rank, end], [0, y, y], color="k", linewidth=0.8)
        label = f"{arm} ({rank:.2f})"
        ax.text(end, y + 0.06, label, ha="left" if left else "right", fontsize="small")
    cd = ranks["cd"]
    if cd is not None:
        ax.plot([1, 1 + cd], [1.0, 1.0], color="k", linewidth=2)
        ax.text(1 + cd / 2, 1.15, f"CD = {cd:.2f}", ha="center", fontsize="small")
        for n, (i, j) in enumerate(cliques([r for _, r in order], cd)):
            y = -0.15 - 0.12 * n
            ax.plot([order[i][1] - 0.03, order[j][1] + 0.03], [y, y], color="C3", linewidth=3)
    test = ranks["friedman"]
    verdict = "-" if test is None else f"Friedman p = {test['p_value']:.3g}"
    ax.set_title(f"{title}, N = {ranks['blocks']}: {verdict}", fontsize="medium")
    ax.axis("off")


def plot_cd(summary: dict[str, Any], path: Path) -> None:
    """cd.png: Nemenyi critical-difference diagrams with tasks and with runs as blocks."""
    plt = pyplot()
    k = len(summary["arms"])
    fig, axes = plt.subplots(2, 1, figsize=(8, 2.2 + 0.9 * k))
    try:
        _cd_panel(axes[0], summary["ranks"]["task"], k, "blocks: tasks")
        _cd_panel(axes[1], summary["ranks"]["run"], k, "blocks: (task, seed) runs")
        fig.suptitle(
            "average rank at the final budget (1 = best); a red bar joins arms whose ranks\n"
            f"differ by less than the critical difference (Nemenyi, alpha {summary['alpha']})",
            fontsize="small",
        )
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def plot_ecdf(summary: dict[str, Any], path: Path) -> None:
    """ecdf.png: the fraction of (task, seed, target) triples reached within x evaluations."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        x = summary["ecdf"]["evaluations"]
        for arm, color in _colors(summary["arms"]).items():
            y = [np.nan if v is None else v for v in summary["ecdf"][arm]]
            ax.step(x, y, where="post", color=color, label=arm)
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel("evaluations (trials)")
        ax.set_ylabel("fraction of (task, seed, target) reached")
        fractions = ", ".join(f"{f:g}" for f in summary["target_fractions"])
        ax.set_title(
            f"runtime ECDF over {len(summary['tasks'])} tasks; targets close {fractions} "
            "of the gap",
            fontsize="medium",
        )
        ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
