"""Tests for hposerve.server.domain._specs: sampler and pruner specs -> Optuna objects."""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import numpy as np
import optuna
import pytest
from google.protobuf import struct_pb2, unknown_fields
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import nsgaii

from hposerve.server.domain._exceptions import FailedPrecondition, InvalidArgument
from hposerve.server.domain._specs import (
    PRUNER_NAMES,
    SAMPLER_NAMES,
    build_pruner,
    build_sampler,
    value_from_proto,
    value_to_proto,
)
from hposerve.v1 import specs_pb2 as S
from hposerve.v1 import types_pb2

# Optuna 5 warns on each deprecated TPE / CMA-ES argument; the tests set them on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

# An empty length-delimited field 100: tag (100 << 3) | 2 = 802 = varint a2 06, length 0.
UNKNOWN_FIELD_100 = b"\xa2\x06\x00"


@pytest.fixture(autouse=True)
def _quiet_optuna():
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(old)


def _v(x: Any) -> types_pb2.Value:
    return value_to_proto(x)


def _grid_spec(**kwargs: Any) -> S.GridSampler:
    return S.GridSampler(
        search_space=[
            S.GridAxis(name="x", values=[_v(-1.0), _v(0.5), _v(2.0)]),
            S.GridAxis(name="c", values=[_v("a"), _v("b")]),
        ],
        **kwargs,
    )


GRID_SPACE: dict[str, list[Any]] = {"x": [-1.0, 0.5, 2.0], "c": ["a", "b"]}


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 8)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return (x - 1.0) ** 2 + n + (c == "b")


def _finite_objective(trial: optuna.Trial) -> float:
    # A space the grid and the brute-force samplers can enumerate.
    x = trial.suggest_float("x", -1.0, 2.0, step=0.5)
    c = trial.suggest_categorical("c", ["a", "b"])
    return x**2 + (c == "b")


def _suggestions(
    sampler: optuna.samplers.BaseSampler, n_trials: int, objective=_objective
) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=n_trials)
    return [t.params for t in study.trials]


# --- Defaults ----------------------------------------------------------------------------------


def test_default_sampler_mirrors_create_study():
    for directions in (["minimize"], ["minimize", "maximize"]):
        expected = type(optuna.create_study(directions=directions).sampler)
        for spec in (None, S.SamplerSpec()):
            sampler = build_sampler(spec, n_objectives=len(directions))
            assert type(sampler) is expected


def test_defaults_single_objective():
    assert type(build_sampler(None, n_objectives=1)) is optuna.samplers.TPESampler
    assert type(build_sampler(S.SamplerSpec(), n_objectives=1)) is optuna.samplers.TPESampler
    assert type(build_pruner(None, n_objectives=1)) is optuna.pruners.MedianPruner
    assert type(build_pruner(S.PrunerSpec(), n_objectives=1)) is optuna.pruners.MedianPruner


def test_defaults_multi_objective():
    # Optuna 5's create_study uses TPESampler for multi-objective studies too (not NSGA-II).
    assert type(build_sampler(None, n_objectives=2)) is optuna.samplers.TPESampler
    assert type(build_pruner(None, n_objectives=2)) is optuna.pruners.NopPruner
    assert type(build_pruner(S.PrunerSpec(), n_objectives=3)) is optuna.pruners.NopPruner


def test_names_in_proto_order():
    assert SAMPLER_NAMES == (
        "tpe",
        "random",
        "grid",
        "cmaes",
        "gp",
        "qmc",
        "nsga2",
        "nsga3",
        "bruteforce",
    )
    assert PRUNER_NAMES == (
        "median",
        "percentile",
        "successive_halving",
        "hyperband",
        "threshold",
        "patient",
        "wilcoxon",
        "none",
    )


# --- Samplers ----------------------------------------------------------------------------------

SAMPLER_CLASSES = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "nsga3": optuna.samplers.NSGAIIISampler,
    "bruteforce": optuna.samplers.BruteForceSampler,
}


@pytest.mark.parametrize(
    ("name", "n_objectives"),
    # cmaes is single-objective only: see test_cmaes_rejects_multi_objective.
    [(name, n) for name in SAMPLER_NAMES for n in (1, 2) if (name, n) != ("cmaes", 2)],
)
def test_every_sampler_builds_with_defaults(name: str, n_objectives: int):
    message = _grid_spec() if name == "grid" else type(getattr(S.SamplerSpec(), name))()
    sampler = build_sampler(S.SamplerSpec(**{name: message}), n_objectives=n_objectives)
    assert type(sampler) is SAMPLER_CLASSES[name]


