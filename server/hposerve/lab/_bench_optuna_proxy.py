"""Optuna's own gRPC storage proxy over an RDB storage, for ``hposerve bench``.

``python -m hposerve.lab._bench_optuna_proxy STORAGE_URL PORT`` serves until terminated.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Serves ``GrpcStorageProxy`` clients on ``127.0.0.1:PORT`` from ``STORAGE_URL``."""
    if len(argv) != 2 or not argv[1].isdigit():
        name = __spec__.name if __spec__ else __name__
        print(f"usage: python -m {name} STORAGE_URL PORT", file=sys.stderr)
        return 2
    import optuna
    from optuna.storages import run_grpc_proxy_server

    url, port = argv
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    run_grpc_proxy_server(storage, host="127.0.0.1", port=int(port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
