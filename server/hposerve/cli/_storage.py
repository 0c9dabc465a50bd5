"""``hposerve storage copy|compare SRC DST``: move every study between two storages, and check.

SRC and DST are storage URLs as ``hposerve serve --storage`` takes them (``sqlite:///file.db``,
``journal:///file.log``, ``postgresql+psycopg://...`` in either layout, ``redis://...``), or a
plain path: the embedded journal of that data directory. Stop the servers on SRC first (the
embedded journal refuses a second user anyway): a copy of a storage being written is not a
snapshot.

Exit status: 0 when the two storages agree afterwards; 1 when they differ (each difference is
printed), or when the destination is not empty and ``--allow-non-empty`` was not given.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["add_arguments", "opened"]


@contextlib.contextmanager
def opened(spec: str) -> Iterator[Any]:
    """Opens a storage URL, or a data directory's embedded journal; closes it afterwards."""
    from hposerve.server.storage import close_storage, open_storage

    storage = open_storage(spec) if "://" in spec else open_storage(None, data_dir=spec)
    try:
        yield storage
    finally:
        close_storage(storage)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``copy`` and ``compare`` to the ``hposerve storage`` parser."""
    parser.description = __doc__.split("\n\n")[0]
    commands = parser.add_subparsers(dest="storage_command", required=True)
    where = "a storage URL, or a data directory (the embedded journal)"
    copy = commands.add_parser(
        "copy", help="copy every study from SRC to DST, then check they are equal"
    )
    copy.add_argument("source", metavar="SRC", help=where)
    copy.add_argument("destination", metavar="DST", help=where)
    copy.add_argument(
        "--allow-non-empty",
        action="store_true",
        help="copy into a DST that already holds other studies (never one of SRC's names)",
    )
    copy.add_argument("--quiet", action="store_true", help="no progress bar")
    copy.set_defaults(run=_copy)
    compare = commands.add_parser("compare", help="check that SRC and DST hold the same studies")
    compare.add_argument("source", metavar="SRC", help=where)
    compare.add_argument("destination", metavar="DST", help=where)
    compare.set_defaults(run=_compare)


def _copy(args: argparse.Namespace) -> int:
    import tqdm

    from hposerve.server.domain._exceptions import DomainError
    from hposerve.server.storage._copy import CopyMismatch, copy_storage

    with opened(args.source) as source, opened(args.destination) as destination:
        bar = tqdm.tqdm(unit="trial", disable=args.quiet, file=sys.stderr)

        def progress(study: str, _done: int) -> None:
            bar.set_description(study, refresh=False)
            bar.update()

        try:
            report = copy_storage(
                source, destination, allow_non_empty=args.allow_non_empty, progress=progress
            )
        except CopyMismatch as e:
            print(f"hposerve storage copy: DST differs from SRC: {e}", file=sys.stderr)
            return 1
        except DomainError as e:
            print(f"hposerve storage copy: {e}", file=sys.stderr)
            return 1
        finally:
            bar.close()
    print(f"copied {report.studies} studies, {report.trials} trials; DST equals SRC")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from hposerve.server.storage._copy import compare_storages

    with opened(args.source) as source, opened(args.destination) as destination:
        differences = compare_storages(source, destination)
    for line in differences:
        print(line)
    if differences:
        print(f"{len(differences)} differences", file=sys.stderr)
        return 1
    print("SRC and DST hold the same studies")
    return 0
