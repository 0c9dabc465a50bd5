"""Sampler and pruner specs -> Optuna objects, validated.

Each ``*Sampler`` / ``*Pruner`` proto message mirrors the constructor of the Optuna class of the
same name, field for field. Only the fields a client set are passed on, so an unset field takes
Optuna's own default; a study served remotely then samples exactly as the same study would
in-process. Every input is checked here, before Optuna sees it, so that a bad spec becomes an
``InvalidArgument`` naming the field instead of a failure at the first ask.
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
from google.protobuf import struct_pb2, unknown_fields
from google.protobuf.message import Message
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import nsgaii

from hposerve.server.domain._exceptions import FailedPrecondition, InvalidArgument
from hposerve.v1 import specs_pb2, types_pb2

__all__ = [
    "PRUNER_NAMES",
    "SAMPLER_NAMES",
    "build_pruner",
    "build_sampler",
    "value_from_proto",
    "value_to_proto",
]

SAMPLER_NAMES: tuple[str, ...] = tuple(
    f.name for f in specs_pb2.SamplerSpec.DESCRIPTOR.oneofs_by_name["kind"].fields
)
PRUNER_NAMES: tuple[str, ...] = tuple(
    f.name for f in specs_pb2.PrunerSpec.DESCRIPTOR.oneofs_by_name["kind"].fields
)

GridValue = float | int | str | bool | None

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# --- Field checks: each returns what is wrong with a value, or None if it is fine. -----------

_Check = Callable[[Any], str | None]


def _at_least(low: int) -> _Check:
    return lambda v: None if v >= low else f"must be >= {low}, got {v}"


def _in_range(low: float, high: float) -> _Check:
    # Written so that NaN fails too.
    return lambda v: None if low <= v <= high else f"must be in [{low:g}, {high:g}], got {v}"


def _one_of(*choices: str) -> _Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}; got {v!r}"


def _positive_finite(v: float) -> str | None:
    return None if v > 0 and math.isfinite(v) else f"must be a finite number > 0, got {v}"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else f"must be >= 0, got {v}"


def _not_nan(v: float) -> str | None:
    return "must not be NaN" if math.isnan(v) else None


def _seed(v: int) -> str | None:
    # NumPy's RandomState, which every Optuna sampler seeds, takes 32-bit seeds only.
    return None if 0 <= v < 2**32 else f"must be in [0, 2**32), got {v}"


_PROBABILITY = _in_range(0.0, 1.0)

_CROSSOVERS: dict[str, Callable[[], nsgaii.BaseCrossover] | None] = {
    # None leaves the choice to Optuna, which builds UniformCrossover(swapping_prob) itself.
    "uniform": None,
    "blxalpha": nsgaii.BLXAlphaCrossover,
    "sbx": nsgaii.SBXCrossover,
    "vsbx": nsgaii.VSBXCrossover,
    "undx": nsgaii.UNDXCrossover,
    "spx": nsgaii.SPXCrossover,
}

_NSGA_CHECKS: dict[str, _Check] = {
    "seed": _seed,
    "population_size": _at_least(2),
    "mutation_prob": _PROBABILITY,
    "crossover": _one_of(*_CROSSOVERS),
    "crossover_prob": _PROBABILITY,
    "swapping_prob": _PROBABILITY,
}

# Scalar fields with a check, per sampler; every scalar field set is passed on, checked or not.
_SAMPLER_CHECKS: dict[str, dict[str, _Check]] = {
    "tpe": {
        "seed": _seed,
        "n_startup_trials": _at_least(0),
        "n_ei_candidates": _at_least(1),
        "prior_weight": _positive_finite,
    },
    "random": {"seed": _seed},
    "grid": {"seed": _seed},
    "cmaes": {
        "seed": _seed,
        "sigma0": _positive_finite,
        "n_startup_trials": _at_least(0),
        "restart_strategy": _one_of("ipop", "bipop"),
        # The cmaes library accepts 1 but then fails at the first ask.
        "popsize": _at_least(2),
        "inc_popsize": _at_least(1),
    },
    "gp": {"seed": _seed, "n_startup_trials": _at_least(0)},
    "qmc": {"seed": _seed, "qmc_type": _one_of("sobol", "halton")},
    "nsga2": _NSGA_CHECKS,
    "nsga3": {**_NSGA_CHECKS, "dividing_parameter": _at_least(1)},
    "bruteforce": {"seed": _seed},
}

_PRUNING_CHECKS: dict[str, _Check] = {
    "n_startup_trials": _at_least(0),
    "n_warmup_steps": _at_least(0),
    "interval_steps": _at_least(1),
    "n_min_trials": _at_least(1),
}

_PRUNER_CHECKS: dict[str, dict[str, _Check]] = {
    "median": _PRUNING_CHECKS,
    "percentile": {**_PRUNING_CHECKS, "percentile": _in_range(0.0, 100.0)},
    "successive_halving": {
        "min_resource": _at_least(1),
        "reduction_factor": _at_least(2),
        "min_early_stopping_rate": _at_least(0),
        "bootstrap_count": _at_least(0),
    },
    "hyperband": {
        "min_resource": _at_least(1),
        "max_resource": _at_least(1),
        "reduction_factor": _at_least(2),
        "bootstrap_count": _at_least(0),
    },
    "threshold": {
        "lower": _not_nan,
        "upper": _not_nan,
        "n_warmup_steps": _at_least(0),
        "interval_steps": _at_least(1),
    },
    "patient": {"patience": _at_least(0), "min_delta": _non_negative},
    "wilcoxon": {"p_threshold": _PROBABILITY, "n_startup_steps": _at_least(0)},
    "none": {},
}


# --- Values ------------------------------------------------------------------------------------


def value_from_proto(v: types_pb2.Value, *, field: str | None = None) -> GridValue:
    """Converts a ``Value`` to the Python value it carries.

    Args:
        v: The value.
        field: The name of the field holding ``v``, for the error.

    Returns:
        A float, int, str, bool or None.

    Raises:
        InvalidArgument: ``v`` has no kind set (or one this server does not know).
    """
    kind = v.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(
            f"{field or 'the value'} is unset; set one of double, int, string, bool or null",
            field=field,
        )
    if kind == "null_value":
        return None
    if kind == "double_value" and not math.isfinite(v.double_value):
        raise InvalidArgument(
            f"{field or 'the value'} must be a finite number, got {v.double_value}", field=field
        )
    return getattr(v, kind)


def value_to_proto(x: Any, *, field: str | None = None) -> types_pb2.Value:
    """Converts a Python (or NumPy scalar) value to a ``Value``.

    Args:
        x: A float, int, str, bool, None, or NumPy floating, integer or bool scalar.
        field: The name of the field ``x`` came from, for the error.

    Returns:
        The value as a ``Value`` message.

    Raises:
        InvalidArgument: ``x`` has another type, or is an integer outside int64.
    """
    # bool before int: bool is a subclass of int.
    if isinstance(x, (bool, np.bool_)):
        return types_pb2.Value(bool_value=bool(x))
    if isinstance(x, (int, np.integer)):
        if not _INT64_MIN <= int(x) <= _INT64_MAX:
            raise InvalidArgument(
                f"{field or 'the value'}: the integer {x} does not fit in 64 bits", field=field
            )
        return types_pb2.Value(int_value=int(x))
    if isinstance(x, (float, np.floating)):
        return types_pb2.Value(double_value=float(x))
    if isinstance(x, str):
        return types_pb2.Value(string_value=str(x))
    if x is None:
        return types_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    raise InvalidArgument(
        f"{field or 'the value'} has unsupported type {type(x).__name__}; "
        "expected float, int, str, bool or None",
        field=field,
    )


# --- Shared helpers ----------------------------------------------------------------------------


def _unknown_field_numbers(message: Message) -> list[int]:
    # upb does not implement Message.UnknownFields(); this is its replacement.
    return sorted({f.field_number for f in unknown_fields.UnknownFieldSet(message)})


def _chosen(spec: Message, what: str, names: tuple[str, ...], field: str) -> str | None:
    """Returns the oneof name set in ``spec``, or None if it is empty.

    Raises InvalidArgument if ``spec`` names a kind this server does not know, i.e. a newer
    client set a oneof member that this server's proto lacks and it arrived as unknown fields.
    """
    kind = spec.WhichOneof("kind")
    numbers = _unknown_field_numbers(spec)
    if kind is None and numbers:
        where = "" if field == what else f" in {field}"
        raise InvalidArgument(
            f"unknown {what}{where} (proto field {', '.join(map(str, numbers))}); this server "
            f"may be older than the client; known {what}s: {', '.join(names)}",
            field=field,
        )
    return kind


def _scalar_kwargs(message: Message, checks: Mapping[str, _Check], prefix: str) -> dict[str, Any]:
    """Returns the scalar fields of ``message`` that are set, checked, by name.

    A field with presence counts as set when ``HasField``; a field without (proto3 plain
    scalars such as ``percentile``) is always passed, since Optuna requires it.
    """
    numbers = _unknown_field_numbers(message)
    if numbers:
        # Options a newer client set that this server would silently ignore: refuse instead.
        raise InvalidArgument(
            f"{prefix} has fields this server does not know (proto field "
            f"{', '.join(map(str, numbers))}); upgrade the server or leave them unset",
            field=prefix,
        )
    kwargs: dict[str, Any] = {}
    for fd in message.DESCRIPTOR.fields:
        if fd.message_type is not None or fd.is_repeated:
            continue
        if fd.has_presence and not message.HasField(fd.name):
            continue
        value = getattr(message, fd.name)
        check = checks.get(fd.name)
        problem = check(value) if check else None
        if problem:
            raise InvalidArgument(f"{prefix}.{fd.name} {problem}", field=f"{prefix}.{fd.name}")
        kwargs[fd.name] = value
    return kwargs


def _construct(
    factory: Callable[..., Any],
    kwargs: dict[str, Any],
    extras: Callable[[], dict[str, Any]] | None,
    prefix: str,
) -> Any:
    """Calls an Optuna constructor, turning its own argument errors into InvalidArgument.

    ``extras`` builds the arguments that are Optuna objects themselves (crossovers, a wrapped
    pruner), so that they too are built with the warnings filter below.
    """
    # The user asked for this sampler or pruner, so Optuna's "experimental" notice is noise in
    # the server log. (FutureWarnings for deprecated arguments are kept: they are news.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if extras:
            kwargs = {**kwargs, **extras()}
        try:
            return factory(**kwargs)
        except (ValueError, TypeError) as e:
            raise InvalidArgument(f"{prefix}: {e}", field=prefix) from e


# --- Samplers ----------------------------------------------------------------------------------


def _grid_kwargs(spec: specs_pb2.GridSampler, prefix: str, n_objectives: int) -> dict[str, Any]:
    field = f"{prefix}.search_space"
    if not spec.search_space:
        raise InvalidArgument(f"{field} needs at least one axis", field=field)
    space: dict[str, list[GridValue]] = {}
    for i, axis in enumerate(spec.search_space):
        at = f"{field}[{i}]"
        if not axis.name:
            raise InvalidArgument(f"{at}.name must not be empty", field=f"{at}.name")
        if axis.name in space:
            raise InvalidArgument(f"{at}.name {axis.name!r} repeats an axis", field=f"{at}.name")
        if not axis.values:
            raise InvalidArgument(
                f"{at}.values of axis {axis.name!r} needs at least one value", field=f"{at}.values"
            )
        space[axis.name] = [
            value_from_proto(v, field=f"{at}.values[{j}]") for j, v in enumerate(axis.values)
        ]
    return {"search_space": space}


def _cmaes_kwargs(spec: specs_pb2.CmaEsSampler, prefix: str, n_objectives: int) -> dict[str, Any]:
    if n_objectives > 1:
        # Optuna would accept it here and fail at the first ask.
        raise InvalidArgument(
            "the cmaes sampler supports single-objective studies only; for multi-objective "
            "use tpe, nsga2, nsga3, gp, random, qmc, grid or bruteforce",
            field=prefix,
        )
    # An empty Struct means no initial mean, as when unset.
    if not spec.x0.fields:
        return {}
    x0: dict[str, float] = {}
    for name, v in spec.x0.fields.items():
        if v.WhichOneof("kind") != "number_value" or not math.isfinite(v.number_value):
            raise InvalidArgument(
                f"{prefix}.x0.{name} must be a finite number", field=f"{prefix}.x0.{name}"
            )
        x0[name] = v.number_value
    return {"x0": x0}


def _nsga_kwargs(spec: Message, prefix: str, n_objectives: int) -> dict[str, Any]:
    if not spec.HasField("crossover"):
        return {}
    # Already checked to be a known name by _scalar_kwargs.
    make = _CROSSOVERS[spec.crossover]
    return {"crossover": make() if make else None}


def _needing(module: str, sampler: str, factory: Callable[..., Any]) -> Callable[..., Any]:
    """A factory that first checks ``module`` imports: Optuna imports it only at the first ask."""

    def build(**kwargs: Any) -> Any:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise FailedPrecondition(
                f"the {sampler} sampler needs {module} on the server, which cannot import it "
                f"({e}); install {module} there or choose another sampler",
                field=f"sampler.{sampler}",
            ) from e
        return factory(**kwargs)

    return build


_SAMPLER_FACTORIES: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
    "cmaes": _needing("cmaes", "cmaes", optuna.samplers.CmaEsSampler),
    "gp": _needing("torch", "gp", optuna.samplers.GPSampler),
    "qmc": optuna.samplers.QMCSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "nsga3": optuna.samplers.NSGAIIISampler,
    "bruteforce": optuna.samplers.BruteForceSampler,
}

# Fields that are not plain scalars (or not passed as they come), per sampler.
_SAMPLER_EXTRAS: dict[str, Callable[[Any, str, int], dict[str, Any]]] = {
    "grid": _grid_kwargs,
    "cmaes": _cmaes_kwargs,
    "nsga2": _nsga_kwargs,
    "nsga3": _nsga_kwargs,
}


def build_sampler(
    spec: specs_pb2.SamplerSpec | None, *, n_objectives: int
) -> optuna.samplers.BaseSampler:
    """Builds the Optuna sampler that ``spec`` describes.

    Args:
        spec: The sampler spec; None or an empty spec means Optuna's default.
        n_objectives: The number of objectives of the study the sampler is for.

    Returns:
        A new sampler. With no spec, ``TPESampler()``: what ``optuna.create_study`` uses when
        given no sampler, for single- and multi-objective studies alike (checked in Optuna 5's
        ``Study.__init__``; it no longer picks NSGA-II for multi-objective studies).

    Raises:
        InvalidArgument: The spec names an unknown sampler, has an invalid field, or asks for
            a sampler that cannot serve a study with ``n_objectives`` objectives.
        FailedPrecondition: The gp or cmaes sampler was asked for and torch or cmaes cannot
            be imported.
    """
    kind = None if spec is None else _chosen(spec, "sampler", SAMPLER_NAMES, "sampler")
    if kind is None:
        return optuna.samplers.TPESampler()
    prefix = f"sampler.{kind}"
    message = getattr(spec, kind)
    kwargs = _scalar_kwargs(message, _SAMPLER_CHECKS[kind], prefix)
    extras = _SAMPLER_EXTRAS.get(kind)
    return _construct(
        _SAMPLER_FACTORIES[kind],
        kwargs,
        (lambda: extras(message, prefix, n_objectives)) if extras else None,
        prefix,
    )


# --- Pruners -----------------------------------------------------------------------------------


def _hyperband_kwargs(spec: specs_pb2.HyperbandPruner, prefix: str) -> dict[str, Any]:
    # Optuna checks this only when it first prunes; 1 is its default min_resource.
    min_resource = spec.min_resource if spec.HasField("min_resource") else 1
    if spec.HasField("max_resource") and spec.max_resource < min_resource:
        raise InvalidArgument(
            f"{prefix}.max_resource must be >= min_resource ({min_resource}), "
            f"got {spec.max_resource}",
            field=f"{prefix}.max_resource",
        )
    return {}


def _threshold_kwargs(spec: specs_pb2.ThresholdPruner, prefix: str) -> dict[str, Any]:
    if not spec.HasField("lower") and not spec.HasField("upper"):
        raise InvalidArgument(f"{prefix} needs lower, upper or both", field=prefix)
    if spec.HasField("lower") and spec.HasField("upper") and spec.lower > spec.upper:
        raise InvalidArgument(
            f"{prefix}.lower ({spec.lower}) must be <= upper ({spec.upper})",
            field=f"{prefix}.lower",
        )
    return {}


def _patient_kwargs(spec: specs_pb2.PatientPruner, prefix: str) -> dict[str, Any]:
    field = f"{prefix}.wrapped_pruner"
    wrapped = None
    if spec.HasField("wrapped_pruner"):
        # Empty like unset: no wrapped pruner, not Optuna's default one.
        wrapped = _build_pruner(spec.wrapped_pruner, field, default=None)
    return {"wrapped_pruner": wrapped}


_PRUNER_FACTORIES: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "threshold": optuna.pruners.ThresholdPruner,
    "patient": optuna.pruners.PatientPruner,
    "wilcoxon": optuna.pruners.WilcoxonPruner,
    "none": optuna.pruners.NopPruner,
}

# Checks across fields, and the wrapped pruner, per pruner.
_PRUNER_EXTRAS: dict[str, Callable[[Any, str], dict[str, Any]]] = {
    "hyperband": _hyperband_kwargs,
    "threshold": _threshold_kwargs,
    "patient": _patient_kwargs,
}


def _build_pruner(
    spec: specs_pb2.PrunerSpec, field: str, *, default: optuna.pruners.BasePruner | None
) -> optuna.pruners.BasePruner | None:
    kind = _chosen(spec, "pruner", PRUNER_NAMES, field)
    if kind is None:
        return default
    prefix = f"{field}.{kind}"
    message = getattr(spec, kind)
    kwargs = _scalar_kwargs(message, _PRUNER_CHECKS[kind], prefix)
    extras = _PRUNER_EXTRAS.get(kind)
    return _construct(
        _PRUNER_FACTORIES[kind],
        kwargs,
        (lambda: extras(message, prefix)) if extras else None,
        prefix,
    )


def build_pruner(
    spec: specs_pb2.PrunerSpec | None, *, n_objectives: int
) -> optuna.pruners.BasePruner:
    """Builds the Optuna pruner that ``spec`` describes.

    Args:
        spec: The pruner spec; None or an empty spec means the default.
        n_objectives: The number of objectives of the study the pruner is for.

    Returns:
        A new pruner. With no spec, ``MedianPruner()`` (Optuna's default) for a
        single-objective study and ``NopPruner()`` for a multi-objective one, which Optuna
        cannot prune.

    Raises:
        InvalidArgument: The spec names an unknown pruner, has an invalid field, or asks for
            pruning of a multi-objective study.
    """
    if spec is None:
        spec = specs_pb2.PrunerSpec()
    kind = _chosen(spec, "pruner", PRUNER_NAMES, "pruner")
    if n_objectives > 1:
        if kind not in (None, "none"):
            raise InvalidArgument(
                "pruning is not supported for multi-objective studies (Optuna's pruners need "
                "one objective); use pruner none",
                field="pruner",
            )
        return optuna.pruners.NopPruner()
    pruner = _build_pruner(spec, "pruner", default=optuna.pruners.MedianPruner())
    assert pruner is not None  # the default is not None
    return pruner
