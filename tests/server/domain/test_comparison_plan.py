"""Comparison planning and scheduling, on ``ComparisonRegistry`` in-process (no gRPC).

What the README's "Comparing methods" promises: member studies named
``{comparison}.{arm}.s{seed}``; seeds per member; arm names; grids derived for the budget and
never truncated silently; asks that go to the member furthest behind and stop at the budget;
retried asks; half-created comparisons; get-or-create.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from hposerve.server.domain import (
    AlreadyExists,
    ComparisonArm,
    ComparisonRef,
    ComparisonRegistry,
    ComparisonSpec,
    FailedPrecondition,
    InvalidArgument,
    StudyRef,
    StudyRegistry,
)
from hposerve.server.storage import close_storage, open_storage
from hposerve.v1 import specs_pb2, types_pb2

BRANIN = {"x0": FloatDistribution(-5.0, 10.0), "x1": FloatDistribution(0.0, 15.0)}
HARTMANN6 = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(6)}
REF = ComparisonRef("default", "cmp")


def random_arm(name: str = "", seed: int | None = None) -> ComparisonArm:
    inner = specs_pb2.RandomSampler() if seed is None else specs_pb2.RandomSampler(seed=seed)
    return ComparisonArm(name=name, sampler=specs_pb2.SamplerSpec(random=inner))


def tpe_arm(name: str = "", seed: int | None = None) -> ComparisonArm:
    inner = specs_pb2.TpeSampler() if seed is None else specs_pb2.TpeSampler(seed=seed)
    return ComparisonArm(name=name, sampler=specs_pb2.SamplerSpec(tpe=inner))


def grid_arm(
    grid: dict[str, list[float]] | None = None, *, shuffle_grid: bool = False
) -> ComparisonArm:
    axes = [
        specs_pb2.GridAxis(name=n, values=[types_pb2.Value(double_value=v) for v in values])
        for n, values in (grid or {}).items()
    ]
    sampler = specs_pb2.SamplerSpec(grid=specs_pb2.GridSampler(search_space=axes))
    return ComparisonArm(name="", sampler=sampler, shuffle_grid=shuffle_grid)


def spec(*arms: ComparisonArm, seeds: int = 2, trials: int = 3, **kwargs: Any) -> ComparisonSpec:
    return ComparisonSpec(
        search_space=kwargs.pop("space", BRANIN),
        arms=arms,
        seeds=seeds,
        trials_per_study=trials,
        **kwargs,
    )


@pytest.fixture
def studies(tmp_path: Path) -> Iterator[StudyRegistry]:
    storage = open_storage(None, data_dir=tmp_path / "data")
    registry = StudyRegistry(storage)  # starts no reaper: nothing here expires
    try:
        yield registry
    finally:
        registry.close()
        close_storage(storage)


@pytest.fixture
def comparisons(studies: StudyRegistry) -> ComparisonRegistry:
    return ComparisonRegistry(studies)


def member_sampler(studies: StudyRegistry, study: StudyRef) -> specs_pb2.SamplerSpec:
    return studies.get_study(study).config.sampler


# -- the plan -------------------------------------------------------------------------------------


def test_members_are_named_comparison_arm_seed(comparisons: ComparisonRegistry) -> None:
    info = comparisons.create_comparison(REF, spec(random_arm(), tpe_arm("mine"), seeds=3))
    assert [(m.arm, m.seed, str(m.study)) for m in info.members] == [
        (arm, s, f"namespaces/default/studies/cmp.{arm}.s{s}")
        for arm, s in itertools.product(["random", "mine"], range(3))
    ]
    assert all(m.asked == m.finished == m.complete == 0 for m in info.members)
    assert all(m.best_value is None for m in info.members)
    assert [m.study for m in info.members] == [
        REF.member(arm, s) for arm in ("random", "mine") for s in range(3)
    ]


def test_member_seeds(comparisons: ComparisonRegistry, studies: StudyRegistry) -> None:
    info = comparisons.create_comparison(
        REF, spec(random_arm(), tpe_arm(seed=100), random_arm("zero", seed=0), seeds=3)
    )
    seeds = {}
    for m in info.members:
        sampler = member_sampler(studies, m.study)
        seeds[m.arm, m.seed] = getattr(sampler, sampler.WhichOneof("kind")).seed
    # No seed in the arm: member s gets seed s. A seed in the arm: seed + s.
    assert seeds == {
        **{("random", s): s for s in range(3)},
        **{("tpe", s): 100 + s for s in range(3)},
        **{("zero", s): s for s in range(3)},
    }


def test_arm_names_default_to_the_sampler_type(comparisons: ComparisonRegistry) -> None:
    info = comparisons.create_comparison(REF, spec(random_arm(), tpe_arm(), grid_arm(), trials=4))
    assert [a.name for a in info.spec.arms] == ["random", "tpe", "grid"]
    assert {m.arm for m in info.members} == {"random", "tpe", "grid"}


@pytest.mark.parametrize(
    "arms",
    [
        (random_arm(), random_arm(seed=5)),
        (random_arm(), tpe_arm("random")),
        (tpe_arm("a"), random_arm("a")),
    ],
    ids=["both-default", "default-and-given", "both-given"],
)
def test_arm_names_must_be_unique(
    comparisons: ComparisonRegistry, studies: StudyRegistry, arms: tuple[ComparisonArm, ...]
) -> None:
    with pytest.raises(InvalidArgument, match="repeats the name of arms") as exc:
        comparisons.create_comparison(REF, spec(*arms))
    assert exc.value.field == "arms[1].name"
    assert studies.list_studies("default", after="", limit=100) == []


@pytest.mark.parametrize("arm_name", ["a.b", "-a", "a" * 65, "a b"])
def test_arm_names_must_be_valid(comparisons: ComparisonRegistry, arm_name: str) -> None:
    with pytest.raises(InvalidArgument, match="not a valid arm name") as exc:
        comparisons.create_comparison(REF, spec(random_arm(arm_name)))
    assert exc.value.field == "arms[0].name"


# -- grids ----------------------------------------------------------------------------------------


def grid_axes(studies: StudyRegistry, study: StudyRef) -> dict[str, int]:
    grid = member_sampler(studies, study).grid
    return {axis.name: len(axis.values) for axis in grid.search_space}


@pytest.mark.parametrize(
    ("space", "trials", "axes"),
    [
        (BRANIN, 100, [10, 10]),
        (HARTMANN6, 96, [3, 2, 2, 2, 2, 2]),
        (HARTMANN6, 100, [3, 2, 2, 2, 2, 2]),
    ],
    ids=["branin-100", "hartmann6-96", "hartmann6-100"],
)
def test_derived_grid_fits_the_budget(
    comparisons: ComparisonRegistry,
    studies: StudyRegistry,
    space: dict[str, FloatDistribution],
    trials: int,
    axes: list[int],
) -> None:
    info = comparisons.create_comparison(
        REF, spec(grid_arm(), random_arm(), space=space, seeds=2, trials=trials)
    )
    size = 1
    for n in axes:
        size *= n
    assert info.grid_sizes == {"grid": size}
    for member in info.members:
        if member.arm == "grid":  # every member of the arm has the same grid
            assert grid_axes(studies, member.study) == dict(zip(space, axes, strict=True))


def test_grid_larger_than_the_budget_is_refused(
    comparisons: ComparisonRegistry, studies: StudyRegistry
) -> None:
    grid = {"x0": [-4.0, 0.0, 4.0, 8.0], "x1": [1.0, 5.0, 9.0, 13.0]}  # 16 points
    with pytest.raises(InvalidArgument, match="more than trials_per_study 10") as exc:
        comparisons.create_comparison(REF, spec(grid_arm(grid), trials=10))
    assert exc.value.field == "arms[0].sampler.grid.search_space"
    assert "16" in exc.value.message and "shuffle_grid" in exc.value.message
    assert studies.list_studies("default", after="", limit=100) == []
    # Asked for, a random subset of it is evaluated.
    info = comparisons.create_comparison(REF, spec(grid_arm(grid, shuffle_grid=True), trials=10))
    assert info.grid_sizes == {"grid": 16}


def test_derived_grid_too_large_for_the_budget(comparisons: ComparisonRegistry) -> None:
    space = {
        "a": CategoricalDistribution(["p", "q", "r"]),
        "b": CategoricalDistribution(["s", "t", "u"]),
    }
    with pytest.raises(InvalidArgument, match="cannot derive a grid") as exc:
        comparisons.create_comparison(REF, spec(grid_arm(), space=space, trials=5))
    assert "9" in exc.value.message
    info = comparisons.create_comparison(
        REF, spec(grid_arm(shuffle_grid=True), space=space, trials=5)
    )
    assert info.grid_sizes == {"grid": 9}


def test_shuffle_grid_is_for_grid_arms_only(comparisons: ComparisonRegistry) -> None:
    arm = ComparisonArm(name="", sampler=random_arm().sampler, shuffle_grid=True)
    with pytest.raises(InvalidArgument, match="grid samplers only") as exc:
        comparisons.create_comparison(REF, spec(arm))
    assert exc.value.field == "arms[0].shuffle_grid"


# -- scheduling -----------------------------------------------------------------------------------


def asked(comparisons: ComparisonRegistry, n: int) -> list[tuple[str, int]]:
    out = []
    for _ in range(n):
        ask = comparisons.ask(REF)
        assert not ask.done and ask.trial is not None and ask.study is not None
        assert ask.study == REF.member(ask.arm, ask.seed)
        assert ask.trial.trial.params.keys() == BRANIN.keys()  # the whole space, sampled
        out.append((ask.arm, ask.seed))
    return out


def test_ties_go_to_the_lowest_seed_then_the_first_arm(comparisons: ComparisonRegistry) -> None:
    comparisons.create_comparison(REF, spec(tpe_arm(), random_arm(), seeds=2, trials=2))
    one_round = [("tpe", 0), ("random", 0), ("tpe", 1), ("random", 1)]
    assert asked(comparisons, 8) == one_round * 2


def test_the_ask_goes_to_the_member_that_handed_out_fewest(
    comparisons: ComparisonRegistry, studies: StudyRegistry
) -> None:
    comparisons.create_comparison(REF, spec(random_arm(), tpe_arm(), seeds=2, trials=4))
    # Trials handed out by the member studies themselves count, finished or not.
    (first,) = studies.ask(REF.member("random", 0), search_space=BRANIN)
    studies.ask(REF.member("random", 0), search_space=BRANIN)
    studies.ask(REF.member("tpe", 1), search_space=BRANIN)
    studies.tell(first.ref, state=first.trial.state.COMPLETE, values=[1.0])
    # Enqueued (waiting) trials have not been handed out: they do not count.
    studies.enqueue(
        REF.member("random", 1), params={"x0": 0.0, "x1": 0.0}, user_attrs={}, skip_if_exists=False
    )
    # Fewest handed out first; among those the lowest seed, then the first arm.
    assert asked(comparisons, 5) == [
        ("tpe", 0),  # 0 handed out, seed 0
        ("random", 1),  # 0 handed out, seed 1: its enqueued trial
        ("tpe", 0),
        ("random", 1),
        ("tpe", 1),
    ]
    (enqueued, _) = studies.list_trials(REF.member("random", 1), states=(), after=-1, limit=9)
    assert enqueued.trial.params == {"x0": 0.0, "x1": 0.0}
    counts = [m.asked for m in comparisons.get_comparison(REF).members]
    assert counts == [2, 2, 2, 2]


def test_asks_stop_at_the_budget(comparisons: ComparisonRegistry, studies: StudyRegistry) -> None:
    comparisons.create_comparison(REF, spec(random_arm(), tpe_arm(), seeds=2, trials=3))
    trials = [comparisons.ask(REF) for _ in range(12)]
    assert not any(t.done for t in trials)
    info = comparisons.get_comparison(REF)
    assert info.done and not info.finished
    assert [m.asked for m in info.members] == [3, 3, 3, 3]
    for _ in range(2):
        done = comparisons.ask(REF)
        assert done.done and done.trial is None and done.study is None
    for t in trials:
        assert t.trial is not None
        studies.tell(t.trial.ref, state=t.trial.trial.state.COMPLETE, values=[float(t.seed)])
    info = comparisons.get_comparison(REF)
    assert info.finished
    assert [m.best_value for m in info.members] == [0.0, 1.0, 0.0, 1.0]
    assert (
        sum(len(studies.list_trials(m.study, states=(), after=-1, limit=100)) for m in info.members)
        == 12
    )


def test_a_retried_ask_returns_the_first_answer(
    comparisons: ComparisonRegistry, studies: StudyRegistry
) -> None:
    comparisons.create_comparison(REF, spec(random_arm(), seeds=2, trials=1))
    first = comparisons.ask(REF, request_id="r-1")
    again = comparisons.ask(REF, request_id="r-1")
    assert first.trial is not None and again.trial is not None
    assert (again.arm, again.seed, again.trial.ref) == (first.arm, first.seed, first.trial.ref)
    assert again.trial.trial.params == first.trial.trial.params
    assert sum(m.asked for m in comparisons.get_comparison(REF).members) == 1
    # Another request id is another request; past the budget, "done" is replayed too.
    other = comparisons.ask(REF, request_id="r-2")
    assert other.trial is not None and other.seed != first.seed
    assert comparisons.ask(REF, request_id="r-3").done
    assert comparisons.ask(REF, request_id="r-3").done
    assert comparisons.ask(REF, request_id="r-1").trial.ref == first.trial.ref  # type: ignore[union-attr]
    # A registry that has not seen the request (another replica, a restart) knows it too.
    fresh = ComparisonRegistry(studies)
    replay = fresh.ask(REF, request_id="r-2")
    assert replay.trial is not None and replay.trial.ref == other.trial.ref


def test_a_half_created_comparison_refuses_asks(
    comparisons: ComparisonRegistry, studies: StudyRegistry
) -> None:
    definition = spec(random_arm(), seeds=2, trials=2)
    comparisons.create_comparison(REF, definition)
    studies.delete_study(REF.member("random", 1))  # as if the create had stopped half-way
    for registry in (comparisons, ComparisonRegistry(studies)):
        with pytest.raises(FailedPrecondition, match="half-created") as exc:
            registry.ask(REF)
        assert "1 of its 2 member studies" in exc.value.message
        with pytest.raises(FailedPrecondition, match="half-created"):
            registry.get_comparison(REF)
    assert comparisons.list_comparisons("default", after="", limit=10) == []
    # The next create completes it (even without load_if_exists: it is not complete yet).
    info = comparisons.create_comparison(REF, definition)
    assert [m.study.study for m in info.members] == ["cmp.random.s0", "cmp.random.s1"]
    assert not comparisons.ask(REF).done


# -- get-or-create --------------------------------------------------------------------------------


def test_get_or_create(comparisons: ComparisonRegistry, studies: StudyRegistry) -> None:
    definition = spec(random_arm(), tpe_arm(), seeds=2, trials=3)
    created = comparisons.create_comparison(REF, definition, request_id="c-1")
    with pytest.raises(AlreadyExists, match="load_if_exists") as exc:
        comparisons.create_comparison(REF, definition)
    assert exc.value.field == "comparison_id"
    loaded = comparisons.create_comparison(REF, definition, load_if_exists=True)
    assert loaded.create_time == created.create_time
    assert loaded.members == created.members
    # A retried create (the same request id) is answered as the first.
    assert comparisons.create_comparison(REF, definition, request_id="c-1") == created
    # Another definition under the same name is refused, whatever is asked.
    other = spec(random_arm(), tpe_arm(), seeds=3, trials=3)
    with pytest.raises(FailedPrecondition, match="another definition") as exc2:
        comparisons.create_comparison(REF, other, load_if_exists=True)
    assert "seeds" in exc2.value.message and exc2.value.field == "comparison_id"
    renamed = spec(random_arm("rnd"), tpe_arm(), seeds=2, trials=3)
    with pytest.raises(FailedPrecondition, match="arms"):
        comparisons.create_comparison(REF, renamed, load_if_exists=True)
    assert len(studies.list_studies("default", after="", limit=100)) == 4
