"""What deletes deleted, kept in storage: a retried delete answers as the first did.

A delete's request id is written, with the ids of the studies it deletes, before it deletes
them, to the system attributes of one hidden study, ``hposerve:deletes``. Its name is no
``namespace/study``, so no list and no dashboard shows it; ``storage copy`` copies it with the
rest. A retry with the same id finds the record, whether it arrives after a restart or on
another replica, deletes what a crash left of those studies, and answers OK. Studies are named
by id, not by name: a study re-created under the deleted one's name is not touched.

Records are never dropped. A delete is rare and its record small (one journal line).
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna.exceptions import DuplicatedStudyError
from optuna.storages import BaseStorage
from optuna.study import StudyDirection

__all__ = ["DELETES_STUDY", "DeleteRecords"]

DELETES_STUDY = "hposerve:deletes"


class DeleteRecords:
    """The delete records of one storage.

    Thread-safety: callers serialize writes (the catalog's write lock); reads may run anywhere.
    """

    def __init__(self, storage: BaseStorage) -> None:
        self._storage = storage

    @staticmethod
    def _key(what: str, request_id: str) -> str:
        return f"delete {what} {request_id}"

    def _find(self) -> int | None:
        try:
            return self._storage.get_study_id_from_name(DELETES_STUDY)
        except KeyError:
            return None

    def _made(self) -> int:
        found = self._find()
        if found is not None:
            return found
        try:
            return self._storage.create_new_study([StudyDirection.MINIMIZE], DELETES_STUDY)
        except DuplicatedStudyError:  # another replica made it first
            return self._storage.get_study_id_from_name(DELETES_STUDY)

    def recorded(self, what: str, request_id: str) -> list[int] | None:
        """The study ids an earlier delete of ``what`` with ``request_id`` deleted, or None."""
        study_id = self._find()
        if study_id is None:
            return None
        ids = self._storage.get_study_system_attrs(study_id).get(self._key(what, request_id))
        return None if ids is None else [int(i) for i in ids]

    def record(self, what: str, request_id: str, study_ids: Sequence[int]) -> None:
        """Records that the delete of ``what`` with ``request_id`` deletes ``study_ids``."""
        key = self._key(what, request_id)
        self._storage.set_study_system_attr(self._made(), key, list(study_ids))
