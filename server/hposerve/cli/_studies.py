"""``hposerve studies list|show|trials|best|export``: look at a server's studies without code.

Built on the client: ``--target`` names the server, ``--namespace`` the namespace, and the
token (when the server has auth on) comes from ``HPOSERVE_TOKEN``, as the client reads it.
Every command prints ``--format table`` (for people), ``csv`` or ``json`` (for tools).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["add_arguments", "main"]

DEFAULT_TARGET = os.environ.get("HPOSERVE_TARGET", "127.0.0.1:50051")
FORMATS = ("table", "csv", "json")
_TRIAL_COLUMNS = ("number", "state", "values", "params", "datetime_start", "datetime_complete")


def _client(args: argparse.Namespace) -> Any:
    from hposerve.client import Client, ClientConfig

    return Client(args.target, config=ClientConfig(namespace=args.namespace, timeout=args.timeout))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return getattr(value, "name", None) or str(value)


def _cell(value: Any) -> str:
    value = _jsonable(value)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Rows as a table, CSV or JSON (a list of objects)."""
    if fmt == "json":
        return json.dumps([_jsonable({c: row.get(c) for c in columns}) for row in rows], indent=2)
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return out.getvalue().rstrip("\n")
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _summary_row(summary: Any) -> dict[str, Any]:
    best = summary.best_trial
    return {
        "name": summary.name,
        "directions": [d.name for d in summary.directions],
        "trials": summary.n_trials,
        "complete": summary.n_complete_trials,
        "sampler": summary.sampler or "default",
        "pruner": summary.pruner or "default",
        "best_value": best.values if best is not None else None,
        "created": summary.datetime_start,
    }


def _trial_row(trial: Any) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": trial.values,
        "params": trial.params,
        "user_attrs": trial.user_attrs,
        "intermediate_values": trial.intermediate_values,
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }


def _list(args: argparse.Namespace, client: Any) -> tuple[list[dict[str, Any]], Sequence[str]]:
    rows = [_summary_row(s) for s in client.get_all_study_summaries(include_best_trial=True)]
    return rows, ("name", "directions", "trials", "complete", "sampler", "pruner", "best_value")


def _show(args: argparse.Namespace, client: Any) -> tuple[list[dict[str, Any]], Sequence[str]]:
    wanted = client.get_study(args.study).resource_name  # NotFound, as the server says it
    summaries = client.get_all_study_summaries(include_best_trial=True)
    (summary,) = [s for s in summaries if s.resource_name == wanted]
    row = _summary_row(summary)
    row["resource_name"] = summary.resource_name
    row["user_attrs"] = summary.user_attrs
    columns = ("name", "resource_name", "directions", "trials", "complete", "sampler", "pruner")
    return [row], (*columns, "best_value", "created", "user_attrs")


def _trials(args: argparse.Namespace, client: Any) -> tuple[list[dict[str, Any]], Sequence[str]]:
    study = client.get_study(args.study)
    trials = study.get_trials(states=args.state or None)
    if args.limit:
        trials = trials[-args.limit :]
    return [_trial_row(t) for t in trials], _TRIAL_COLUMNS


def _best(args: argparse.Namespace, client: Any) -> tuple[list[dict[str, Any]], Sequence[str]]:
    study = client.get_study(args.study)
    trials = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    return [_trial_row(t) for t in trials], ("number", "values", "params", "datetime_complete")


def _export(args: argparse.Namespace, client: Any) -> tuple[list[dict[str, Any]], Sequence[str]]:
    study = client.get_study(args.study)
    trials = study.get_trials()
    if args.format == "json":
        columns = (*_TRIAL_COLUMNS, "user_attrs", "intermediate_values")
        return [_trial_row(t) for t in trials], columns
    # CSV and table: one column per parameter and objective, like Optuna's trials_dataframe.
    names = sorted({p for t in trials for p in t.params})
    objectives = max((len(t.values or ()) for t in trials), default=1)
    rows = []
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        for i in range(objectives):
            row["value" if objectives == 1 else f"values_{i}"] = (
                t.values[i] if t.values and i < len(t.values) else None
            )
        row.update({f"params_{p}": t.params.get(p) for p in names})
        row["datetime_start"], row["datetime_complete"] = t.datetime_start, t.datetime_complete
        rows.append(row)
    return rows, list(rows[0]) if rows else ["number", "state"]


_COMMANDS = {
    "list": (_list, "the studies of the namespace, with their best values"),
    "show": (_show, "one study: its directions, sampler, pruner, counts and best value"),
    "trials": (_trials, "a study's trials: state, values, parameters, times"),
    "best": (_best, "a study's best trial (its Pareto front when multi-objective)"),
    "export": (_export, "every trial of a study, one column per parameter (CSV) or all of it"),
}


def main(args: argparse.Namespace) -> int:
    """Runs one ``studies`` command; errors are printed as the server said them."""
    from hposerve.client import HposerveError

    run, _ = _COMMANDS[args.studies_command]
    try:
        with _client(args) as client:
            rows, columns = run(args, client)
    except (HposerveError, ValueError) as e:
        print(f"hposerve studies {args.studies_command}: {e}", file=sys.stderr)
        return 1
    text = render(rows, columns, args.format)
    if getattr(args, "out", None):
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``studies`` subcommands to its parser."""
    commands = parser.add_subparsers(dest="studies_command", required=True)
    for name, (_, help_text) in _COMMANDS.items():
        sub = commands.add_parser(
            name, help=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        sub.add_argument(
            "--target", default=DEFAULT_TARGET, help="the server, HOST:PORT (HPOSERVE_TARGET)"
        )
        sub.add_argument(
            "--namespace",
            default=os.environ.get("HPOSERVE_NAMESPACE", "default"),
            help="the namespace of the studies (HPOSERVE_NAMESPACE); the token, when the "
            "server has auth on, is read from HPOSERVE_TOKEN",
        )
        sub.add_argument("--format", choices=FORMATS, default="table", help="output format")
        sub.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
        if name != "list":
            sub.add_argument("study", help="the study's name (short, or its resource name)")
        if name == "trials":
            sub.add_argument(
                "--state",
                action="append",
                choices=("running", "waiting", "complete", "pruned", "fail"),
                help="only trials in this state (repeat for several); default: all",
            )
            sub.add_argument("--limit", type=int, default=0, help="only the last N trials; 0: all")
        if name == "export":
            sub.add_argument("--out", default=None, help="write to this file; default: stdout")
        sub.set_defaults(run=main)
