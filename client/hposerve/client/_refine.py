"""Coarse-to-fine search: narrow a study's space around its best trials, and warm-start a new one.

The practitioner's recipe: a random search over wide (log-uniform) ranges first, then a finer
search around the best region. :func:`narrow_space` computes the finer space from the coarse
study's trials; :func:`refine_study` (``Client.refine``) creates the fine study, seeded with the
coarse trials that fall inside it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._distributions import (
    CategoricalDistribution,
    Distribution,
    FloatDistribution,
    IntDistribution,
    distribution_from_proto,
    distribution_to_proto,
    value_to_proto,
)
from ._errors import FailedPrecondition, InvalidArgument
from ._study import Study

if TYPE_CHECKING:
    from ._client import Client
    from ._trial import FrozenTrial

_logger = logging.getLogger("hposerve.client")

REFINED_FROM = "hposerve:refined_from"
"""User attribute of a warm-start trial: the resource name of the source trial it records."""

MIN_WIDTH = 0.1
"""The narrowest a numeric range gets, as a fraction of the original range (in log space for
log distributions), so that top trials sharing one value still leave room to search."""


def _as_distribution(distribution: Any) -> Distribution:
    """Our distribution for ours, Optuna's or a proto one."""
    if isinstance(distribution, (FloatDistribution, IntDistribution, CategoricalDistribution)):
        return distribution
    return distribution_from_proto(distribution_to_proto(distribution))


def _state_name(trial: Any) -> str:
    # Ours is a string; Optuna's TrialState is recognized by its member name.
    state = trial.state
    return (state if isinstance(state, str) else getattr(state, "name", str(state))).lower()


def _directions(direction: str | Sequence[str] | Any) -> list[str]:
    raw = [direction] if isinstance(direction, str) or hasattr(direction, "name") else direction
    names = [(d if isinstance(d, str) else getattr(d, "name", str(d))).lower() for d in raw]
    bad = [n for n in names if n not in ("minimize", "maximize")]
    if not names or bad:
        raise InvalidArgument(
            f"direction must be 'minimize' or 'maximize' (or one per objective), got {direction!r}",
            field_violations=[("direction", f"unknown direction {direction!r}")],
        )
    return names


def _usable(trial: Any, n_objectives: int) -> bool:
    values = trial.values
    return (
        _state_name(trial) == "complete"
        and values is not None
        and len(values) == n_objectives
        and not any(math.isnan(v) for v in values)
    )


def _count(top: int | float, n: int) -> int:
    if isinstance(top, bool) or not isinstance(top, (int, float)):
        raise InvalidArgument(f"top must be an int or a float, got {top!r}")
    if isinstance(top, int):
        if top < 1:
            raise InvalidArgument(f"top as a count must be at least 1, got {top}")
        return min(top, n)
    if not 0.0 < top <= 1.0:
        raise InvalidArgument(f"top as a fraction must be in (0, 1], got {top}")
    # The tolerance keeps 0.1 * 30 (3.0000000000000004) at 3 trials, not 4.
    return max(1, min(n, math.ceil(top * n - 1e-9)))


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def best_trials(trials: Iterable[Any], *, top: int | float, direction: Any) -> list[Any]:
    """The best ``top`` complete trials, best first.

    Single objective: by value. Several objectives: by Pareto front (non-dominated sorting),
    each front in trial order, the last front cut to size.

    Args:
        trials: Trials (ours or Optuna's); only complete ones with values count.
        top: How many: an int count, or a float fraction in (0, 1] of the complete trials
            (at least one).
        direction: ``"minimize"``/``"maximize"``, or one per objective.

    Returns:
        The chosen trials; empty if there is no complete trial.
    """
    directions = _directions(direction)
    # Minimize everything: a maximized objective is negated.
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    usable = [t for t in trials if _usable(t, len(directions))]
    if not usable:
        _count(top, 1)  # still refuse a bad `top`
        return []
    n = _count(top, len(usable))
    keyed = [([s * v for s, v in zip(signs, t.values, strict=True)], t) for t in usable]
    if len(directions) == 1:
        keyed.sort(key=lambda kv: kv[0][0])  # stable: ties keep trial order
        return [t for _, t in keyed[:n]]
    chosen: list[Any] = []
    rest = keyed
    while len(chosen) < n:
        front = [kv for kv in rest if not any(_dominates(o[0], kv[0]) for o in rest)]
        chosen.extend(t for _, t in front)
        ids = {id(kv) for kv in front}
        rest = [kv for kv in rest if id(kv) not in ids]
    return chosen[:n]


