"""The hposerve server: Optuna studies served over gRPC.

``make_server(...)`` builds a server (``start()``, ``port``, ``stop()``); ``serve(...)`` runs one
until SIGTERM. ``StudyRegistry`` (and ``ComparisonRegistry`` on top of it) is the domain layer,
usable without gRPC.
"""

from hposerve.server._comparisons import (
    ComparisonArm,
    ComparisonRef,
    ComparisonRegistry,
    ComparisonSpec,
)
from hposerve.server._server import Server, make_server, serve
from hposerve.server._storage import open_storage
from hposerve.server._studies import StudyOptions, StudyRef, StudyRegistry, TrialRef

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