# Each sampler with every field set, the same sampler built directly, and attributes that a
# short run would not show.
FULL_SAMPLERS: dict[str, tuple[S.SamplerSpec, Any, dict[str, Any]]] = {
    "tpe": (
        S.SamplerSpec(
            tpe=S.TpeSampler(
                seed=3,
                n_startup_trials=4,
                n_ei_candidates=7,
                multivariate=True,
                group=True,
                constant_liar=False,
                prior_weight=2.0,
                consider_prior=True,
                consider_magic_clip=False,
                consider_endpoints=True,
            )
        ),
        lambda: optuna.samplers.TPESampler(
            seed=3,
            n_startup_trials=4,
            n_ei_candidates=7,
            multivariate=True,
            group=True,
            constant_liar=False,
            prior_weight=2.0,
            consider_prior=True,
            consider_magic_clip=False,
            consider_endpoints=True,
        ),
        {
            "_n_startup_trials": 4,
            "_n_ei_candidates": 7,
            "_multivariate": True,
            "_group": True,
            "_constant_liar": False,
            "_parzen_estimator_parameters.prior_weight": 2.0,
            "_parzen_estimator_parameters.consider_magic_clip": False,
            "_parzen_estimator_parameters.consider_endpoints": True,
        },
    ),
    "random": (
        S.SamplerSpec(random=S.RandomSampler(seed=5)),
        lambda: optuna.samplers.RandomSampler(seed=5),
        {},
    ),
    "grid": (
        S.SamplerSpec(grid=_grid_spec(seed=11)),
        lambda: optuna.samplers.GridSampler(GRID_SPACE, seed=11),
        {"_search_space": {"c": ["a", "b"], "x": [-1.0, 0.5, 2.0]}},
    ),
    "cmaes": (
        S.SamplerSpec(
            cmaes=S.CmaEsSampler(
                seed=7,
                sigma0=0.7,
                n_startup_trials=2,
                restart_strategy="ipop",
                popsize=4,
                inc_popsize=2,
                consider_pruned_trials=True,
                use_separable_cma=False,
                with_margin=False,
                lr_adapt=True,
                # CMA-ES needs a mean for every numeric parameter, or it fails at the first ask.
                x0=struct_pb2.Struct(
                    fields={
                        "x": struct_pb2.Value(number_value=0.5),
                        "n": struct_pb2.Value(number_value=3),
                    }
                ),
            )
        ),
        lambda: optuna.samplers.CmaEsSampler(
            seed=7,
            sigma0=0.7,
            n_startup_trials=2,
            restart_strategy="ipop",
            popsize=4,
            inc_popsize=2,
            consider_pruned_trials=True,
            use_separable_cma=False,
            with_margin=False,
            lr_adapt=True,
            x0={"x": 0.5, "n": 3.0},
        ),
        {
            "_sigma0": 0.7,
            "_n_startup_trials": 2,
            "_popsize": 4,
            "_consider_pruned_trials": True,
            "_lr_adapt": True,
            "_x0": {"x": 0.5, "n": 3.0},
        },
    ),
    "gp": (
        S.SamplerSpec(gp=S.GpSampler(seed=2, n_startup_trials=3, deterministic_objective=True)),
        lambda: optuna.samplers.GPSampler(seed=2, n_startup_trials=3, deterministic_objective=True),
        {"_n_startup_trials": 3, "_deterministic": True},
    ),
    "qmc": (
        S.SamplerSpec(qmc=S.QmcSampler(seed=9, qmc_type="halton", scramble=True)),
        lambda: optuna.samplers.QMCSampler(seed=9, qmc_type="halton", scramble=True),
        {"_seed": 9, "_qmc_type": "halton", "_scramble": True},
    ),
    "nsga2": (
        S.SamplerSpec(
            nsga2=S.NsgaIISampler(
                seed=4,
                population_size=4,
                mutation_prob=0.2,
                crossover="blxalpha",
                crossover_prob=0.8,
                swapping_prob=0.3,
            )
        ),
        lambda: optuna.samplers.NSGAIISampler(
            seed=4,
            population_size=4,
            mutation_prob=0.2,
            crossover=nsgaii.BLXAlphaCrossover(),
            crossover_prob=0.8,
            swapping_prob=0.3,
        ),
        {
            "_population_size": 4,
            "_child_generation_strategy._mutation_prob": 0.2,
            "_child_generation_strategy._crossover_prob": 0.8,
            "_child_generation_strategy._swapping_prob": 0.3,
        },
    ),
    "nsga3": (
        S.SamplerSpec(
            nsga3=S.NsgaIIISampler(
                seed=4,
                population_size=5,
                mutation_prob=0.1,
                crossover="spx",
                crossover_prob=0.7,
                swapping_prob=0.4,
                dividing_parameter=2,
            )
        ),
        lambda: optuna.samplers.NSGAIIISampler(
            seed=4,
            population_size=5,
            mutation_prob=0.1,
            crossover=nsgaii.SPXCrossover(),
            crossover_prob=0.7,
            swapping_prob=0.4,
            dividing_parameter=2,
        ),
        {
            "_population_size": 5,
            "_elite_population_selection_strategy._dividing_parameter": 2,
            "_child_generation_strategy._mutation_prob": 0.1,
        },
    ),
    "bruteforce": (
        S.SamplerSpec(bruteforce=S.BruteForceSampler(seed=1, avoid_premature_stop=True)),
        lambda: optuna.samplers.BruteForceSampler(seed=1, avoid_premature_stop=True),
        {"_avoid_premature_stop": True},
    ),
}


