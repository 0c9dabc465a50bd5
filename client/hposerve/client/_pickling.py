"""Pickling studies: by server address, study and settings, never with a secret.

A pickled study holds its client's target and a copy of its settings without the token, the
``authorization`` metadata or a client key given as data. Unpickled in the same process, it
uses a live client of the same target and settings (and so its token); elsewhere it makes a
client that takes its token (and TLS files) from the environment (``HPOSERVE_TOKEN``...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ._config import ClientConfig

if TYPE_CHECKING:
    from ._client import Client
    from ._transport import Transport

Origin = tuple[str, ClientConfig]

_lock = threading.RLock()  # a client made under it remembers itself
_origins: weakref.WeakKeyDictionary[Transport, Origin] = weakref.WeakKeyDictionary()
_live: weakref.WeakValueDictionary[Origin, Client] = weakref.WeakValueDictionary()
_made: dict[Origin, Client] = {}  # clients made to serve unpickled studies; they live on


def shareable(config: ClientConfig) -> ClientConfig:
    """The settings without secrets: what may be pickled."""
    key = config.client_key
    return dataclasses.replace(
        config,
        token=None if config.token else config.token,
        metadata=tuple((k, v) for k, v in config.metadata if k.lower() != "authorization"),
        client_key=None if isinstance(key, bytes) or (key and "-----" in str(key)) else key,
    )


def remember(client: Client) -> None:
    """Records where a client's transport leads, so that its studies can be pickled."""
    origin = (client.target, shareable(client.config))
    with _lock:
        _origins[client._transport] = origin
        # Settings holding something unhashable: no reuse, still picklable.
        with contextlib.suppress(TypeError):
            _live[origin] = client


def origin_of(transport: Transport) -> Origin:
    """The target and shareable settings of a study's client.

    Raises:
        TypeError: The study's client was not made by ``Client`` (cannot be pickled).
    """
    with _lock:
        origin = _origins.get(transport)
    if origin is None:
        raise TypeError("this study's connection was not made by a Client: it cannot be pickled")
    return origin


def client_for(origin: Origin) -> Client:
    """A client for an unpickled study: a live one of this origin, or a new one."""
    from ._client import Client

    with _lock:
        try:
            live: Any = _live.get(origin) or _made.get(origin)
        except TypeError:
            live = None
        if live is not None and not live._transport._closed.is_set():
            return live  # type: ignore[no-any-return]
        client = Client(origin[0], config=origin[1])
        with contextlib.suppress(TypeError):
            _made[origin] = client
        return client
