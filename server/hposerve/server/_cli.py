"""The ``hposerve`` command line: ``serve``, ``demo``, ``compare`` and ``bench``."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _serve(args: argparse.Namespace) -> int:
    from hposerve.server._server import serve

    serve(
        f"{args.host}:{args.port}",
        storage=args.storage,
        data_dir=args.data_dir,
        fsync=args.fsync,
        max_workers=args.workers,
        max_sessions=args.max_sessions,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from hposerve.server import _demo

    return _demo.main(args)


def _compare(args: argparse.Namespace) -> int:
    from hposerve.server import _compare_cli

    return _compare_cli.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hposerve", description="Hyperparameter optimization as a service, on Optuna."
    )
    parser.add_argument("--log-level", default=os.environ.get("HPOSERVE_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC server until SIGTERM")
    serve.add_argument("--host", default=os.environ.get("HPOSERVE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("HPOSERVE_PORT", "50051")))
    serve.add_argument(
        "--storage",
        default=os.environ.get("HPOSERVE_STORAGE"),
        help="an Optuna storage URL (sqlite:///…, postgresql+psycopg://…, journal:///file, "
        "redis://…); default: the embedded journal in --data-dir",
    )
    serve.add_argument(
        "--data-dir",
        default=os.environ.get("HPOSERVE_DATA_DIR", "hposerve-data"),
        help="where the embedded default storage keeps its data (default: ./hposerve-data)",
    )
    serve.add_argument(
        "--fsync",
        action="store_true",
        default=os.environ.get("HPOSERVE_FSYNC", "") not in ("", "0", "false"),
        help="sync every write of the embedded storage to disk: survives power loss, slower",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=64,
        help="threads for the calls not served on the event loop (sampling, storage I/O)",
    )
    serve.add_argument(
        "--max-sessions",
        type=int,
        default=4096,
        help="open sessions at most; clients past them make unary calls",
    )
    serve.set_defaults(run=_serve)

    demo = commands.add_parser(
        "demo", help="tune a PyTorch MLP on the digits data through an embedded server"
    )
    from hposerve.server import _demo as demo_module

    demo_module.add_arguments(demo)
    demo.set_defaults(run=_demo)

    compare = commands.add_parser(
        "compare", help="compare samplers and pruners on a task: run, report, status"
    )
    from hposerve.server import _compare_cli

    _compare_cli.add_arguments(compare)
    compare.set_defaults(run=_compare)

    bench = commands.add_parser(
        "bench", help="measure the service against Optuna in-process and its gRPC proxy"
    )
    from hposerve.server import _bench

    _bench.add_arguments(bench)
    bench.set_defaults(run=_bench.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Optuna logs a line per study created; the server logs what matters itself.
    logging.getLogger("optuna").setLevel(logging.WARNING)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
