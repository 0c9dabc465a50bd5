"""gRPC lives here only: the server, its servicers, the status table and the converters."""

from hposerve.server.transport._server import RefusedToStart, Server, make_server, serve

__all__ = ["RefusedToStart", "Server", "make_server", "serve"]
