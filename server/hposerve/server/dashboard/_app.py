"""The dashboard's WSGI application: optuna-dashboard's, behind a token login when auth is on.

With auth, every request but the static files is served as the principal of its token, read
from ``Authorization: Bearer hps_...`` or from the ``hposerve_token`` cookie that the small
login page (``/login``) sets; without one, pages redirect to the login and the API answers
401. Writes that the dashboard's UI sends (notes, tells, user attributes) are answered 403
unless the principal is an editor of the study, and creating, renaming or deleting studies
is refused (the service does those); ``DashboardStorage`` enforces the same underneath.
"""

from __future__ import annotations

import html
import http.cookies
import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from optuna.storages import BaseStorage

from hposerve.server.dashboard._storage import ANYONE, DashboardStorage, viewing
from hposerve.server.domain._access import Principal
from hposerve.server.domain._exceptions import DomainError

__all__ = ["Authenticator", "make_app"]

COOKIE = "hposerve_token"
_OPEN = re.compile(r"/(static/.*|favicon\.ico|login|logout)")
_WRITES = ("POST", "PUT", "DELETE", "PATCH")
_STUDY_WRITE = re.compile(r"/api/studies/(\d+)/(note|preference.*|\d+/skip|\d+/note)")
_TRIAL_WRITE = re.compile(r"/api/trials/(\d+)/(tell|user-attrs)")
_ARTIFACTS = re.compile(r"/api/artifacts/(\d+)(?:/(\d+))?.*")
_LOGIN = """<!doctype html><html><head><meta charset="utf-8"><title>hposerve dashboard</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:4em auto}}input{{width:100%;
padding:.5em;margin:.5em 0}}.error{{color:#b00}}</style></head><body>
<h1>hposerve dashboard</h1><p>This server needs a token (<code>hps_...</code>).</p>
<p class="error">{error}</p><form method="post" action="/login">
<input type="password" name="token" placeholder="hps_..." autofocus>
<input type="submit" value="Sign in"></form></body></html>"""

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
App = Callable[[Environ, StartResponse], Iterable[bytes]]


class Authenticator(Protocol):
    """What the dashboard needs of the identity store (``IdentityStore`` is one)."""

    def cached_token(self, secret: str) -> Principal | None: ...

    def authenticate_token(self, secret: str) -> Principal: ...


def make_app(storage: BaseStorage, authenticator: Authenticator | None) -> App:
    """The dashboard over the live ``storage``; ``authenticator`` None means auth is off."""
    import optuna_dashboard  # imported only when a dashboard is served

    filtered = DashboardStorage(storage)
    dashboard: App = optuna_dashboard.wsgi(filtered)
    return _Gate(dashboard, filtered, authenticator)


def _reply(
    start_response: StartResponse, status: str, body: str, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    data = body.encode()
    kind = "application/json" if body.startswith("{") else "text/html; charset=utf-8"
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(data))), *headers])
    return [data]


class _Gate:
    """Authenticates each request, checks the UI's writes, and serves the rest as its principal.

    Thread-safety: each request runs on its own thread; the principal is set for that thread.
    """

    def __init__(
        self, app: App, storage: DashboardStorage, authenticator: Authenticator | None
    ) -> None:
        self._app = app
        self._storage = storage
        self._auth = authenticator

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if self._auth is None:
            viewer: Any = ANYONE
        elif path == "/login":
            return self._login(environ, start_response)
        elif path == "/logout":
            expired = f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
            return _reply(start_response, "303 See Other", "", [
                ("Location", "/login"), ("Set-Cookie", expired),
            ])  # fmt: skip
        elif _OPEN.fullmatch(path):
            viewer = None
        else:
            viewer = self._principal(self._secret(environ))
            if viewer is None:
                if path.startswith("/api/") or path.startswith("/csv/"):
                    return _reply(start_response, "401 Unauthorized", '{"reason": "sign in"}')
                return _reply(start_response, "303 See Other", "", [("Location", "/login")])
        with viewing(viewer):  # None (a static file): sees no study
            refusal = self._refuse_write(environ, path)
            if refusal is not None:
                return _reply(start_response, "403 Forbidden", refusal)
            if viewer is not None and self._auth is not None:
                start_response = _uncached(start_response)  # what one principal saw, not kept
            # Bottle reads the request and builds the whole response in this call.
            return list(self._app(environ, start_response))

    def _secret(self, environ: Environ) -> str | None:
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        cookies = http.cookies.SimpleCookie(environ.get("HTTP_COOKIE", ""))
        return cookies[COOKIE].value if COOKIE in cookies else None

    def _principal(self, secret: str | None) -> Principal | None:
        if not secret or self._auth is None:
            return None
        try:
            return self._auth.cached_token(secret) or self._auth.authenticate_token(secret)
        except DomainError:  # unknown, revoked or expired
            return None

    def _login(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _reply(start_response, "200 OK", _LOGIN.format(error=""))
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = urllib.parse.parse_qs(environ["wsgi.input"].read(min(size, 4096)).decode())
        secret = (form.get("token") or [""])[0].strip()
        if self._principal(secret) is None:
            error = html.escape("That token is unknown, revoked or expired.")
            return _reply(start_response, "401 Unauthorized", _LOGIN.format(error=error))
        secure = "; Secure" if environ.get("wsgi.url_scheme") == "https" else ""
        cookie = f"{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict{secure}"
        return _reply(start_response, "303 See Other", "", [
            ("Location", "/dashboard"), ("Set-Cookie", cookie),
        ])  # fmt: skip

    def _refuse_write(self, environ: Environ, path: str) -> str | None:
        """Why this request may not write, as a JSON body; None when it may (or reads)."""
        if environ.get("REQUEST_METHOD") not in _WRITES:
            return None
        study_id: int | None = None
        if m := _STUDY_WRITE.fullmatch(path):
            study_id = int(m.group(1))
        elif m := _TRIAL_WRITE.fullmatch(path):
            study_id = self._storage.study_of_trial(int(m.group(1)))
        elif m := _ARTIFACTS.fullmatch(path):
            study_id = int(m.group(1))
        if study_id is None or not self._storage.may_write(study_id):
            return '{"reason": "not allowed: this needs the editor role on the study, and studies are created and deleted through the service"}'  # noqa: E501
        return None


def _uncached(start_response: StartResponse) -> StartResponse:
    def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        headers = [(k, v) for k, v in headers if k.lower() != "cache-control"]
        return start_response(status, [*headers, ("Cache-Control", "no-store")], *rest)

    return start
