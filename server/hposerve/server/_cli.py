"""The service's commands (``serve``), for ``hposerve`` and ``python -m hposerve.server``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from hposerve.server.storage import DEFAULT_DATA_DIR
from hposerve.server.transport._server import DEFAULT_MAX_SESSIONS, DEFAULT_WORKERS


def _serve(args: argparse.Namespace) -> int:
    from hposerve.server.transport import serve

    serve(
        f"{args.host}:{args.port}",
        storage=args.storage,
        data_dir=args.data_dir,
        fsync=args.fsync,
        max_workers=args.workers,
        max_sessions=args.max_sessions,
    )
    return 0


def add_commands(commands: Any) -> None:
    """Adds the service's subcommands to an ``add_subparsers()`` result."""
    serve = commands.add_parser(
        "serve",
        help="run the gRPC server until SIGTERM",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument(
        "--host",
        default=os.environ.get("HPOSERVE_HOST", "127.0.0.1"),
        help="address to listen on (HPOSERVE_HOST)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("HPOSERVE_PORT", "50051")),
        help="port to listen on (HPOSERVE_PORT)",
    )
    serve.add_argument(
        "--storage",
        default=os.environ.get("HPOSERVE_STORAGE"),
        help="an Optuna storage URL (sqlite:///…, postgresql+psycopg://…, journal:///file, "
        "redis://…); default: the embedded journal in --data-dir (HPOSERVE_STORAGE)",
    )
    serve.add_argument(
        "--data-dir",
        default=os.environ.get("HPOSERVE_DATA_DIR", DEFAULT_DATA_DIR),
        help="where the embedded default storage keeps its data (HPOSERVE_DATA_DIR)",
    )
    serve.add_argument(
        "--fsync",
        action="store_true",
        default=os.environ.get("HPOSERVE_FSYNC", "") not in ("", "0", "false"),
        help="sync every write of the embedded storage to disk: survives power loss, slower "
        "(HPOSERVE_FSYNC)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="threads for the calls not served on the event loop (sampling, storage I/O)",
    )
    serve.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        help="open sessions at most; clients past them make unary calls",
    )
    serve.set_defaults(run=_serve)


def add_global_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default=os.environ.get("HPOSERVE_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (HPOSERVE_LOG_LEVEL; default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Sets up logging and runs the parsed command."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Optuna logs a line per study created; the server logs what matters itself.
    logging.getLogger("optuna").setLevel(logging.WARNING)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hposerve", description="Hyperparameter optimization as a service, on Optuna."
    )
    add_global_arguments(parser)
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m hposerve.server``: the service's commands only."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
