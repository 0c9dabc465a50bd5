"""The hposerve server: Optuna studies served over gRPC.

``make_server(...)`` builds a server (``start()``, ``port``, ``stop()``); ``serve(...)`` runs one
until SIGTERM. ``hposerve.server.domain`` is the domain layer, usable without gRPC;
``hposerve.server.storage`` opens storages.
"""

from hposerve.server.domain import (
    ComparisonArm,
    ComparisonRef,
    ComparisonRegistry,
    ComparisonSpec,
    StudyOptions,
    StudyRef,
    StudyRegistry,
    TrialRef,
)
from hposerve.server.storage import open_storage
from hposerve.server.transport import Server, make_server, serve

__all__ = [
    "ComparisonArm",
    "ComparisonRef",
    "ComparisonRegistry",
    "ComparisonSpec",
    "Server",
    "StudyOptions",
    "StudyRef",
    "StudyRegistry",
    "TrialRef",
    "make_server",
    "open_storage",
    "serve",
]
