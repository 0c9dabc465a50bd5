"""Trainer processes beside an embedded server: what the demo and comparisons run."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.process import BaseProcess
from typing import Any


@contextlib.contextmanager
def server_target(
    target: str | None, data_dir: str | os.PathLike[str] | None
) -> Iterator[tuple[str, bool]]:
    """Yields ``(target, embedded)``: ``target`` itself, or an embedded server's for the block."""
    if target is not None:
        yield target, False
        return
    from hposerve.server import make_server

    server = make_server("127.0.0.1:0", data_dir=data_dir).start()
    try:
        yield f"127.0.0.1:{server.port}", True
    finally:
        server.stop(grace=5)


@contextlib.contextmanager
def trainer_processes(
    main: Callable[..., None], args: Sequence[tuple[Any, ...]], name: str
) -> Iterator[list[BaseProcess]]:
    """Starts ``main(*a)`` in a process per ``a`` in ``args``; on exit, stops and joins them all.

    Processes still running when the block exits (after an error or Ctrl-C here) are terminated.
    """
    # spawn, not fork: this process runs gRPC threads, and forking those is unsafe.
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    try:
        for i, a in enumerate(args):
            process: BaseProcess = context.Process(
                target=main, args=a, name=f"{name}-{i}", daemon=True
            )
            process.start()
            processes.append(process)
        yield processes
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
