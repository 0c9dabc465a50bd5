"""Storages: opening Optuna storages from URLs, the embedded journal, and their traits."""

from hposerve.server.storage._identity import IdentityStore
from hposerve.server.storage._journal import LocalJournalBackend, StorageLocked
from hposerve.server.storage._open import (
    DEFAULT_DATA_DIR,
    answers_from_memory,
    close_storage,
    is_exclusive,
    mirror_of,
    open_storage,
)

__all__ = [
    "DEFAULT_DATA_DIR",
    "IdentityStore",
    "LocalJournalBackend",
    "StorageLocked",
    "answers_from_memory",
    "close_storage",
    "is_exclusive",
    "mirror_of",
    "open_storage",
]
