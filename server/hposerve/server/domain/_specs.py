"""Sampler and pruner specs -> Optuna objects, validated.

Each ``*Sampler`` / ``*Pruner`` proto message mirrors the constructor of the Optuna class of the
same name, field for field. Only the fields a client set are passed on, so an unset field takes
Optuna's own default; a study served remotely then samples exactly as the same study would
in-process. Every input is checked before Optuna sees it (the field checks are in
``_spec_fields``), so that a bad spec becomes an ``InvalidArgument`` naming the field instead
of a failure at the first ask. Values (``Value`` protos) are converted in ``_values``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import optuna
from google.protobuf.message import Message

from hposerve.server.domain._config import MAX_GRID_POINTS, MAX_REFERENCE_POINTS
from hposerve.server.domain._exceptions import FailedPrecondition, InvalidArgument
from hposerve.server.domain._optuna import grid_sampler
from hposerve.server.domain._spec_fields import (
    CROSSOVERS,
    PRUNER_CHECKS,
    SAMPLER_CHECKS,
    chosen,
    construct,
    scalar_kwargs,
)
from hposerve.server.domain._values import GridValue, value_from_proto, value_to_proto
from hposerve.v1 import specs_pb2

__all__ = [
    "GridValue",
    "PRUNER_NAMES",
    "SAMPLER_NAMES",
    "build_pruner",
    "build_sampler",
    "source_study_of",
    "value_from_proto",
    "value_to_proto",
]

SAMPLER_NAMES: tuple[str, ...] = tuple(
    f.name for f in specs_pb2.SamplerSpec.DESCRIPTOR.oneofs_by_name["kind"].fields
)
PRUNER_NAMES: tuple[str, ...] = tuple(
    f.name for f in specs_pb2.PrunerSpec.DESCRIPTOR.oneofs_by_name["kind"].fields
)

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
    points = math.prod(len(values) for values in space.values())
    if points > MAX_GRID_POINTS:
        sizes = " × ".join(str(len(values)) for values in space.values())
        raise InvalidArgument(
            f"{field} makes {points} grid points ({sizes}), more than the limit "
            f"MAX_GRID_POINTS = {MAX_GRID_POINTS}; use fewer values, or another sampler",
            field=field,
        )
    return {"search_space": space}


def _cmaes_kwargs(spec: specs_pb2.CmaEsSampler, prefix: str, n_objectives: int) -> dict[str, Any]:
    if n_objectives > 1:
        # Optuna would accept it here and fail at the first ask.
        raise InvalidArgument(
            "the cmaes sampler supports single-objective studies only; for multi-objective "
            "use tpe, nsga2, nsga3, gp, random, qmc, grid or bruteforce",
            field=prefix,
        )
    if spec.HasField("source_study"):
        # Optuna refuses these together only once it has the source trials (at load).
        clashing = [name for name in ("sigma0", "x0") if _is_set(spec, name)]
        clashing += ["use_separable_cma"] if spec.use_separable_cma else []
        if clashing:
            raise InvalidArgument(
                f"{prefix}.source_study (a warm start) excludes {', '.join(clashing)}",
                field=f"{prefix}.source_study",
            )
        if not spec.source_study:
            raise InvalidArgument(
                f"{prefix}.source_study must name a study", field=f"{prefix}.source_study"
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


def _is_set(spec: specs_pb2.CmaEsSampler, name: str) -> bool:
    return bool(spec.x0.fields) if name == "x0" else spec.HasField(name)


def _nsga3_kwargs(spec: specs_pb2.NsgaIIISampler, prefix: str, n_objectives: int) -> dict[str, Any]:
    # Optuna builds C(objectives + p - 1, p) reference points at every generation.
    p = spec.dividing_parameter if spec.HasField("dividing_parameter") else 3
    # Each point is also a combination of p objectives: p itself is bounded too.
    points = max(math.comb(max(n_objectives, 1) + p - 1, p), p)
    if points > MAX_REFERENCE_POINTS:
        raise InvalidArgument(
            f"{prefix}.dividing_parameter {p} with {n_objectives} objective(s) makes {points} "
            f"reference points, more than the limit MAX_REFERENCE_POINTS = "
            f"{MAX_REFERENCE_POINTS}",
            field=f"{prefix}.dividing_parameter",
        )
    return _nsga_kwargs(spec, prefix, n_objectives)


def _nsga_kwargs(spec: Message, prefix: str, n_objectives: int) -> dict[str, Any]:
    if not spec.HasField("crossover"):
        return {}
    # Already checked to be a known name by scalar_kwargs.
    make = CROSSOVERS[spec.crossover]
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
    "grid": grid_sampler,
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
    "nsga3": _nsga3_kwargs,
}


def source_study_of(spec: specs_pb2.SamplerSpec | None) -> str | None:
    """The study whose trials warm-start the sampler (CMA-ES's ``source_study``), or None."""
    if spec is None or not spec.HasField("cmaes") or not spec.cmaes.HasField("source_study"):
        return None
    return spec.cmaes.source_study


# Samplers that fit no model to the trials: an ask costs about what its bookkeeping costs.
QUICK_SAMPLERS = frozenset({"random", "grid", "qmc"})

# What a sampler raises on a space it cannot sample: the caller's error, not the server's.
SAMPLER_REFUSALS = (ValueError, TypeError, ArithmeticError)


def fits_a_model(spec: specs_pb2.SamplerSpec | None) -> bool:
    """Whether the sampler fits a model to the trials at each ask (TPE, the default; GP...)."""
    return spec is None or spec.WhichOneof("kind") not in QUICK_SAMPLERS


def build_sampler(
    spec: specs_pb2.SamplerSpec | None,
    *,
    n_objectives: int,
    source_trials: list[optuna.trial.FrozenTrial] | None = None,
) -> optuna.samplers.BaseSampler:
    """Builds the Optuna sampler that ``spec`` describes.

    Args:
        spec: The sampler spec; None or an empty spec means Optuna's default.
        n_objectives: The number of objectives of the study the sampler is for.
        source_trials: The trials of the spec's ``source_study`` (see ``source_study_of``),
            passed to CMA-ES as Optuna's ``source_trials``; None builds the sampler without
            them (to validate a spec before the study exists).

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
    kind = None if spec is None else chosen(spec, "sampler", SAMPLER_NAMES, "sampler")
    if kind is None:
        return optuna.samplers.TPESampler()
    prefix = f"sampler.{kind}"
    message = getattr(spec, kind)
    kwargs = scalar_kwargs(message, SAMPLER_CHECKS[kind], prefix)
    # A study's name, not an Optuna argument: its trials are.
    if kwargs.pop("source_study", None) is not None and source_trials is not None:
        kwargs["source_trials"] = source_trials
    extras = _SAMPLER_EXTRAS.get(kind)
    return construct(
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
    kind = chosen(spec, "pruner", PRUNER_NAMES, field)
    if kind is None:
        return default
    prefix = f"{field}.{kind}"
    message = getattr(spec, kind)
    kwargs = scalar_kwargs(message, PRUNER_CHECKS[kind], prefix)
    extras = _PRUNER_EXTRAS.get(kind)
    return construct(
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
    kind = chosen(spec, "pruner", PRUNER_NAMES, "pruner")
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
