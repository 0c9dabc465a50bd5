"""The service's commands (``serve``), for ``hposerve`` and ``python -m hposerve.server``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from hposerve.server._logging import FORMATS, configure_logging
from hposerve.server.storage import DEFAULT_DATA_DIR
from hposerve.server.transport._server import DEFAULT_MAX_SESSIONS, DEFAULT_WORKERS

# Half the cores, at most 4, and none below 4 cores: a sampling process only pays where a core
# would otherwise idle (on 2 cores it gave no more trials/s and cost TPE asks ~1 ms of IPC).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_DEFAULT_SAMPLING_PROCESSES = min(4, _CORES // 2) if _CORES >= 4 else 0


def _flag(variable: str) -> bool:
    return os.environ.get(variable, "").lower() not in ("", "0", "false", "no")


def _serve(args: argparse.Namespace) -> int:
    from hposerve.server.domain import DomainError, QuotaLimits
    from hposerve.server.domain._cpus import pin
    from hposerve.server.transport import RefusedToStart, serve

    if args.cpus is not None:
        try:
            pin(args.cpus)
        except ValueError as e:  # a CPU it may not use: said before anything is opened
            print(f"hposerve serve: {e}", file=sys.stderr)
            return 2
    try:
        serve(
            f"{args.host}:{args.port}",
            storage=args.storage,
            data_dir=args.data_dir,
            fsync=args.fsync,
            max_workers=args.workers,
            max_sessions=args.max_sessions,
            sampling_processes=args.sampling_processes,
            metrics_port=args.metrics_port,
            dashboard_port=args.dashboard_port,
            **_security(args),
            quotas=QuotaLimits(
                studies=args.max_studies,
                running_trials=args.max_running_trials,
                asks_per_second=args.max_asks_per_second,
            ),
        )
    except (RefusedToStart, DomainError) as e:
        print(f"hposerve serve: {e}", file=sys.stderr)
        return 2
    return 0


def _security(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "auth": args.auth,
        "identity_storage": args.identity_storage,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "tls_client_ca": args.tls_client_ca,
        "insecure": args.insecure,
    }


def _add_security_arguments(serve: argparse.ArgumentParser) -> None:
    env = os.environ.get
    serve.add_argument(
        "--auth",
        action="store_true",
        default=_flag("HPOSERVE_AUTH"),
        help="authenticate every call (a token, or an mTLS certificate) and authorize it by "
        "team; bootstrap the first operator with `hposerve admin init` (HPOSERVE_AUTH)",
    )
    serve.add_argument(
        "--identity-storage",
        default=env("HPOSERVE_IDENTITY_STORAGE"),
        help="a SQLAlchemy URL for teams, tokens and the audit log; default: with --storage "
        "(identity.db in --data-dir, or tables in its database) (HPOSERVE_IDENTITY_STORAGE)",
    )
    for flag, variable, what in (
        ("cert", "HPOSERVE_TLS_CERT", "the server's TLS certificate chain, PEM"),
        ("key", "HPOSERVE_TLS_KEY", "its private key, PEM"),
        ("client-ca", "HPOSERVE_TLS_CLIENT_CA", "require client certificates it signed (mTLS)"),
    ):
        serve.add_argument(f"--tls-{flag}", default=env(variable), help=f"{what} ({variable})")
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=_flag("HPOSERVE_INSECURE"),
        help="serve a non-loopback address without auth (refused otherwise) (HPOSERVE_INSECURE)",
    )
    for flag, variable, kind, what in (
        ("studies", "HPOSERVE_MAX_STUDIES", int, "studies"),
        ("running-trials", "HPOSERVE_MAX_RUNNING_TRIALS", int, "running trials"),
        (
            "asks-per-second",
            "HPOSERVE_MAX_ASKS_PER_SECOND",
            float,
            "asks (trials started) per second",
        ),
    ):
        serve.add_argument(
            f"--max-{flag}",
            type=kind,
            default=kind(env(variable, "0")),
            help=f"default quota of every namespace: {what} at most, 0 for no limit; "
            f"operators override it per namespace (hposerve admin set-quota) ({variable})",
        )


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
    _add_process_arguments(serve)
    _add_security_arguments(serve)
    _add_observability_arguments(serve)
    serve.set_defaults(run=_serve)


def _add_process_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--sampling-processes",
        type=int,
        default=int(os.environ.get("HPOSERVE_SAMPLING_PROCESSES", _DEFAULT_SAMPLING_PROCESSES)),
        help="processes that sample the studies whose sampler fits a model (TPE, GP, CMA-ES, "
        "NSGA), each with a core and a GIL of its own; 0: they sample in the server; default: "
        "half the cores, at most 4, none below 4 cores (HPOSERVE_SAMPLING_PROCESSES)",
    )
    serve.add_argument(
        "--cpus",
        type=_cpus,
        default=os.environ.get("HPOSERVE_CPUS") or None,  # a string: parsed as --cpus is
        help="run the server's threads on these CPUs only, e.g. 0 or 2-3 (taskset's list): one "
        "CPU of its own makes a busy server cheaper (its threads hand the interpreter to one "
        "another on one core); sampling processes keep every CPU; default: as started "
        "(HPOSERVE_CPUS)",
    )


def _cpus(text: str) -> frozenset[int]:
    from hposerve.server.domain._cpus import parse_cpus

    try:
        return parse_cpus(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _optional_port(variable: str) -> int | None:
    value = os.environ.get(variable, "")
    return int(value) if value else None


def _add_observability_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=_optional_port("HPOSERVE_METRICS_PORT"),
        help="serve Prometheus metrics at http://HOST:PORT/metrics (same --host); None: off "
        "(HPOSERVE_METRICS_PORT)",
    )
    serve.add_argument(
        "--dashboard-port",
        type=int,
        default=_optional_port("HPOSERVE_DASHBOARD_PORT"),
        help="serve optuna-dashboard on the live storage at http://HOST:PORT/dashboard (same "
        "--host; with --auth it asks for a token); None: off (HPOSERVE_DASHBOARD_PORT)",
    )


def add_global_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default=os.environ.get("HPOSERVE_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR; DEBUG logs every RPC (HPOSERVE_LOG_LEVEL; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default=os.environ.get("HPOSERVE_LOG_FORMAT", "text"),
        help="text, or json (one object per line) for log shippers (HPOSERVE_LOG_FORMAT; "
        "default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Sets up logging and runs the parsed command."""
    configure_logging(args.log_level, args.log_format)
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
