"""Copying every study from one storage to another, and checking that two storages agree.

Any two storages ``open_storage`` opens (the embedded journal, a journal file, SQLite,
PostgreSQL in either layout, Redis) work both ways: studies are read and written through
Optuna's storage interface. A study keeps its name (``namespace/study``), directions, user and
system attributes (hposerve's configuration is the ``hposerve:config`` system attribute), and
every trial in order: number, state, values, parameters with their distributions, intermediate
values, user and system attributes (leases and request ids included), start and end times.
Study and trial ids are the destination's own. Teams, tokens and the audit log (the identity
store) are not studies: they are not copied.

The copy is not atomic: copy from a storage no server is writing to (stop the servers), and
compare afterwards; ``copy_storage`` compares by itself.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable, Iterable
from typing import Any

from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from hposerve.server.domain._exceptions import FailedPrecondition
from hposerve.server.domain._optuna import study_id_of

__all__ = ["CopyMismatch", "CopyReport", "compare_storages", "copy_storage"]


class CopyMismatch(RuntimeError):
    """Two storages that should hold the same studies do not; ``differences`` says how."""

    def __init__(self, differences: list[str]) -> None:
        shown = "\n  ".join(differences[:20])
        more = f"\n  ... and {len(differences) - 20} more" if len(differences) > 20 else ""
        super().__init__(f"{len(differences)} differences:\n  {shown}{more}")
        self.differences = differences


@dataclasses.dataclass(frozen=True)
class CopyReport:
    """What a copy moved."""

    studies: int
    trials: int


def copy_storage(
    source: BaseStorage,
    destination: BaseStorage,
    *,
    allow_non_empty: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copies every study of ``source`` into ``destination``, then compares them.

    Args:
        source: Where the studies are; only read.
        destination: Where they go. Must hold no study, unless ``allow_non_empty``; even then
            it must hold none of the source's names.
        allow_non_empty: Copy into a destination that already holds other studies.
        progress: Called with (study name, trials copied so far) after each trial.

    Raises:
        FailedPrecondition: the destination holds studies (or one of the source's names);
            nothing was written.
        CopyMismatch: after the copy, a study of the destination differs from its source.
    """
    studies = source.get_all_studies()
    existing = {s.study_name for s in destination.get_all_studies()}
    clashes = sorted(existing & {s.study_name for s in studies})
    if clashes or (existing and not allow_non_empty):
        what = f"already holds {', '.join(clashes[:5])}" if clashes else "is not empty"
        raise FailedPrecondition(
            f"the destination {what} ({len(existing)} studies); copy into an empty storage"
            + ("" if clashes else ", or allow a non-empty one")
        )
    trials = 0
    for study in studies:
        study_id = destination.create_new_study(study.directions, study.study_name)
        for key, value in study.user_attrs.items():
            destination.set_study_user_attr(study_id, key, value)
        for key, value in study.system_attrs.items():
            destination.set_study_system_attr(study_id, key, value)
        for n, trial in enumerate(source.get_all_trials(study_id_of(study), deepcopy=False), 1):
            destination.create_new_trial(study_id, template_trial=trial)
            trials += 1
            if progress is not None:
                progress(study.study_name, n)
    differences = compare_storages(source, destination, names={s.study_name for s in studies})
    if differences:
        raise CopyMismatch(differences)
    return CopyReport(studies=len(studies), trials=trials)


def compare_storages(
    a: BaseStorage, b: BaseStorage, *, names: Iterable[str] | None = None
) -> list[str]:
    """How ``a`` and ``b`` differ, one line per difference; empty when they agree.

    Args:
        a: One storage.
        b: The other.
        names: Compare only these studies (each must be in both); None: every study of both,
            and the two must hold the same names.
    """
    studies_a = {s.study_name: s for s in a.get_all_studies()}
    studies_b = {s.study_name: s for s in b.get_all_studies()}
    wanted = set(studies_a) | set(studies_b) if names is None else set(names)
    differences = [
        f"{name}: only in {'the first' if name in studies_a else 'the second'}"
        for name in sorted(wanted)
        if (name in studies_a) != (name in studies_b) or name not in studies_a
    ]
    for name in sorted(wanted & set(studies_a) & set(studies_b)):
        sa, sb = studies_a[name], studies_b[name]
        for what, va, vb in (
            ("directions", _directions(sa.directions), _directions(sb.directions)),
            ("user attributes", _canonical(sa.user_attrs), _canonical(sb.user_attrs)),
            ("system attributes", _canonical(sa.system_attrs), _canonical(sb.system_attrs)),
        ):
            if va != vb:
                differences.append(f"{name}: {what} differ: {va!r} != {vb!r}")
        trials_a = a.get_all_trials(study_id_of(sa), deepcopy=False)
        trials_b = b.get_all_trials(study_id_of(sb), deepcopy=False)
        if len(trials_a) != len(trials_b):
            differences.append(f"{name}: {len(trials_a)} trials != {len(trials_b)}")
        for ta, tb in zip(trials_a, trials_b, strict=False):
            for field, va, vb in zip(_TRIAL_FIELDS, _trial(ta), _trial(tb), strict=True):
                if va != vb:
                    differences.append(
                        f"{name}: trial {ta.number}: {field} differ: {va!r} != {vb!r}"
                    )
    return differences


_TRIAL_FIELDS = (
    "number",
    "state",
    "values",
    "params",
    "distributions",
    "intermediate values",
    "user attributes",
    "system attributes",
    "start time",
    "end time",
)


def _trial(t: FrozenTrial) -> tuple[Any, ...]:
    return (
        t.number,
        t.state,
        _canonical(t.values),
        _canonical(t.params),
        t.distributions,
        _canonical(t.intermediate_values),
        _canonical(t.user_attrs),
        _canonical(t.system_attrs),
        _time(t.datetime_start),
        _time(t.datetime_complete),
    )


def _directions(directions: list[StudyDirection]) -> list[str]:
    return [d.name for d in directions]


def _canonical(value: Any) -> Any:
    """A form that compares equal across storages: NaN equals NaN, tuples are lists."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _time(value: datetime.datetime | None) -> datetime.datetime | None:
    # Storages keep naive local times, but some hand back an aware one: compare wall clocks.
    return None if value is None else value.replace(tzinfo=None)
