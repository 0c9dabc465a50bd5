"""What ``optuna.Study`` has beyond ask and tell: attributes, metric names, added trials,
``trials_dataframe``, ``to_optuna``, the sampler and pruner, pickling.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from hposerve.v1 import study_service_pb2 as pb

from ._analysis import DATAFRAME_ATTRS, from_optuna_trial
from ._distributions import distribution_to_proto, to_json_value, value_from_proto, value_to_proto
from ._enums import StudyDirection, state_to_proto
from ._study_results import StudyResults
from ._trial import FrozenTrial, user_attrs_json

if TYPE_CHECKING:
    import optuna

    from ._heartbeat import Heartbeat
    from ._transport import Transport


def _timestamp(proto: pb.Trial, field: str, value: Any) -> None:
    if value is not None:
        # Optuna's times are naive local ones; astimezone() reads them so.
        getattr(proto, field).FromDatetime(value.astimezone())


def trial_to_proto(trial: Any) -> pb.Trial:
    """A trial to add (ours, or Optuna's ``FrozenTrial``) as the proto ``AddTrials`` takes."""
    if not isinstance(trial, FrozenTrial):
        trial = from_optuna_trial(trial)
    proto = pb.Trial(
        state=state_to_proto(trial.state),
        values=trial.values or (),
        params=[
            pb.Parameter(
                name=name,
                value=value_to_proto(trial.params[name]),
                distribution=distribution_to_proto(distribution),
            )
            for name, distribution in trial.distributions.items()
        ],
        intermediate_values=[
            pb.IntermediateValue(step=step, value=value)
            for step, value in sorted(trial.intermediate_values.items())
        ],
        user_attrs_json=user_attrs_json(trial.user_attrs),
        system_attrs_json=json.dumps(to_json_value(trial.system_attrs)),
    )
    _timestamp(proto, "start_time", trial.datetime_start)
    _timestamp(proto, "complete_time", trial.datetime_complete)
    return proto


def _spec_dict(spec: Any) -> dict[str, Any]:
    kind = spec.WhichOneof("kind")
    if kind is None:
        return {}
    args = json_format.MessageToDict(getattr(spec, kind), preserving_proto_field_name=True)
    if kind == "grid":
        args["search_space"] = {
            axis.name: [value_from_proto(v) for v in axis.values] for axis in spec.grid.search_space
        }
    if kind == "patient" and spec.patient.HasField("wrapped_pruner"):
        args["wrapped_pruner"] = _spec_dict(spec.patient.wrapped_pruner)
    return {"type": kind, **args}


class StudyCompat(StudyResults):
    """The rest of ``optuna.Study``'s API, mixed into :class:`~hposerve.client.Study`."""

    _transport: Transport
    _heartbeat: Heartbeat
    _proto: pb.Study
    _constraints_func: Any
    resource_name: str
    directions: list[StudyDirection]

    @property
    def study_name(self) -> str:
        raise NotImplementedError

    # Attributes and metric names (stored by the server where Optuna stores them).

    def _attributes(self, request: pb.UpdateStudyAttributesRequest | None = None) -> Any:
        if request is None:
            return self._transport.call(
                "GetStudyAttributes", pb.GetStudyAttributesRequest(name=self.resource_name)
            )
        return self._transport.call("UpdateStudyAttributes", request)

    @property
    def user_attrs(self) -> dict[str, Any]:
        """The study's user attributes (their JSON types kept), read from the server."""
        attrs: dict[str, Any] = json.loads(self._attributes().user_attrs_json or "{}")
        return attrs

    def set_user_attr(self, key: str, value: Any) -> None:
        """Sets a user attribute of the study (any JSON-like value)."""
        self._attributes(
            pb.UpdateStudyAttributesRequest(
                name=self.resource_name, user_attrs_json=user_attrs_json({key: value})
            )
        )

    @property
    def metric_names(self) -> list[str] | None:
        """The objectives' names, or None if never set."""
        return list(self._attributes().metric_names) or None

    def set_metric_names(self, metric_names: list[str]) -> None:
        """Names the objectives (one name each), as Optuna's ``set_metric_names``.

        Raises:
            ValueError: Not one name per objective.
        """
        if len(metric_names) != len(self.directions):
            raise ValueError("The number of objectives must match the length of the metric names.")
        self._attributes(
            pb.UpdateStudyAttributesRequest(name=self.resource_name, metric_names=metric_names)
        )

    def _is_multi_objective(self) -> bool:
        return len(self.directions) > 1

    # The sampler and the pruner, as the specs the server runs.

    @property
    def sampler(self) -> dict[str, Any]:
        """The server's sampler as its dict spec, e.g. ``{"type": "tpe", "seed": 0}``
        (``{}``: the server's default, TPE). The sampler object lives on the server."""
        return _spec_dict(self._proto.sampler)

    @property
    def pruner(self) -> dict[str, Any]:
        """The server's pruner as its dict spec (``{}``: the default, median or none)."""
        return _spec_dict(self._proto.pruner)

    # Trials with known outcomes.

    def add_trial(self, trial: Any) -> None:
        """Adds a finished (or waiting) trial, as ``optuna.Study.add_trial``.

        Args:
            trial: Ours or Optuna's ``FrozenTrial`` (``optuna.trial.create_trial(...)``).

        Raises:
            InvalidArgument: A running trial, or one Optuna would refuse.
        """
        self.add_trials([trial])

    def add_trials(self, trials: Iterable[Any]) -> None:
        """Adds trials in one round trip, all or none, as ``optuna.Study.add_trials``."""
        request = pb.AddTrialsRequest(
            parent=self.resource_name, trials=[trial_to_proto(t) for t in trials]
        )
        self._transport.call("AddTrials", request)

    # Analysis.

    def trials_dataframe(
        self, attrs: tuple[str, ...] = DATAFRAME_ATTRS, multi_index: bool = False
    ) -> Any:
        """The trials as a pandas DataFrame with Optuna's columns (needs pandas).

        Args:
            attrs: FrozenTrial attributes to show, as in Optuna.
            multi_index: Two-level columns (``("params", "x")``) instead of ``params_x``.
        """
        from ._analysis import trials_dataframe

        return trials_dataframe(
            self.get_trials(),
            n_objectives=len(self.directions),
            metric_names=self.metric_names,
            attrs=attrs,
            multi_index=multi_index,
        )

    def to_optuna(self) -> optuna.Study:
        """A real in-memory ``optuna.Study`` holding a copy of this study's trials (needs optuna).

        Directions, metric names, user attributes and every trial (state, parameters and
        distributions, values, intermediate values, attributes, times) are copied, so
        ``optuna.visualization``, ``optuna.importance``, the terminator and optuna-dashboard
        work on it. It is a snapshot: later trials on the server are not in it.
        """
        from ._analysis import to_optuna

        attributes = self._attributes()
        return to_optuna(
            study_name=self.study_name,
            directions=self.directions,
            trials=self.get_trials(),
            user_attrs=json.loads(attributes.user_attrs_json or "{}"),
            metric_names=list(attributes.metric_names) or None,
        )

    # Pickling: by target, study and settings (see _pickling).

    def __getstate__(self) -> dict[str, Any]:
        from ._pickling import origin_of

        return {
            "origin": origin_of(self._transport),
            "proto": self._proto.SerializeToString(),
            "constraints_func": self._constraints_func,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        from ._pickling import client_for

        client = client_for(state["origin"])
        init: Any = type(self).__init__  # Study's
        init(
            self,
            client._transport,
            client._heartbeat,
            pb.Study.FromString(state["proto"]),
            constraints_func=state["constraints_func"],
        )
