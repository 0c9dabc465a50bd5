"""PostgreSQL URLs: SQLAlchemy's spelling to libpq's, and hposerve's own query options.

A storage URL may carry options for hposerve itself as query parameters named ``hposerve_*``
(``?hposerve_backend=rdb``, ``?hposerve_schema=team_a``). They are taken out before the URL
reaches libpq or SQLAlchemy, which would reject parameters they do not know.
"""

from __future__ import annotations

import urllib.parse

from hposerve.server.domain._exceptions import InvalidArgument

OPTION_PREFIX = "hposerve_"
# hposerve_backend: which layout a postgresql URL opens.
JOURNAL_LAYOUT = "journal"  # hposerve's ordered log, replayed by Optuna's JournalStorage
RDB_LAYOUT = "rdb"  # Optuna's RDBStorage tables (studies, trials, ...)
_LAYOUTS = (JOURNAL_LAYOUT, RDB_LAYOUT)
_OPTIONS = ("backend", "schema")
_POSTGRES_SCHEMES = ("postgresql", "postgres")


def split_options(url: str) -> tuple[str, dict[str, str]]:
    """Takes hposerve's ``hposerve_*`` query parameters out of a storage URL.

    Returns:
        The URL without them, and the options by name without the prefix
        (``{"backend": "rdb"}`` for ``?hposerve_backend=rdb``).

    Raises:
        InvalidArgument: an ``hposerve_*`` parameter is unknown, repeated, or has a bad value.
    """
    # Raw string surgery: re-encoding the query would change what other parameters say.
    base, sep, query = url.partition("?")
    query, hash_sign, fragment = query.partition("#")
    kept: list[str] = []
    options: dict[str, str] = {}
    for item in query.split("&") if sep else []:
        key, _, value = item.partition("=")
        if not key.startswith(OPTION_PREFIX):
            kept.append(item)
            continue
        name = key.removeprefix(OPTION_PREFIX)
        if name not in _OPTIONS or name in options:
            raise InvalidArgument(
                f"storage URL parameter {key!r} is unknown or repeated; hposerve reads "
                + ", ".join(OPTION_PREFIX + o for o in _OPTIONS),
                field="storage",
            )
        options[name] = urllib.parse.unquote(value)
    if options.get("backend", JOURNAL_LAYOUT) not in _LAYOUTS:
        raise InvalidArgument(
            f"{OPTION_PREFIX}backend must be one of {', '.join(_LAYOUTS)}, "
            f"not {options['backend']!r}",
            field="storage",
        )
    if "schema" in options and not options["schema"]:
        raise InvalidArgument(f"{OPTION_PREFIX}schema must name a schema", field="storage")
    if not options:
        return url, options
    rest = "&".join(kept)
    return base + ("?" + rest if rest else "") + hash_sign + fragment, options


def libpq_url(url: str) -> str:
    """The libpq (psycopg) spelling of a PostgreSQL URL written for SQLAlchemy or libpq.

    ``postgresql+psycopg://u@h:5432/db?sslmode=require`` becomes
    ``postgresql://u@h:5432/db?sslmode=require``; ``hposerve_*`` parameters are dropped.

    Raises:
        InvalidArgument: the URL is not a PostgreSQL one, or has bad ``hposerve_*`` options.
    """
    url, _ = split_options(url)
    scheme, sep, rest = url.partition("://")
    dialect = scheme.split("+", 1)[0].lower()
    if not sep or dialect not in _POSTGRES_SCHEMES:
        raise InvalidArgument(
            f"not a PostgreSQL URL: {scheme or url!r}; use postgresql+psycopg://user@host/db",
            field="storage",
        )
    return "postgresql://" + rest


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (any SQLAlchemy driver)."""
    return url.split(":", 1)[0].split("+", 1)[0].lower() in _POSTGRES_SCHEMES