def _attr(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def test_full_samplers_cover_every_field():
    for name, (spec, _, _) in FULL_SAMPLERS.items():
        message = getattr(spec, name)
        unset = [f.name for f in message.DESCRIPTOR.fields if not _is_set(message, f)]
        # A warm start excludes x0 and sigma0: tests/server/compat covers it.
        unset = [f for f in unset if (name, f) != ("cmaes", "source_study")]
        assert unset == [], f"{name} leaves {unset} unset"
    assert set(FULL_SAMPLERS) == set(SAMPLER_NAMES)


def _is_set(message: Any, fd: Any) -> bool:
    if fd.is_repeated:
        return len(getattr(message, fd.name)) > 0
    return message.HasField(fd.name)


@pytest.mark.parametrize("name", list(FULL_SAMPLERS))
def test_sampler_with_every_field_matches_optuna(name: str):
    spec, direct, attrs = FULL_SAMPLERS[name]
    sampler = build_sampler(spec, n_objectives=1)
    assert type(sampler) is SAMPLER_CLASSES[name]
    for path, expected in attrs.items():
        assert _attr(sampler, path) == expected, path
    # Same seed, same suggestions as the sampler built directly with Optuna.
    objective = _finite_objective if name in ("grid", "bruteforce") else _objective
    n_trials = 6 if name in ("grid", "bruteforce") else (6 if name == "gp" else 14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_params = _suggestions(direct(), n_trials, objective)
    assert _suggestions(sampler, n_trials, objective) == expected_params


@pytest.mark.parametrize(
    ("crossover", "cls"),
    [
        ("blxalpha", nsgaii.BLXAlphaCrossover),
        ("sbx", nsgaii.SBXCrossover),
        ("vsbx", nsgaii.VSBXCrossover),
        ("undx", nsgaii.UNDXCrossover),
        ("spx", nsgaii.SPXCrossover),
        ("uniform", nsgaii.UniformCrossover),
    ],
)
@pytest.mark.parametrize("name", ["nsga2", "nsga3"])
def test_nsga_crossovers(name: str, crossover: str, cls: type):
    message = (S.NsgaIISampler if name == "nsga2" else S.NsgaIIISampler)(
        crossover=crossover, swapping_prob=0.25
    )
    sampler = build_sampler(S.SamplerSpec(**{name: message}), n_objectives=2)
    made: Any = sampler._child_generation_strategy._crossover
    assert type(made) is cls
    if isinstance(made, nsgaii.UniformCrossover):
        # As Optuna does when given no crossover: the uniform one takes swapping_prob.
        assert made._swapping_prob == 0.25


def test_seeded_behaviour_matches_optuna_for_defaults_plus_seed():
    for spec, direct in [
        (S.SamplerSpec(tpe=S.TpeSampler(seed=1)), lambda: optuna.samplers.TPESampler(seed=1)),
        (
            S.SamplerSpec(cmaes=S.CmaEsSampler(seed=1)),
            lambda: optuna.samplers.CmaEsSampler(seed=1),
        ),
        (
            S.SamplerSpec(nsga2=S.NsgaIISampler(seed=1, population_size=4)),
            lambda: optuna.samplers.NSGAIISampler(seed=1, population_size=4),
        ),
    ]:
        assert _suggestions(build_sampler(spec, n_objectives=1), 14) == _suggestions(direct(), 14)


def test_experimental_warnings_are_silenced():
    specs = [
        S.SamplerSpec(bruteforce=S.BruteForceSampler()),
        S.SamplerSpec(tpe=S.TpeSampler(group=True)),
        S.SamplerSpec(nsga2=S.NsgaIISampler(crossover="undx")),
        S.SamplerSpec(cmaes=S.CmaEsSampler(with_margin=True)),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for spec in specs:
            build_sampler(spec, n_objectives=1)
        build_pruner(S.PrunerSpec(wilcoxon=S.WilcoxonPruner()), n_objectives=1)
        build_pruner(S.PrunerSpec(patient=S.PatientPruner(patience=1)), n_objectives=1)
    assert [w for w in caught if issubclass(w.category, ExperimentalWarning)] == []


def test_gp_without_torch(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(FailedPrecondition, match="gp sampler needs torch") as e:
        build_sampler(S.SamplerSpec(gp=S.GpSampler()), n_objectives=1)
    assert e.value.field == "sampler.gp"


def test_cmaes_rejects_multi_objective():
    with pytest.raises(InvalidArgument, match="single-objective") as e:
        build_sampler(S.SamplerSpec(cmaes=S.CmaEsSampler()), n_objectives=2)
    assert e.value.field == "sampler.cmaes"


def test_cmaes_empty_x0_means_unset():
    spec = S.SamplerSpec(cmaes=S.CmaEsSampler(x0=struct_pb2.Struct()))
    assert spec.cmaes.HasField("x0")
    assert build_sampler(spec, n_objectives=1)._x0 is None


def test_grid_values_of_every_type():
    spec = S.SamplerSpec(
        grid=S.GridSampler(
            search_space=[
                S.GridAxis(name="a", values=[_v(1), _v(2.5), _v("s"), _v(True), _v(None)])
            ]
        )
    )
    sampler = build_sampler(spec, n_objectives=1)
    values = sampler._search_space["a"]
    assert values == [1, 2.5, "s", True, None]
    assert [type(v) for v in values] == [int, float, str, bool, type(None)]


# --- Sampler validation ------------------------------------------------------------------------


def _axis(name: str, *values: Any) -> S.GridAxis:
    return S.GridAxis(name=name, values=[_v(x) for x in values])


SAMPLER_ERRORS = [
    # (id, spec, field, words in the message)
    ("tpe seed<0", S.SamplerSpec(tpe=S.TpeSampler(seed=-1)), "sampler.tpe.seed", "2**32"),
    ("tpe seed big", S.SamplerSpec(tpe=S.TpeSampler(seed=2**32)), "sampler.tpe.seed", "2**32"),
    (
        "tpe startup",
        S.SamplerSpec(tpe=S.TpeSampler(n_startup_trials=-1)),
        "sampler.tpe.n_startup_trials",
        ">= 0",
    ),
    (
        "tpe ei",
        S.SamplerSpec(tpe=S.TpeSampler(n_ei_candidates=0)),
        "sampler.tpe.n_ei_candidates",
        ">= 1",
    ),
    (
        "tpe prior weight",
        S.SamplerSpec(tpe=S.TpeSampler(prior_weight=0.0)),
        "sampler.tpe.prior_weight",
        "> 0",
    ),
    (
        "tpe prior weight nan",
        S.SamplerSpec(tpe=S.TpeSampler(prior_weight=math.nan)),
        "sampler.tpe.prior_weight",
        "> 0",
    ),
    (
        "tpe group without multivariate (Optuna's check)",
        S.SamplerSpec(tpe=S.TpeSampler(group=True, multivariate=False)),
        "sampler.tpe",
        "multivariate",
    ),
    ("random seed", S.SamplerSpec(random=S.RandomSampler(seed=-5)), "sampler.random.seed", "seed"),
    ("grid no axis", S.SamplerSpec(grid=S.GridSampler()), "sampler.grid.search_space", "axis"),
    (
        "grid empty axis",
        S.SamplerSpec(grid=S.GridSampler(search_space=[_axis("x", 1), _axis("y")])),
        "sampler.grid.search_space[1].values",
        "'y'",
    ),
    (
        "grid repeated name",
        S.SamplerSpec(grid=S.GridSampler(search_space=[_axis("x", 1), _axis("x", 2)])),
        "sampler.grid.search_space[1].name",
        "repeats",
    ),
    (
        "grid no name",
        S.SamplerSpec(grid=S.GridSampler(search_space=[_axis("", 1)])),
        "sampler.grid.search_space[0].name",
        "empty",
    ),
    (
        "grid unset value",
        S.SamplerSpec(
            grid=S.GridSampler(
                search_space=[S.GridAxis(name="x", values=[_v(1), types_pb2.Value()])]
            )
        ),
        "sampler.grid.search_space[0].values[1]",
        "unset",
    ),
    (
        "grid seed",
        S.SamplerSpec(grid=S.GridSampler(search_space=[_axis("x", 1)], seed=-1)),
        "sampler.grid.seed",
        "2**32",
    ),
    (
        "cmaes sigma0",
        S.SamplerSpec(cmaes=S.CmaEsSampler(sigma0=0.0)),
        "sampler.cmaes.sigma0",
        "> 0",
    ),
    (
        "cmaes sigma0 inf",
        S.SamplerSpec(cmaes=S.CmaEsSampler(sigma0=math.inf)),
        "sampler.cmaes.sigma0",
        "finite",
    ),
    (
        "cmaes restart",
        S.SamplerSpec(cmaes=S.CmaEsSampler(restart_strategy="lipop")),
        "sampler.cmaes.restart_strategy",
        "ipop, bipop",
    ),
    (
        "cmaes popsize",
        S.SamplerSpec(cmaes=S.CmaEsSampler(popsize=1)),
        "sampler.cmaes.popsize",
        ">= 2",
    ),
    (
        "cmaes inc_popsize",
        S.SamplerSpec(cmaes=S.CmaEsSampler(inc_popsize=0)),
        "sampler.cmaes.inc_popsize",
        ">= 1",
    ),
    (
        "cmaes startup",
        S.SamplerSpec(cmaes=S.CmaEsSampler(n_startup_trials=-2)),
        "sampler.cmaes.n_startup_trials",
        ">= 0",
    ),
    (
        "cmaes x0 not a number",
        S.SamplerSpec(
            cmaes=S.CmaEsSampler(
                x0=struct_pb2.Struct(fields={"lr": struct_pb2.Value(string_value="high")})
            )
        ),
        "sampler.cmaes.x0.lr",
        "finite number",
    ),
    (
        "cmaes x0 nan",
        S.SamplerSpec(
            cmaes=S.CmaEsSampler(
                x0=struct_pb2.Struct(fields={"lr": struct_pb2.Value(number_value=math.nan)})
            )
        ),
        "sampler.cmaes.x0.lr",
        "finite number",
    ),
    (
        "cmaes separable with margin (Optuna's check)",
        S.SamplerSpec(cmaes=S.CmaEsSampler(use_separable_cma=True, with_margin=True)),
        "sampler.cmaes",
        "with_margin",
    ),
    (
        "cmaes lr_adapt with margin (Optuna's check)",
        S.SamplerSpec(cmaes=S.CmaEsSampler(lr_adapt=True, with_margin=True)),
        "sampler.cmaes",
        "lr_adapt",
    ),
    (
        "gp startup",
        S.SamplerSpec(gp=S.GpSampler(n_startup_trials=-1)),
        "sampler.gp.n_startup_trials",
        ">= 0",
    ),
    ("gp seed", S.SamplerSpec(gp=S.GpSampler(seed=2**40)), "sampler.gp.seed", "2**32"),
    (
        "qmc type",
        S.SamplerSpec(qmc=S.QmcSampler(qmc_type="lhs")),
        "sampler.qmc.qmc_type",
        "sobol, halton",
    ),
    ("qmc seed", S.SamplerSpec(qmc=S.QmcSampler(seed=-3)), "sampler.qmc.seed", "2**32"),
    (
        "nsga2 population",
        S.SamplerSpec(nsga2=S.NsgaIISampler(population_size=1)),
        "sampler.nsga2.population_size",
        ">= 2",
    ),
    (
        "nsga2 mutation",
        S.SamplerSpec(nsga2=S.NsgaIISampler(mutation_prob=1.5)),
        "sampler.nsga2.mutation_prob",
        "[0, 1]",
    ),
    (
        "nsga2 crossover prob nan",
        S.SamplerSpec(nsga2=S.NsgaIISampler(crossover_prob=math.nan)),
        "sampler.nsga2.crossover_prob",
        "[0, 1]",
    ),
    (
        "nsga2 swapping",
        S.SamplerSpec(nsga2=S.NsgaIISampler(swapping_prob=-0.1)),
        "sampler.nsga2.swapping_prob",
        "[0, 1]",
    ),
    (
        "nsga2 crossover name",
        S.SamplerSpec(nsga2=S.NsgaIISampler(crossover="onepoint")),
        "sampler.nsga2.crossover",
        "uniform, blxalpha, sbx, vsbx, undx, spx",
    ),
    (
        "nsga2 population below crossover parents (Optuna's check)",
        S.SamplerSpec(nsga2=S.NsgaIISampler(population_size=2, crossover="undx")),
        "sampler.nsga2",
        "greater than or equal to 3",
    ),
    (
        "nsga3 dividing",
        S.SamplerSpec(nsga3=S.NsgaIIISampler(dividing_parameter=0)),
        "sampler.nsga3.dividing_parameter",
        ">= 1",
    ),
    (
        "nsga3 crossover name",
        S.SamplerSpec(nsga3=S.NsgaIIISampler(crossover="UNDX")),
        "sampler.nsga3.crossover",
        "one of",
    ),
    (
        "bruteforce seed",
        S.SamplerSpec(bruteforce=S.BruteForceSampler(seed=-1)),
        "sampler.bruteforce.seed",
        "2**32",
    ),
    (
        "unknown sampler",
        S.SamplerSpec.FromString(UNKNOWN_FIELD_100),
        "sampler",
        "known samplers: tpe, random, grid, cmaes, gp, qmc, nsga2, nsga3, bruteforce",
    ),
    (
        # tpe (field 1) holding an unknown varint field 50 = 1: tag 400 = varint 90 03.
        "unknown tpe option",
        S.SamplerSpec.FromString(b"\x0a\x03\x90\x03\x01"),
        "sampler.tpe",
        "does not know",
    ),
]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in SAMPLER_ERRORS],
)
def test_sampler_validation(spec: S.SamplerSpec, field: str, words: str):
    with pytest.raises(InvalidArgument) as e:
        build_sampler(spec, n_objectives=1)
    assert e.value.field == field
    assert words in e.value.message
    assert field in e.value.message


def test_unknown_field_bytes_really_are_unknown():
    spec = S.SamplerSpec.FromString(UNKNOWN_FIELD_100)
    assert spec.WhichOneof("kind") is None
    assert [f.field_number for f in unknown_fields.UnknownFieldSet(spec)] == [100]
    tpe = S.SamplerSpec.FromString(b"\x0a\x03\x90\x03\x01")
    assert tpe.WhichOneof("kind") == "tpe"
    assert [f.field_number for f in unknown_fields.UnknownFieldSet(tpe.tpe)] == [50]


# --- Pruners -----------------------------------------------------------------------------------

FULL_PRUNERS: dict[str, tuple[S.PrunerSpec, type, dict[str, Any]]] = {
    "median": (
        S.PrunerSpec(
            median=S.MedianPruner(
                n_startup_trials=2, n_warmup_steps=3, interval_steps=4, n_min_trials=5
            )
        ),
        optuna.pruners.MedianPruner,
        {
            "_percentile": 50.0,
            "_n_startup_trials": 2,
            "_n_warmup_steps": 3,
            "_interval_steps": 4,
            "_n_min_trials": 5,
        },
    ),
    "percentile": (
        S.PrunerSpec(
            percentile=S.PercentilePruner(
                percentile=25.0,
                n_startup_trials=1,
                n_warmup_steps=2,
                interval_steps=3,
                n_min_trials=4,
            )
        ),
        optuna.pruners.PercentilePruner,
        {
            "_percentile": 25.0,
            "_n_startup_trials": 1,
            "_n_warmup_steps": 2,
            "_interval_steps": 3,
            "_n_min_trials": 4,
        },
    ),
    "successive_halving": (
        S.PrunerSpec(
            successive_halving=S.SuccessiveHalvingPruner(
                min_resource=2, reduction_factor=3, min_early_stopping_rate=1, bootstrap_count=4
            )
        ),
        optuna.pruners.SuccessiveHalvingPruner,
        {
            "_min_resource": 2,
            "_reduction_factor": 3,
            "_min_early_stopping_rate": 1,
            "_bootstrap_count": 4,
        },
    ),
    "hyperband": (
        S.PrunerSpec(
            hyperband=S.HyperbandPruner(
                min_resource=2, max_resource=50, reduction_factor=4, bootstrap_count=1
            )
        ),
        optuna.pruners.HyperbandPruner,
        {"_min_resource": 2, "_max_resource": 50, "_reduction_factor": 4, "_bootstrap_count": 1},
    ),
    "threshold": (
        S.PrunerSpec(
            threshold=S.ThresholdPruner(lower=-1.0, upper=3.0, n_warmup_steps=2, interval_steps=5)
        ),
        optuna.pruners.ThresholdPruner,
        {"_lower": -1.0, "_upper": 3.0, "_n_warmup_steps": 2, "_interval_steps": 5},
    ),
    "patient": (
        S.PrunerSpec(
            patient=S.PatientPruner(
                wrapped_pruner=S.PrunerSpec(median=S.MedianPruner(n_startup_trials=7)),
                patience=3,
                min_delta=0.5,
            )
        ),
        optuna.pruners.PatientPruner,
        {"_patience": 3, "_min_delta": 0.5, "_wrapped_pruner._n_startup_trials": 7},
    ),
    "wilcoxon": (
        S.PrunerSpec(wilcoxon=S.WilcoxonPruner(p_threshold=0.05, n_startup_steps=4)),
        optuna.pruners.WilcoxonPruner,
        {"_p_threshold": 0.05, "_n_startup_steps": 4},
    ),
    "none": (S.PrunerSpec(none=S.NopPruner()), optuna.pruners.NopPruner, {}),
}


def test_full_pruners_cover_every_name():
    assert list(FULL_PRUNERS) == list(PRUNER_NAMES)


@pytest.mark.parametrize("name", list(FULL_PRUNERS))
def test_pruner_with_every_field(name: str):
    spec, cls, attrs = FULL_PRUNERS[name]
    pruner = build_pruner(spec, n_objectives=1)
    assert type(pruner) is cls
    for path, expected in attrs.items():
        assert _attr(pruner, path) == expected, path


DEFAULT_PRUNERS = {
    "median": (S.MedianPruner(), lambda: optuna.pruners.MedianPruner()),
    "percentile": (S.PercentilePruner(), lambda: optuna.pruners.PercentilePruner(0.0)),
    "successive_halving": (
        S.SuccessiveHalvingPruner(),
        lambda: optuna.pruners.SuccessiveHalvingPruner(),
    ),
    "hyperband": (S.HyperbandPruner(), lambda: optuna.pruners.HyperbandPruner()),
    "threshold": (S.ThresholdPruner(upper=1.0), lambda: optuna.pruners.ThresholdPruner(upper=1.0)),
    "patient": (S.PatientPruner(), lambda: optuna.pruners.PatientPruner(None, 0)),
    "wilcoxon": (S.WilcoxonPruner(), lambda: optuna.pruners.WilcoxonPruner()),
    "none": (S.NopPruner(), lambda: optuna.pruners.NopPruner()),
}


@pytest.mark.parametrize("name", PRUNER_NAMES)
def test_pruner_defaults_are_optunas(name: str):
    message, direct = DEFAULT_PRUNERS[name]
    pruner = build_pruner(S.PrunerSpec(**{name: message}), n_objectives=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = direct()
    assert type(pruner) is type(expected)
    assert vars(pruner) == vars(expected)


def test_patient_wraps_median():
    spec = S.PrunerSpec(
        patient=S.PatientPruner(wrapped_pruner=S.PrunerSpec(median=S.MedianPruner()), patience=2)
    )
    pruner = build_pruner(spec, n_objectives=1)
    assert isinstance(pruner, optuna.pruners.PatientPruner)
    assert type(pruner._wrapped_pruner) is optuna.pruners.MedianPruner


@pytest.mark.parametrize("wrapped", [None, S.PrunerSpec()], ids=["unset", "empty"])
def test_patient_without_wrapped_pruner(wrapped: S.PrunerSpec | None):
    message = S.PatientPruner(patience=2)
    if wrapped is not None:
        message.wrapped_pruner.CopyFrom(wrapped)
        assert message.HasField("wrapped_pruner")
    pruner = build_pruner(S.PrunerSpec(patient=message), n_objectives=1)
    assert pruner._wrapped_pruner is None


def test_patient_wraps_patient():
    inner = S.PrunerSpec(
        patient=S.PatientPruner(
            wrapped_pruner=S.PrunerSpec(percentile=S.PercentilePruner(percentile=10)),
            patience=1,
        )
    )
    pruner = build_pruner(
        S.PrunerSpec(patient=S.PatientPruner(wrapped_pruner=inner, patience=2)), n_objectives=1
    )
    assert type(pruner._wrapped_pruner._wrapped_pruner) is optuna.pruners.PercentilePruner


def test_pruning_decisions_match_optuna():
    def run(pruner: optuna.pruners.BasePruner) -> list[optuna.trial.TrialState]:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner)

        def objective(trial: optuna.Trial) -> float:
            x = trial.suggest_float("x", 0, 1)
            for step in range(10):
                trial.report(x * (10 - step), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return x

        study.optimize(objective, n_trials=20)
        return [t.state for t in study.trials]

    spec = S.PrunerSpec(median=S.MedianPruner(n_startup_trials=3, n_warmup_steps=2))
    states = run(build_pruner(spec, n_objectives=1))
    assert states == run(optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2))
    assert optuna.trial.TrialState.PRUNED in states


@pytest.mark.parametrize("name", [n for n in PRUNER_NAMES if n != "none"])
def test_multi_objective_refuses_pruning(name: str):
    spec = S.PrunerSpec(**{name: DEFAULT_PRUNERS[name][0]})
    with pytest.raises(InvalidArgument, match="not supported for multi-objective") as e:
        build_pruner(spec, n_objectives=2)
    assert e.value.field == "pruner"
    assert "use pruner none" in e.value.message


def test_multi_objective_accepts_none():
    spec = S.PrunerSpec(none=S.NopPruner())
    assert type(build_pruner(spec, n_objectives=2)) is optuna.pruners.NopPruner


def _patient_wrapping(wrapped: S.PrunerSpec) -> S.PrunerSpec:
    return S.PrunerSpec(patient=S.PatientPruner(wrapped_pruner=wrapped, patience=1))


PRUNER_ERRORS = [
    (
        "median startup",
        S.PrunerSpec(median=S.MedianPruner(n_startup_trials=-1)),
        "pruner.median.n_startup_trials",
        ">= 0",
    ),
    (
        "median warmup",
        S.PrunerSpec(median=S.MedianPruner(n_warmup_steps=-1)),
        "pruner.median.n_warmup_steps",
        ">= 0",
    ),
    (
        "median interval",
        S.PrunerSpec(median=S.MedianPruner(interval_steps=0)),
        "pruner.median.interval_steps",
        ">= 1",
    ),
    (
        "median min trials",
        S.PrunerSpec(median=S.MedianPruner(n_min_trials=0)),
        "pruner.median.n_min_trials",
        ">= 1",
    ),
    (
        "percentile high",
        S.PrunerSpec(percentile=S.PercentilePruner(percentile=100.5)),
        "pruner.percentile.percentile",
        "[0, 100]",
    ),
    (
        "percentile nan",
        S.PrunerSpec(percentile=S.PercentilePruner(percentile=math.nan)),
        "pruner.percentile.percentile",
        "[0, 100]",
    ),
    (
        "percentile interval",
        S.PrunerSpec(percentile=S.PercentilePruner(percentile=5, interval_steps=0)),
        "pruner.percentile.interval_steps",
        ">= 1",
    ),
    (
        "sh min resource",
        S.PrunerSpec(successive_halving=S.SuccessiveHalvingPruner(min_resource=0)),
        "pruner.successive_halving.min_resource",
        ">= 1",
    ),
    (
        "sh reduction",
        S.PrunerSpec(successive_halving=S.SuccessiveHalvingPruner(reduction_factor=1)),
        "pruner.successive_halving.reduction_factor",
        ">= 2",
    ),
    (
        "sh rate",
        S.PrunerSpec(successive_halving=S.SuccessiveHalvingPruner(min_early_stopping_rate=-1)),
        "pruner.successive_halving.min_early_stopping_rate",
        ">= 0",
    ),
    (
        "sh bootstrap",
        S.PrunerSpec(successive_halving=S.SuccessiveHalvingPruner(bootstrap_count=-1)),
        "pruner.successive_halving.bootstrap_count",
        ">= 0",
    ),
    (
        "sh bootstrap with auto (Optuna's check)",
        S.PrunerSpec(successive_halving=S.SuccessiveHalvingPruner(bootstrap_count=2)),
        "pruner.successive_halving",
        "auto",
    ),
    (
        "hyperband min resource",
        S.PrunerSpec(hyperband=S.HyperbandPruner(min_resource=0)),
        "pruner.hyperband.min_resource",
        ">= 1",
    ),
    (
        "hyperband max resource",
        S.PrunerSpec(hyperband=S.HyperbandPruner(max_resource=0)),
        "pruner.hyperband.max_resource",
        ">= 1",
    ),
    (
        "hyperband max below min",
        S.PrunerSpec(hyperband=S.HyperbandPruner(min_resource=10, max_resource=5)),
        "pruner.hyperband.max_resource",
        ">= min_resource",
    ),
    (
        "hyperband reduction",
        S.PrunerSpec(hyperband=S.HyperbandPruner(reduction_factor=1)),
        "pruner.hyperband.reduction_factor",
        ">= 2",
    ),
    (
        "hyperband bootstrap with auto (Optuna's check)",
        S.PrunerSpec(hyperband=S.HyperbandPruner(bootstrap_count=1)),
        "pruner.hyperband",
        "auto",
    ),
    (
        "threshold neither",
        S.PrunerSpec(threshold=S.ThresholdPruner(n_warmup_steps=1)),
        "pruner.threshold",
        "lower, upper",
    ),
    (
        "threshold inverted",
        S.PrunerSpec(threshold=S.ThresholdPruner(lower=2.0, upper=1.0)),
        "pruner.threshold.lower",
        "<= upper",
    ),
    (
        "threshold lower nan",
        S.PrunerSpec(threshold=S.ThresholdPruner(lower=math.nan)),
        "pruner.threshold.lower",
        "NaN",
    ),
    (
        "threshold upper nan",
        S.PrunerSpec(threshold=S.ThresholdPruner(lower=0.0, upper=math.nan)),
        "pruner.threshold.upper",
        "NaN",
    ),
    (
        "threshold warmup",
        S.PrunerSpec(threshold=S.ThresholdPruner(upper=1.0, n_warmup_steps=-1)),
        "pruner.threshold.n_warmup_steps",
        ">= 0",
    ),
    (
        "threshold interval",
        S.PrunerSpec(threshold=S.ThresholdPruner(upper=1.0, interval_steps=0)),
        "pruner.threshold.interval_steps",
        ">= 1",
    ),
    (
        "patient patience",
        S.PrunerSpec(patient=S.PatientPruner(patience=-1)),
        "pruner.patient.patience",
        ">= 0",
    ),
    (
        "patient min delta",
        S.PrunerSpec(patient=S.PatientPruner(patience=1, min_delta=-0.1)),
        "pruner.patient.min_delta",
        ">= 0",
    ),
    (
        "patient min delta nan",
        S.PrunerSpec(patient=S.PatientPruner(patience=1, min_delta=math.nan)),
        "pruner.patient.min_delta",
        ">= 0",
    ),
    (
        "patient wrapped invalid",
        _patient_wrapping(S.PrunerSpec(median=S.MedianPruner(interval_steps=0))),
        "pruner.patient.wrapped_pruner.median.interval_steps",
        ">= 1",
    ),
    (
        "patient wrapped unknown",
        _patient_wrapping(S.PrunerSpec.FromString(UNKNOWN_FIELD_100)),
        "pruner.patient.wrapped_pruner",
        "known pruners: median, percentile",
    ),
    (
        "wilcoxon p",
        S.PrunerSpec(wilcoxon=S.WilcoxonPruner(p_threshold=1.1)),
        "pruner.wilcoxon.p_threshold",
        "[0, 1]",
    ),
    (
        "wilcoxon startup",
        S.PrunerSpec(wilcoxon=S.WilcoxonPruner(n_startup_steps=-1)),
        "pruner.wilcoxon.n_startup_steps",
        ">= 0",
    ),
    (
        "unknown pruner",
        S.PrunerSpec.FromString(UNKNOWN_FIELD_100),
        "pruner",
        "known pruners: median, percentile, successive_halving, hyperband, threshold, patient, "
        "wilcoxon, none",
    ),
]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in PRUNER_ERRORS],
)
def test_pruner_validation(spec: S.PrunerSpec, field: str, words: str):
    with pytest.raises(InvalidArgument) as e:
        build_pruner(spec, n_objectives=1)
    assert e.value.field == field
    assert words in e.value.message
    assert field in e.value.message


