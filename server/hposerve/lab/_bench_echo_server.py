"""A do-nothing gRPC stream service, for ``hposerve bench``: ``python -m ... PORT``.

It runs on the same gRPC stack as the service (the asyncio server) and answers every message
with itself: the cheapest round trip gRPC Python makes on the machine, the floor under every
call of a trial.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

__all__ = ["METHOD", "main"]

#: The method to call: a stream of bytes, answered message by message.
METHOD = "/Echo/Echo"


async def _echo(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


async def _serve(port: int) -> None:
    server = grpc.aio.server()
    handlers = {"Echo": grpc.stream_stream_rpc_method_handler(_echo)}
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("Echo", handlers)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main(argv: list[str]) -> int:
    """Serves the echo service on ``127.0.0.1:PORT`` (``argv == [PORT]``) until terminated."""
    if len(argv) != 1 or not argv[0].isdigit():
        print(f"usage: python -m {__spec__.name if __spec__ else __name__} PORT", file=sys.stderr)
        return 2
    asyncio.run(_serve(int(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
