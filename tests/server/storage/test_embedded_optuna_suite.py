"""Optuna's own storage test suite on the embedded default (``open_storage()``: Optuna's
``JournalStorage`` on hposerve's local journal backend)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from optuna.storages import BaseStorage
from optuna.testing.pytest_storages import StorageTestCase

from hposerve.server.storage import close_storage, open_storage


@pytest.fixture
def storage(tmp_path) -> Iterator[BaseStorage]:  # type: ignore[no-untyped-def]
    opened = open_storage(None, data_dir=tmp_path)
    yield opened
    close_storage(opened)


class TestOptunaStorageSuite(StorageTestCase):
    """Every behaviour Optuna requires of a storage (studies, trials, params, values,
    intermediate values, attributes, states, deletion)."""

    @pytest.mark.skip(reason="the embedded journal is its process's own: it is never pickled")
    def test_pickle_storage(self) -> None: ...
