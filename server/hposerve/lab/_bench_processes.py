"""The bench's server processes: ours, Optuna's gRPC proxy and the echo service, as children."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

__all__ = ["free_port", "hposerve_server", "python_module", "server_process"]

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


@contextlib.contextmanager
def server_process(argv: list[str], port: int) -> Iterator[str]:
    """Runs a server (ours or Optuna's proxy) as a child process; yields its target."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
def hposerve_server(data_dir: str, *options: str) -> Iterator[str]:
    """Runs ``hposerve serve`` on ``data_dir`` (with ``options``) as a child process; yields
    its target."""
    port = free_port()
    argv = [*_SERVE, "--port", str(port), "--data-dir", data_dir, *options]
    with server_process(argv, port) as target:
        yield target
