"""The bench's server processes: ours, Optuna's gRPC proxy and the echo service, as children."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

from hposerve.server.domain._cpus import allowed_cpus

__all__ = ["bench_cpus", "free_port", "hposerve_server", "python_module", "server_process"]

_SERVE = [sys.executable, "-m", "hposerve.server", "--log-level", "WARNING", "serve"]


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(target: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            with contextlib.suppress(grpc.FutureTimeoutError):
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return
    raise TimeoutError(f"no server at {target} after {timeout} s")


def bench_cpus(index: int) -> str | None:
    """The CPU of the bench's ``index``-th server process of a case, each its own in turn
    (``serve --cpus``); None where the machine gives this process one CPU, or has no CPU
    affinity."""
    cpus = sorted(allowed_cpus())
    return str(cpus[index % len(cpus)]) if len(cpus) > 1 else None


@contextlib.contextmanager
def server_process(argv: list[str], port: int, *, cpu_index: int | None = None) -> Iterator[str]:
    """Runs a server (ours, Optuna's proxy, the echo service) as a child process on the CPU
    ``bench_cpus(cpu_index)`` (None: on every CPU, as the system schedules it); yields its
    target."""
    cpus = None if cpu_index is None else bench_cpus(cpu_index)
    env = None if cpus is None else {**os.environ, "HPOSERVE_CPUS": cpus}
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    target = f"127.0.0.1:{port}"
    try:
        _wait_listening(target, process)
        yield target
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def hposerve_server(data_dir: str, *options: str, cpu_index: int | None = None) -> Iterator[str]:
    """Runs ``hposerve serve`` on ``data_dir`` (with ``options``) as a child process, as
    ``server_process`` does; yields its target."""
    port = free_port()
    argv = [*_SERVE, "--port", str(port), "--data-dir", data_dir, *options]
    with server_process(argv, port, cpu_index=cpu_index) as target:
        yield target
