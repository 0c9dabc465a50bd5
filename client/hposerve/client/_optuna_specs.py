"""Optuna sampler and pruner objects as the dict specs the server builds them from.

``optuna.samplers.TPESampler(seed=0)`` becomes ``{"type": "tpe", "seed": 0, ...}``. The
constructor arguments are read back from the object; then the same Optuna class is built
again from them and the two objects are compared attribute by attribute, so a spec is sent
only when it makes exactly the object given. Anything else (a custom class, a ``gamma``
function, a crossover with its own arguments) is refused with a message naming the dict form.
Optuna is never imported here: the objects come from the caller, who has it.

A ``constraints_func`` is not part of the spec: the client keeps it and runs it on each trial
before its tell, sending the values as the trial's constraints (see ``Study.tell``).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import InvalidArgument

ConstraintsFunc = Callable[[Any], Any]

# Attributes that change nothing that is sampled (warnings) or that the client handles itself.
_IGNORED = frozenset(
    {"_constraints_func", "_warn_independent_sampling", "_warn_asynchronous_seeding"}
)
_LOCKS = (type(threading.Lock()), type(threading.RLock()))
_CROSSOVERS = {
    "UniformCrossover": "uniform",
    "BLXAlphaCrossover": "blxalpha",
    "SBXCrossover": "sbx",
    "VSBXCrossover": "vsbx",
    "UNDXCrossover": "undx",
    "SPXCrossover": "spx",
}


def seed_of(lazy: Any) -> int | None:
    """The seed an Optuna ``LazyRandomState`` was made with, or None (unseeded, or drawn from).

    NumPy seeds MT19937 from an int by writing it as the first state word, with the position
    at the end of the state: the candidate is checked by seeding a new generator with it.
    """
    rng = getattr(lazy, "_rng", None)
    if rng is None:
        return None
    state = rng.get_state()
    candidate = int(state[1][0])
    fresh = type(rng)(candidate).get_state()
    same = state[2] == fresh[2] and state[1].tolist() == fresh[1].tolist()
    return candidate if same else None


def _tpe(s: Any) -> dict[str, Any]:
    p = s._parzen_estimator_parameters
    return {
        "seed": seed_of(s._rng),
        "n_startup_trials": s._n_startup_trials,
        "n_ei_candidates": s._n_ei_candidates,
        "multivariate": s._multivariate,
        "group": s._group,
        "constant_liar": s._constant_liar,
        "prior_weight": p.prior_weight,
        "consider_magic_clip": p.consider_magic_clip,
        "consider_endpoints": p.consider_endpoints,
    }


def _cmaes(s: Any) -> dict[str, Any]:
    if s._source_trials is not None:
        raise InvalidArgument(
            "CmaEsSampler(source_trials=...) cannot be sent: warm-start from a study on the "
            "server with {'type': 'cmaes', 'source_study': NAME}"
        )
    return {
        "seed": seed_of(s._cma_rng),
        "x0": s._x0,
        "sigma0": s._sigma0,
        "n_startup_trials": s._n_startup_trials,
        "consider_pruned_trials": s._consider_pruned_trials,
        "popsize": s._popsize,
        "use_separable_cma": s._use_separable_cma,
        "with_margin": s._with_margin,
        "lr_adapt": s._lr_adapt,
    }


def _nsga(s: Any) -> dict[str, Any]:
    child = s._child_generation_strategy
    crossover = _CROSSOVERS.get(type(child._crossover).__name__, type(child._crossover).__name__)
    args = {
        "seed": seed_of(s._rng),
        "population_size": s._population_size,
        "mutation_prob": child._mutation_prob,
        "crossover": crossover,
        "crossover_prob": child._crossover_prob,
        "swapping_prob": child._swapping_prob,
    }
    if type(s).__name__ == "NSGAIIISampler":
        args["dividing_parameter"] = s._elite_population_selection_strategy._dividing_parameter
    return args


def _grid(s: Any) -> dict[str, Any]:
    # Optuna shuffles the grid with the seed as it builds the sampler, so the seed cannot be
    # read back (and the order is compared as a set of points).
    warnings.warn(
        "a GridSampler's seed cannot be read back from the object: the server's grid is "
        "unseeded unless you pass {'type': 'grid', 'search_space': ..., 'seed': S}",
        stacklevel=4,
    )
    return {"search_space": {k: list(v) for k, v in s._search_space.items()}, "seed": None}


_SAMPLERS: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "TPESampler": ("tpe", _tpe),
    "RandomSampler": ("random", lambda s: {"seed": seed_of(s._rng)}),
    "GridSampler": ("grid", _grid),
    "CmaEsSampler": ("cmaes", _cmaes),
    "GPSampler": (
        "gp",
        lambda s: {
            "seed": seed_of(s._rng),
            "n_startup_trials": s._n_startup_trials,
            "deterministic_objective": s._deterministic,
        },
    ),
    "QMCSampler": (
        "qmc",
        lambda s: {"seed": s._seed, "qmc_type": s._qmc_type, "scramble": s._scramble},
    ),
    "NSGAIISampler": ("nsga2", _nsga),
    "NSGAIIISampler": ("nsga3", _nsga),
    "BruteForceSampler": (
        "bruteforce",
        lambda s: {"seed": seed_of(s._rng), "avoid_premature_stop": s._avoid_premature_stop},
    ),
}


def _pruning(p: Any) -> dict[str, Any]:
    return {
        "n_startup_trials": p._n_startup_trials,
        "n_warmup_steps": p._n_warmup_steps,
        "interval_steps": p._interval_steps,
        "n_min_trials": p._n_min_trials,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


_PRUNERS: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "MedianPruner": ("median", _pruning),
    "PercentilePruner": ("percentile", lambda p: {"percentile": p._percentile, **_pruning(p)}),
    "SuccessiveHalvingPruner": (
        "successive_halving",
        lambda p: {
            "min_resource": p._min_resource,
            "reduction_factor": p._reduction_factor,
            "min_early_stopping_rate": p._min_early_stopping_rate,
            "bootstrap_count": p._bootstrap_count,
        },
    ),
    "HyperbandPruner": (
        "hyperband",
        lambda p: {
            "min_resource": p._min_resource,
            "max_resource": None if p._max_resource == "auto" else p._max_resource,
            "reduction_factor": p._reduction_factor,
            "bootstrap_count": p._bootstrap_count,
        },
    ),
    "ThresholdPruner": (
        "threshold",
        lambda p: {
            "lower": _finite(p._lower),
            "upper": _finite(p._upper),
            "n_warmup_steps": p._n_warmup_steps,
            "interval_steps": p._interval_steps,
        },
    ),
    "PatientPruner": (
        "patient",
        lambda p: {
            "wrapped_pruner": p._wrapped_pruner,
            "patience": p._patience,
            "min_delta": p._min_delta,
        },
    ),
    "WilcoxonPruner": (
        "wilcoxon",
        lambda p: {"p_threshold": p._p_threshold, "n_startup_steps": p._n_startup_steps},
    ),
    "NopPruner": ("none", lambda p: {}),
}


def is_optuna_object(value: Any) -> bool:
    """Whether ``value`` is an object of an Optuna class (a sampler, a pruner...)."""
    return type(value).__module__.split(".")[0] == "optuna"


def sampler_from_optuna(sampler: Any) -> tuple[dict[str, Any], ConstraintsFunc | None]:
    """The spec of an Optuna sampler, and its ``constraints_func`` (run by the client).

    Raises:
        InvalidArgument: The sampler does not translate exactly into a spec.
    """
    spec = _translate(sampler, _SAMPLERS, "sampler")
    return spec, getattr(sampler, "_constraints_func", None)


def pruner_from_optuna(pruner: Any) -> dict[str, Any]:
    """The spec of an Optuna pruner. Raises: InvalidArgument (no exact translation)."""
    return _translate(pruner, _PRUNERS, "pruner")


def _translate(
    obj: Any, table: Mapping[str, tuple[str, Callable[[Any], dict[str, Any]]]], what: str
) -> dict[str, Any]:
    cls = type(obj)
    entry = table.get(cls.__name__) if is_optuna_object(obj) else None
    if entry is None:
        raise InvalidArgument(
            f"{cls.__name__} cannot be sent to the server, which runs Optuna's own {what}s: "
            f"pass the dict form, e.g. {{'type': 'tpe', 'seed': 0}}; types: "
            + ", ".join(kind for kind, _ in table.values())
        )
    kind, extract = entry
    args = extract(obj)
    if kind == "patient" and args["wrapped_pruner"] is not None:
        args["wrapped_pruner"] = pruner_from_optuna(args["wrapped_pruner"])
    try:
        rebuilt = _rebuild(obj, kind, args)
        exact = _same(vars(obj), vars(rebuilt), rng_free=args.get("seed", 0) is None)
    except Exception:  # noqa: BLE001 - any failure means: not an exact translation
        exact = False
    defaults = _defaults(obj, extract)
    # Arguments at Optuna's default are left unset: the server's Optuna fills them in (and
    # does not warn about deprecated ones nobody set).
    spec = {"type": kind}
    spec.update(
        {
            k: v
            for k, v in args.items()
            if v is not None and (k == "seed" or defaults.get(k, v) != v or k not in defaults)
        }
    )
    if not exact:
        raise InvalidArgument(
            f"{cls.__name__} has arguments hposerve cannot send exactly (a function such as "
            f"gamma or weights, another independent sampler, a crossover's own arguments...): "
            f"pass the dict form instead, e.g. {spec!r}"
        )
    return spec


def _defaults(obj: Any, extract: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """The arguments read back from the class built without any (empty if it needs some)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return extract(type(obj)())
    except Exception:  # noqa: BLE001 - e.g. GridSampler, PercentilePruner need arguments
        return {}


