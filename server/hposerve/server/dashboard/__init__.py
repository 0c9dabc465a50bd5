"""The dashboard: optuna-dashboard served by the server on its live storage, by access rules.

An HTTP face of the service beside the gRPC one (``transport``), at the same level: it
presents the storage through the domain's access rule (``domain._access``) and imports no
gRPC. ``DashboardServer`` is what the server starts and stops; ``DashboardStorage`` is the
filtered view of the storage that optuna-dashboard is given.
"""

from hposerve.server.dashboard._server import DashboardServer
from hposerve.server.dashboard._storage import DashboardStorage, display_name

__all__ = ["DashboardServer", "DashboardStorage", "display_name"]
