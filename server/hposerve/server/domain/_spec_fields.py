"""Checking the fields of sampler and pruner specs, and building Optuna objects from them.

Each check returns what is wrong with a value, or None if it is fine; the tables say which
scalar field of which spec gets which check. ``scalar_kwargs`` passes on every scalar field a
client set (checked where a check is listed), so an unset field takes Optuna's own default.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import unknown_fields
from google.protobuf.message import Message
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import nsgaii

from hposerve.server.domain._config import (
    MAX_EI_CANDIDATES,
    MAX_INC_POPSIZE,
    MAX_POPULATION,
)
from hposerve.server.domain._exceptions import InvalidArgument

__all__ = [
    "CROSSOVERS",
    "PRUNER_CHECKS",
    "SAMPLER_CHECKS",
    "Check",
    "chosen",
    "construct",
    "scalar_kwargs",
]

Check = Callable[[Any], str | None]


def _at_least(low: int) -> Check:
    return lambda v: None if v >= low else f"must be >= {low}, got {v}"


def _in_range(low: float, high: float) -> Check:
    # Written so that NaN fails too.
    return lambda v: None if low <= v <= high else f"must be in [{low:g}, {high:g}], got {v}"


def _between(low: int, high: int, limit: str) -> Check:
    """An int in [low, high]; ``limit`` names the server limit that ``high`` is."""

    def check(v: int) -> str | None:
        if v < low:
            return f"must be >= {low}, got {v}"
        return None if v <= high else f"must be <= {high} (limit {limit}), got {v}"

    return check


def _one_of(*choices: str) -> Check:
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

CROSSOVERS: dict[str, Callable[[], nsgaii.BaseCrossover] | None] = {
    # None leaves the choice to Optuna, which builds UniformCrossover(swapping_prob) itself.
    "uniform": None,
    "blxalpha": nsgaii.BLXAlphaCrossover,
    "sbx": nsgaii.SBXCrossover,
    "vsbx": nsgaii.VSBXCrossover,
    "undx": nsgaii.UNDXCrossover,
    "spx": nsgaii.SPXCrossover,
}

_NSGA_CHECKS: dict[str, Check] = {
    "seed": _seed,
    "population_size": _between(2, MAX_POPULATION, "MAX_POPULATION"),
    "mutation_prob": _PROBABILITY,
    "crossover": _one_of(*CROSSOVERS),
    "crossover_prob": _PROBABILITY,
    "swapping_prob": _PROBABILITY,
}

# Scalar fields with a check, per sampler; every scalar field set is passed on, checked or not.
SAMPLER_CHECKS: dict[str, dict[str, Check]] = {
    "tpe": {
        "seed": _seed,
        "n_startup_trials": _at_least(0),
        "n_ei_candidates": _between(1, MAX_EI_CANDIDATES, "MAX_EI_CANDIDATES"),
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
        "popsize": _between(2, MAX_POPULATION, "MAX_POPULATION"),
        "inc_popsize": _between(1, MAX_INC_POPSIZE, "MAX_INC_POPSIZE"),
    },
    "gp": {"seed": _seed, "n_startup_trials": _at_least(0)},
    "qmc": {"seed": _seed, "qmc_type": _one_of("sobol", "halton")},
    "nsga2": _NSGA_CHECKS,
    "nsga3": {**_NSGA_CHECKS, "dividing_parameter": _at_least(1)},
    "bruteforce": {"seed": _seed},
}

_PRUNING_CHECKS: dict[str, Check] = {
    "n_startup_trials": _at_least(0),
    "n_warmup_steps": _at_least(0),
    "interval_steps": _at_least(1),
    "n_min_trials": _at_least(1),
}

PRUNER_CHECKS: dict[str, dict[str, Check]] = {
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


def _unknown_field_numbers(message: Message) -> list[int]:
    # upb does not implement Message.UnknownFields(); this is its replacement.
    return sorted({f.field_number for f in unknown_fields.UnknownFieldSet(message)})


def chosen(spec: Message, what: str, names: tuple[str, ...], field: str) -> str | None:
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


def scalar_kwargs(message: Message, checks: Mapping[str, Check], prefix: str) -> dict[str, Any]:
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


def construct(
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
