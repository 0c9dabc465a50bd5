"""Sampler and pruner specifications written as dicts, as proto messages.

``{"type": "tpe", "seed": 0}`` becomes ``SamplerSpec(tpe=TpeSampler(seed=0))``. The type is
matched loosely: case, ``_`` and ``-`` and a trailing ``sampler``/``pruner`` are ignored, so
``"TPESampler"``, ``"nsga-ii"`` and ``"SuccessiveHalvingPruner"`` work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from hposerve.v1 import specs_pb2

from ._distributions import value_to_proto
from ._errors import InvalidArgument

# Normalized type name -> field of the SamplerSpec / PrunerSpec oneof.
_SAMPLER_TYPES = {
    "tpe": "tpe",
    "random": "random",
    "grid": "grid",
    "cmaes": "cmaes",
    "cma": "cmaes",
    "gp": "gp",
    "qmc": "qmc",
    "nsga2": "nsga2",
    "nsgaii": "nsga2",
    "nsga3": "nsga3",
    "nsgaiii": "nsga3",
    "bruteforce": "bruteforce",
}
_PRUNER_TYPES = {
    "median": "median",
    "percentile": "percentile",
    "successivehalving": "successive_halving",
    "sha": "successive_halving",
    "hyperband": "hyperband",
    "threshold": "threshold",
    "patient": "patient",
    "wilcoxon": "wilcoxon",
    "none": "none",
    "nop": "none",
}


def sampler_spec(
    spec: Mapping[str, Any] | specs_pb2.SamplerSpec | None,
) -> specs_pb2.SamplerSpec | None:
    """Converts a sampler dict such as ``{"type": "tpe", "seed": 0}`` to a ``SamplerSpec``.

    A grid's ``search_space`` is a dict ``{name: [values]}``.

    Raises:
        InvalidArgument: Unknown type or argument, or an argument of the wrong type.
    """
    if spec is None or isinstance(spec, specs_pb2.SamplerSpec):
        return spec
    kind, args = _split(spec, _SAMPLER_TYPES, "sampler", "sampler")
    message = specs_pb2.SamplerSpec()
    grid_space = args.pop("search_space", None) if kind == "grid" else None
    _parse(args, getattr(message, kind), f"sampler.{kind}")
    getattr(message, kind).SetInParent()  # selects the kind even when no argument is set
    if grid_space is not None:
        message.grid.search_space.extend(_grid_axes(grid_space))
    return message


def pruner_spec(
    spec: Mapping[str, Any] | specs_pb2.PrunerSpec | None,
    *,
    path: str = "pruner",
) -> specs_pb2.PrunerSpec | None:
    """Converts a pruner dict such as ``{"type": "median", "n_warmup_steps": 2}`` to proto.

    A patient pruner's ``wrapped_pruner`` is itself a pruner dict (or spec).

    Raises:
        InvalidArgument: Unknown type or argument, or an argument of the wrong type.
    """
    if spec is None or isinstance(spec, specs_pb2.PrunerSpec):
        return spec
    kind, args = _split(spec, _PRUNER_TYPES, "pruner", path)
    message = specs_pb2.PrunerSpec()
    wrapped = args.pop("wrapped_pruner", None) if kind == "patient" else None
    _parse(args, getattr(message, kind), f"{path}.{kind}")
    getattr(message, kind).SetInParent()  # selects the kind even when no argument is set
    if wrapped is not None:
        inner = pruner_spec(wrapped, path=f"{path}.patient.wrapped_pruner")
        assert inner is not None
        message.patient.wrapped_pruner.CopyFrom(inner)
    return message


def _split(
    spec: Mapping[str, Any], types: dict[str, str], what: str, path: str
) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, Mapping):
        raise InvalidArgument(
            f"a {what} is a dict such as {{'type': ..., ...}} or a {what.capitalize()}Spec,"
            f" got {type(spec).__name__}"
        )
    args = dict(spec)
    raw_type = args.pop("type", None)
    known = ", ".join(sorted(set(types.values())))
    if not isinstance(raw_type, str):
        raise InvalidArgument(
            f"a {what} dict needs a 'type' (one of {known})",
            field_violations=[(f"{path}.type", "missing")],
        )
    key = raw_type.lower().replace("_", "").replace("-", "")
    key = key.removesuffix(what) or key
    kind = types.get(key)
    if kind is None:
        raise InvalidArgument(
            f"unknown {what} type {raw_type!r}; known types: {known}",
            field_violations=[(f"{path}.type", f"unknown {what} type {raw_type!r}")],
        )
    return kind, args


def _parse(args: dict[str, Any], message: Message, path: str) -> None:
    fields = message.DESCRIPTOR.fields_by_name
    unknown = sorted(name for name in args if name not in fields)
    if unknown:
        kind = path.rsplit(".", 1)[-1]
        raise InvalidArgument(
            f"unknown argument(s) {', '.join(unknown)} for {kind}; known: "
            + ", ".join(sorted(fields)),
            field_violations=[(f"{path}.{name}", "unknown argument") for name in unknown],
        )
    try:
        json_format.ParseDict(args, message)
    except json_format.ParseError as error:
        raise InvalidArgument(f"bad {path} argument: {error}") from None


def _grid_axes(search_space: Any) -> list[specs_pb2.GridAxis]:
    if not isinstance(search_space, Mapping):
        raise InvalidArgument(
            "a grid's search_space is a dict {name: [values]}",
            field_violations=[("sampler.grid.search_space", "not a dict")],
        )
    axes = []
    for name, values in search_space.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise InvalidArgument(
                f"grid axis {name!r} needs a list of values, got {values!r}",
                field_violations=[(f"sampler.grid.search_space.{name}", "not a list")],
            )
        axes.append(specs_pb2.GridAxis(name=str(name), values=[value_to_proto(v) for v in values]))
    return axes
