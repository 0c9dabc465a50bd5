"""Results for analysis code: ``trials_dataframe`` (pandas) and ``to_optuna`` (a real study).

pandas and Optuna are imported here, when these are called, never by the thin client itself.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._distributions import CategoricalDistribution, Distribution, FloatDistribution
from ._frozen_trial import FrozenTrial

if TYPE_CHECKING:
    import optuna

DATAFRAME_ATTRS = (
    "number",
    "value",
    "datetime_start",
    "datetime_complete",
    "duration",
    "params",
    "user_attrs",
    "system_attrs",
    "state",
)


def trials_dataframe(
    trials: Sequence[FrozenTrial],
    *,
    n_objectives: int,
    metric_names: list[str] | None,
    attrs: tuple[str, ...],
    multi_index: bool,
) -> Any:
    """The trials as Optuna's ``Study.trials_dataframe`` makes them (same columns and order).

    Raises:
        ImportError: pandas is not installed.
    """
    try:
        import pandas as pd
    except ImportError as error:
        raise ImportError("trials_dataframe needs pandas: pip install pandas") from error
    if not trials:
        return pd.DataFrame()
    if "value" in attrs and n_objectives > 1:
        attrs = tuple("values" if attr == "value" else attr for attr in attrs)
    records, columns = _records(trials, n_objectives, metric_names, attrs)
    df = pd.DataFrame(records, columns=pd.MultiIndex.from_tuples(columns))
    if not multi_index:
        df.columns = ["_".join(str(c) for c in col if c) for col in columns]
    return df


def _records(
    trials: Sequence[FrozenTrial],
    n_objectives: int,
    metric_names: list[str] | None,
    attrs: tuple[str, ...],
) -> tuple[list[dict[tuple[str, Any], Any]], list[tuple[str, Any]]]:
    # Written after optuna.study._dataframe, so that the columns are Optuna's.
    columns_of = {attr: attr.removeprefix("_") for attr in attrs}
    agg: collections.defaultdict[str, set[tuple[str, Any]]] = collections.defaultdict(set)
    records = []
    for trial in trials:
        record: dict[tuple[str, Any], Any] = {}

        def put(
            attr: str, key: tuple[str, Any], value: Any, record: dict[Any, Any] = record
        ) -> None:
            record[key] = value
            agg[attr].add(key)

        for attr, column in columns_of.items():
            value = getattr(trial, attr)
            if isinstance(value, enum.Enum):
                value = value.name
            if isinstance(value, dict):
                for nested, nested_value in value.items():
                    put(attr, (column, nested), nested_value)
            elif attr == "values":
                told = [None] * n_objectives if value is None else value
                named = (
                    enumerate(told)
                    if metric_names is None
                    else zip(metric_names, told, strict=False)
                )
                for nested, nested_value in named:
                    put(attr, (column, nested), nested_value)
            elif isinstance(value, list):
                for i, nested_value in enumerate(value):
                    put(attr, (column, i), nested_value)
            elif attr == "value":
                put(attr, (column, "" if metric_names is None else metric_names[0]), value)
            else:
                put(attr, (column, ""), value)
        records.append(record)
    columns: list[tuple[str, Any]] = []
    for attr in attrs:
        if attr not in agg:
            continue
        if attr == "values" and metric_names is not None:
            columns.extend((columns_of[attr], name) for name in metric_names)
        else:
            columns.extend(sorted(agg[attr]))
    return records, columns


def optuna_distribution(distribution: Distribution) -> Any:
    """Our distribution as Optuna's."""
    from optuna import distributions as d

    if isinstance(distribution, CategoricalDistribution):
        return d.CategoricalDistribution(distribution.choices)
    if isinstance(distribution, FloatDistribution):
        return d.FloatDistribution(
            distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    return d.IntDistribution(
        distribution.low, distribution.high, log=distribution.log, step=distribution.step
    )


def optuna_trial(trial: Any) -> optuna.trial.FrozenTrial:
    """A trial (ours) as Optuna's ``FrozenTrial``, times and attributes included."""
    import optuna

    params = {n: v for n, v in trial.params.items() if n in trial.distributions}
    frozen = optuna.trial.create_trial(
        state=optuna.trial.TrialState(int(trial.state)),
        values=list(trial.values) if trial.values is not None else None,
        params=params,
        distributions={n: optuna_distribution(d) for n, d in trial.distributions.items()},
        user_attrs=dict(trial.user_attrs),
        system_attrs=dict(trial.system_attrs),
        intermediate_values=dict(trial.intermediate_values),
    )
    frozen.datetime_start = trial.datetime_start
    frozen.datetime_complete = trial.datetime_complete
    return frozen


def from_optuna_trial(trial: Any) -> FrozenTrial:
    """An Optuna ``FrozenTrial`` (e.g. from ``optuna.trial.create_trial``) as ours."""
    from ._distributions import distribution_from_proto, distribution_to_proto

    return FrozenTrial(
        number=getattr(trial, "number", 0),
        state=trial.state,
        values=list(trial.values) if trial.values is not None else None,
        params=dict(trial.params),
        distributions={
            n: distribution_from_proto(distribution_to_proto(d))
            for n, d in trial.distributions.items()
        },
        intermediate_values=dict(trial.intermediate_values),
        user_attrs=dict(trial.user_attrs),
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        system_attrs=dict(getattr(trial, "system_attrs", {}) or {}),
    )


def to_optuna(
    *,
    study_name: str,
    directions: Sequence[Any],
    trials: Sequence[FrozenTrial],
    user_attrs: dict[str, Any],
    metric_names: list[str] | None,
) -> optuna.Study:
    """A new in-memory ``optuna.Study`` holding these trials and attributes."""
    import optuna

    study = optuna.create_study(
        study_name=study_name, directions=[optuna.study.StudyDirection(int(d)) for d in directions]
    )
    for key, value in user_attrs.items():
        study.set_user_attr(key, value)
    if metric_names:
        study.set_metric_names(list(metric_names))
    study.add_trials([optuna_trial(t) for t in trials])
    return study