def test_unknown_pruner_multi_objective_says_unknown():
    with pytest.raises(InvalidArgument, match="unknown pruner") as e:
        build_pruner(S.PrunerSpec.FromString(UNKNOWN_FIELD_100), n_objectives=2)
    assert e.value.field == "pruner"


def test_wrapped_unknown_survives_nesting():
    # Guards the test above: the unknown field is still there after the message is nested.
    spec = _patient_wrapping(S.PrunerSpec.FromString(UNKNOWN_FIELD_100))
    spec = S.PrunerSpec.FromString(spec.SerializeToString())
    wrapped = spec.patient.wrapped_pruner
    assert wrapped.WhichOneof("kind") is None
    assert [f.field_number for f in unknown_fields.UnknownFieldSet(wrapped)] == [100]


# --- Values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "kind", "back"),
    [
        (1.5, "double_value", 1.5),
        (-3, "int_value", -3),
        (2**63 - 1, "int_value", 2**63 - 1),
        ("lr", "string_value", "lr"),
        ("", "string_value", ""),
        (True, "bool_value", True),
        (False, "bool_value", False),
        (None, "null_value", None),
        (np.float64(0.25), "double_value", 0.25),
        (np.float32(0.5), "double_value", 0.5),
        (np.int64(7), "int_value", 7),
        (np.int32(-2), "int_value", -2),
        (np.uint8(200), "int_value", 200),
        (np.bool_(True), "bool_value", True),
        (np.str_("s"), "string_value", "s"),
    ],
)
def test_value_round_trip(x: Any, kind: str, back: Any):
    v = value_to_proto(x)
    assert v.WhichOneof("kind") == kind
    out = value_from_proto(v)
    assert out == back
    assert type(out) is type(back)
    # Survives the wire, too.
    assert value_from_proto(types_pb2.Value.FromString(v.SerializeToString())) == back


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_value_from_proto_rejects_non_finite(x: float):
    # A NaN grid point, choice or enqueued value would poison every later ask.
    with pytest.raises(InvalidArgument, match="finite") as e:
        value_from_proto(value_to_proto(x), field="params.x")
    assert e.value.field == "params.x"


@pytest.mark.parametrize("x", [[1], {"a": 1}, (1,), object(), b"bytes", 2**63, -(2**63) - 1])
def test_value_to_proto_rejects(x: Any):
    with pytest.raises(InvalidArgument) as e:
        value_to_proto(x, field="params.x")
    assert e.value.field == "params.x"


def test_value_from_proto_rejects_unset():
    with pytest.raises(InvalidArgument, match="unset") as e:
        value_from_proto(types_pb2.Value(), field="choices[0]")
    assert e.value.field == "choices[0]"