def _grid_floor(value: float, low: float, step: float) -> float:
    return low + math.floor((value - low) / step + 1e-9) * step


def _grid_ceil(value: float, low: float, step: float) -> float:
    return low + math.ceil((value - low) / step - 1e-9) * step


def _narrow_numeric(
    dist: FloatDistribution | IntDistribution, values: list[float], margin: float
) -> FloatDistribution | IntDistribution:
    low, high = float(dist.low), float(dist.high)
    step = None if dist.step is None else float(dist.step)
    if step:
        high = _grid_floor(high, low, step)  # the top of the grid, as Optuna adjusts it
    values = [min(max(v, low), high) for v in values]
    fwd = math.log if dist.log else float
    t_low, t_high = fwd(low), fwd(high)
    lo, hi = fwd(min(values)), fwd(max(values))
    pad = margin * (hi - lo)
    lo, hi = lo - pad, hi + pad
    min_width = MIN_WIDTH * (t_high - t_low)
    if hi - lo < min_width:
        mid = (lo + hi) / 2
        lo, hi = mid - min_width / 2, mid + min_width / 2
        # Slide a window that sticks out back inside, keeping its width.
        shift = max(0.0, t_low - lo) - max(0.0, hi - t_high)
        lo, hi = lo + shift, hi + shift
    back = math.exp if dist.log else float
    # exp(log(v)) may miss v by an ulp: the top trials themselves must stay inside.
    new_low = max(low, min(back(max(lo, t_low)), min(values)))
    new_high = min(high, max(back(min(hi, t_high)), max(values)))
    if step:
        # Stay on the original grid, so that the source's values are values of the new space.
        new_low = max(low, _grid_floor(new_low, low, step))
        new_high = min(high, _grid_ceil(new_high, low, step))
    if isinstance(dist, IntDistribution):
        return IntDistribution(round(new_low), round(new_high), dist.log, dist.step)
    return FloatDistribution(new_low, new_high, dist.log, dist.step)


def _key(value: Any) -> bytes:
    # 1, 1.0 and True are different choices: compare their typed proto forms.
    return value_to_proto(value).SerializeToString(deterministic=True)


def narrow_space(
    trials: Iterable[Any],
    space: Mapping[str, Any],
    *,
    top: int | float = 0.2,
    direction: str | Sequence[str],
    margin: float = 0.5,
) -> dict[str, Distribution]:
    """Narrows a search space around the best trials.

    For each numeric parameter: the ``[min, max]`` of the top trials' values, widened by
    ``margin`` times that width on each side, at least :data:`MIN_WIDTH` of the original range
    wide, clipped to the original bounds. Log distributions are narrowed in log space, so the
    new bounds are geometric around the best values. Int distributions stay int and, like
    stepped floats, stay on the original grid (``low + k * step``). A categorical parameter
    keeps, in their original order, the choices that appear among the top trials. A parameter
    no top trial has (a conditional one) keeps its original distribution. The top trials are
    always inside the result.

    Args:
        trials: Trials (ours or Optuna's ``FrozenTrial``); only complete ones count.
        space: ``{name: distribution}`` (ours, Optuna's or proto ones), the original space.
        top: How many best trials to narrow around: an int count, or a float fraction in
            (0, 1] of the complete trials (rounded up, at least one).
        direction: ``"minimize"`` or ``"maximize"``; for several objectives one per objective,
            and the best are taken by Pareto front.
        margin: How much to widen ``[min, max]`` on each side, as a fraction of its width.

    Returns:
        The narrowed space, in the order of ``space``, with our distributions.

    Raises:
        InvalidArgument: A bad ``top``, ``margin`` or ``direction``, or no complete trial.
    """
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise InvalidArgument(f"margin must be a number >= 0, got {margin!r}")
    original = {name: _as_distribution(d) for name, d in space.items()}
    best = best_trials(trials, top=top, direction=direction)
    if not best:
        raise InvalidArgument("no complete trial to narrow the space around")
    narrowed: dict[str, Distribution] = {}
    for name, dist in original.items():
        values = [t.params[name] for t in best if name in t.params]
        if not values:
            narrowed[name] = dist
        elif isinstance(dist, CategoricalDistribution):
            seen = {_key(v) for v in values}
            kept = tuple(c for c in dist.choices if _key(c) in seen)
            narrowed[name] = CategoricalDistribution(kept or dist.choices)
        else:
            narrowed[name] = _narrow_numeric(dist, [float(v) for v in values], float(margin))
    return narrowed


