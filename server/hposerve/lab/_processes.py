"""Trainer processes beside an embedded server: what the demo and comparisons run.

One implementation of the loop both run: start trainer processes, poll until every one has
exited (printing progress meanwhile), stop them all on the way out.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = ["POLL_SECONDS", "run_trainers", "server_target", "trainer_processes"]

#: How often the watching process looks at the server while trainers run.
POLL_SECONDS = 1.0
# Thread pools that torch, numpy's BLAS or OpenMP would start in every trainer.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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


def _trainer_entry(main: Callable[..., None], *args: Any) -> None:
    """What every trainer process runs: ``main(*args)`` with one thread per pool, quietly."""
    # Before torch (or numpy's BLAS) is imported by the trainer: on a small machine, several
    # trainers with a thread pool each only fight over the cores.
    for variable in _THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    try:
        main(*args)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C reaches every process; leave without a traceback


@contextlib.contextmanager
def trainer_processes(
    main: Callable[..., None], args: Sequence[tuple[Any, ...]], name: str
) -> Iterator[list[BaseProcess]]:
    """Starts ``main(*a)`` in a process per ``a`` in ``args``; on exit, stops and joins them all.

    ``main`` must be a module-level function (processes are spawned). It runs with the thread
    pools of torch and BLAS limited to one thread, and a Ctrl-C ends it with exit code 130.
    Processes still running when the block exits (after an error or Ctrl-C here) are terminated.
    """
    # spawn, not fork: this process runs gRPC threads, and forking those is unsafe.
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    try:
        for i, a in enumerate(args):
            process: BaseProcess = context.Process(
                target=_trainer_entry, args=(main, *a), name=f"{name}-{i}", daemon=True
            )
            process.start()
            processes.append(process)
        yield processes
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def run_trainers(
    main: Callable[..., None],
    args: Sequence[tuple[Any, ...]],
    *,
    name: str,
    poll: Callable[[bool], None],
    poll_seconds: float = POLL_SECONDS,
) -> list[int | None]:
    """Runs trainer processes until every one has exited, calling ``poll`` meanwhile.

    Args:
        main: The trainers' body, ``main(*a)`` for each ``a`` in ``args`` (module-level).
        args: One tuple of arguments per trainer process.
        name: Prefix of the processes' names.
        poll: Called every ``poll_seconds`` and whenever a trainer exits, with whether any
            trainer is still running (False on the last call).
        poll_seconds: The longest wait between two calls of ``poll``.

    Returns:
        Each trainer's exit code (0 when it ran out of work).
    """
    with trainer_processes(main, args, name) as processes:
        running = list(processes)
        while running:
            # Sleeps for a poll interval, or less when a trainer exits.
            multiprocessing.connection.wait([p.sentinel for p in running], poll_seconds)
            running = [p for p in running if p.is_alive()]
            poll(bool(running))
    return [p.exitcode for p in processes]
