"""Seeded, one trainer: the service suggests exactly what the same study run in-process does."""

from __future__ import annotations

import math

import optuna
import pytest

from hposerve.client import CategoricalDistribution, FloatDistribution, IntDistribution
from hposerve.server.domain import _specs
from hposerve.v1 import specs_pb2

optuna.logging.set_verbosity(optuna.logging.WARNING)

SAMPLERS = {
    "tpe": (specs_pb2.SamplerSpec(tpe=specs_pb2.TpeSampler(seed=7)), 30),
    "random": (specs_pb2.SamplerSpec(random=specs_pb2.RandomSampler(seed=7)), 20),
    "cmaes": (specs_pb2.SamplerSpec(cmaes=specs_pb2.CmaEsSampler(seed=7)), 25),
    "qmc": (specs_pb2.SamplerSpec(qmc=specs_pb2.QmcSampler(seed=7, scramble=True)), 16),
}


def objective_value(params: dict) -> float:
    return (params["x"] - 1.3) ** 2 + math.log10(params["lr"]) ** 2 + 0.1 * params["n"]


def remote_space():
    return {
        "x": FloatDistribution(-5.0, 5.0),
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "n": IntDistribution(1, 8),
    }


def local_space():
    return {
        "x": optuna.distributions.FloatDistribution(-5.0, 5.0),
        "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
        "n": optuna.distributions.IntDistribution(1, 8),
    }


def local_study(spec):
    return optuna.create_study(sampler=_specs.build_sampler(spec, n_objectives=1))


def spec_dict(spec: specs_pb2.SamplerSpec) -> dict:
    from google.protobuf import json_format

    kind = spec.WhichOneof("kind")
    return {
        "type": kind,
        **json_format.MessageToDict(getattr(spec, kind), preserving_proto_field_name=True),
    }


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_fixed_space_parity(client, study_name, name):
    spec, n = SAMPLERS[name]
    remote = client.create_study(name=study_name, sampler=spec_dict(spec))
    local = local_study(spec)
    for _ in range(n):
        r = remote.ask(remote_space())
        t = local.ask(local_space())
        assert r.params == t.params
        remote.tell(r, objective_value(r.params))
        local.tell(t, objective_value(t.params))


@pytest.mark.parametrize("name", ["tpe", "random"])
def test_define_by_run_parity(client, study_name, name):
    spec, n = SAMPLERS[name]
    remote = client.create_study(name=study_name, sampler=spec_dict(spec))
    local = local_study(spec)

    def suggest(trial):
        params = {
            "x": trial.suggest_float("x", -5.0, 5.0),
            "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
            "n": trial.suggest_int("n", 1, 8),
        }
        if trial.suggest_categorical("extra", ["yes", "no"]) == "yes":
            params["x"] += trial.suggest_float("shift", 0.0, 1.0)
        return params

    for _ in range(n):
        r, t = remote.ask(), local.ask()
        pr, pt = suggest(r), suggest(t)
        assert r.params == t.params
        remote.tell(r, objective_value(pr))
        local.tell(t, objective_value(pt))


def test_grid_parity(client, study_name):
    grid = {"x": [-1.0, 0.0, 1.0], "n": [1, 2], "c": ["a", "b"]}
    remote = client.create_study(
        name=study_name, sampler={"type": "grid", "search_space": grid, "seed": 3}
    )
    local = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=3))
    remote_space_ = {
        "x": FloatDistribution(-1.0, 1.0),
        "n": IntDistribution(1, 2),
        "c": CategoricalDistribution(["a", "b"]),
    }
    local_space_ = {
        "x": optuna.distributions.FloatDistribution(-1.0, 1.0),
        "n": optuna.distributions.IntDistribution(1, 2),
        "c": optuna.distributions.CategoricalDistribution(["a", "b"]),
    }
    seen = []
    for _ in range(12):
        r, t = remote.ask(remote_space_), local.ask(local_space_)
        assert r.params == t.params
        seen.append(tuple(sorted(r.params.items())))
        remote.tell(r, 0.0)
        try:
            local.tell(t, 0.0)
        except RuntimeError as e:  # in-process, the exhausted grid asks to stop the loop
            assert "Study.stop" in str(e)
    assert len(set(seen)) == 12  # the whole grid, each point once