def contains(distribution: Distribution, value: Any) -> bool:
    """Whether ``value`` is a value of ``distribution`` (on its grid, if it has a step)."""
    if isinstance(distribution, CategoricalDistribution):
        return any(_key(c) == _key(value) for c in distribution.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return False
    if not distribution.low <= value <= distribution.high:
        return False
    if not distribution.step:
        return True
    k = (value - distribution.low) / distribution.step
    return abs(k - round(k)) < 1e-8  # Optuna's tolerance


def space_of(trials: Iterable[Any]) -> dict[str, Distribution]:
    """The search space of trials: each parameter's distribution as first seen, in order."""
    space: dict[str, Distribution] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            space.setdefault(name, _as_distribution(dist))
    return space


def refine_study(
    client: Client,
    *,
    source: Study | str,
    name: str,
    top: int | float = 0.2,
    margin: float = 0.5,
    sampler: Any = None,
    pruner: Any = None,
    load_if_exists: bool = False,
) -> tuple[Study, dict[str, Distribution]]:
    """Implements :meth:`Client.refine`; see there."""
    src = source if isinstance(source, Study) else client.get_study(source)
    trials = src.get_trials()
    complete = [t for t in trials if _usable(t, len(src.directions))]
    if not complete:
        raise FailedPrecondition(f"{src.resource_name} has no complete trial to refine around")
    space = narrow_space(
        complete,
        space_of(trials),
        top=top,
        direction=[d.name.lower() for d in src.directions],
        margin=margin,
    )
    study = client.create_study(
        name=name,
        directions=src.directions,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=load_if_exists,
    )
    if study.proto.trial_count:
        # Refined before (or in use): warm-starting again would duplicate the evidence, and the
        # space its trials were asked with is the one to go on with.
        return study, space_of(study.get_trials()) or space
    inside = [
        t
        for t in complete
        if set(t.params) >= set(space) and all(contains(d, t.params[n]) for n, d in space.items())
    ]
    for record in inside:
        _copy_trial(study, space, record)
    return study, space


def _copy_trial(study: Study, space: Mapping[str, Distribution], record: FrozenTrial) -> None:
    """Adds one source trial to ``study``: enqueued, asked (which pops it) and told its values.

    Request ids derived from the source trial make this idempotent: if two processes refine
    into the same study at once, the second one's enqueue and ask return the first one's
    trial, and telling it the same values again is not an error.
    """
    key = f"hposerve:refine:{record.name}"
    params = {n: record.params[n] for n in space}
    study.enqueue_trial(params, {REFINED_FROM: record.name}, request_id=f"{key}:enqueue")
    trial = study.ask(space, request_id=f"{key}:ask")
    if trial.user_attrs.get(REFINED_FROM) != record.name:
        # Another process asked the study in between and took the enqueued trial (it evaluates
        # those parameters for real); this one was sampled, and nobody will evaluate it.
        _logger.warning("warm start of %s: trial %d was not ours", record.name, trial.number)
        with contextlib.suppress(FailedPrecondition):  # already finished by its holder
            study.tell(trial, state="failed")
        return
    study.tell(trial, record.values)