def _rebuild(obj: Any, kind: str, args: dict[str, Any]) -> Any:
    """The same Optuna class built from ``args`` (as the server will build it)."""
    import importlib

    kwargs = dict(args)
    if kind in ("nsga2", "nsga3"):
        nsgaii = importlib.import_module("optuna.samplers.nsgaii")
        names = {v: k for k, v in _CROSSOVERS.items()}
        crossover = kwargs.pop("crossover")
        made = None if crossover == "uniform" else getattr(nsgaii, names[crossover])()
        kwargs["crossover"] = made
    if kind == "successive_halving" and kwargs["min_resource"] is None:
        kwargs["min_resource"] = "auto"
    if kind == "hyperband" and kwargs["max_resource"] is None:
        kwargs["max_resource"] = "auto"
    if kind == "patient" and kwargs["wrapped_pruner"] is not None:
        kwargs["wrapped_pruner"] = obj._wrapped_pruner  # compared on its own, above
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return type(obj)(**kwargs)


def _same(a: Any, b: Any, *, rng_free: bool) -> bool:
    """Whether two Optuna objects (or their attribute values) are the same, recursively."""
    if type(a) is not type(b):
        return False
    name = type(a).__name__
    if isinstance(a, _LOCKS):
        return True  # a lock carries no setting (Optuna's GA samplers hold one)
    if name == "LazyRandomState" and rng_free:
        return True
    if name == "RandomState":
        sa, sb = a.get_state(), b.get_state()
        return bool(sa[1].tolist() == sb[1].tolist() and sa[2:] == sb[2:])
    if isinstance(a, dict):
        if "_all_grids" in a and rng_free:  # a grid in shuffled order
            a, b = (
                {**a, "_all_grids": sorted(map(repr, a["_all_grids"]))},
                {**b, "_all_grids": sorted(map(repr, b["_all_grids"]))},
            )
        keys = set(a) - _IGNORED
        return keys == set(b) - _IGNORED and all(_same(a[k], b[k], rng_free=rng_free) for k in keys)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(
            _same(x, y, rng_free=rng_free) for x, y in zip(a, b, strict=True)
        )
    if callable(a) and not hasattr(a, "__dict__") or isinstance(a, type) or name == "function":
        return a is b
    if hasattr(a, "tolist"):  # numpy arrays and scalars
        return bool(a.tolist() == b.tolist())
    if hasattr(a, "__dict__"):
        return _same(vars(a), vars(b), rng_free=rng_free)
    return bool(a == b)
