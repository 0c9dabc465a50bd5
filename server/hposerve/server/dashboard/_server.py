"""The dashboard's HTTP server: a threaded WSGI server from ``start()`` to ``stop()``."""

from __future__ import annotations

import logging
import socketserver
import threading
from typing import Any
from wsgiref import simple_server

from optuna.storages import BaseStorage

from hposerve.server.dashboard._app import Authenticator, make_app

__all__ = ["DashboardServer"]

_logger = logging.getLogger(__name__)


class _ThreadingServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True  # a browser's open connection does not hold up a stop


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        _logger.debug("dashboard %s: " + format, self.address_string(), *args)


class DashboardServer:
    """optuna-dashboard on the server's live storage, over HTTP.

    Thread-safety: ``start`` and ``stop`` from one thread; each request runs on its own.

    Args:
        storage: The server's storage (the registry's own object).
        host: Address to listen on.
        port: Port; 0 picks a free one (``port`` after ``start()``).
        authenticator: The identity store when auth is on; None serves everyone.
    """

    def __init__(
        self,
        storage: BaseStorage,
        *,
        host: str,
        port: int,
        authenticator: Authenticator | None = None,
    ) -> None:
        self._storage = storage
        self._host = host
        self.port = port
        self._authenticator = authenticator
        self._httpd: simple_server.WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> DashboardServer:
        """Binds the port and serves on a thread of its own."""
        app = make_app(self._storage, self._authenticator)
        httpd = simple_server.make_server(
            self._host, self.port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self._httpd, self.port = httpd, httpd.server_port
        self._thread = threading.Thread(
            target=httpd.serve_forever, name="hposerve-dashboard", daemon=True
        )
        self._thread.start()
        _logger.info("dashboard on http://%s:%d/dashboard", self._host, self.port)
        return self

    def stop(self) -> None:
        """Stops serving. Idempotent."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
