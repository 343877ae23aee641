"""The small request/response abstraction the web core works on; adapters translate to and from it.

A :class:`WebRequest` is what an operation may look at (method, path, headers, cookies, query,
body bytes, client address); a :class:`WebResponse` is what it answers (status, headers,
cookies to set or clear, a JSON, HTML or empty body, or a redirect). Nothing here imports a
web framework.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..capabilities import SecondFactorRequired
from ..errors import (
    AuthError,
    BadRequest,
    InvalidCredentials,
    InvalidToken,
    NotAuthenticated,
    NotSupported,
    PayloadTooLarge,
    ProviderUnavailable,
    Throttled,
    UnknownProvider,
)

__all__ = [
    "MAX_BODY_BYTES",
    "SetCookie",
    "WebRequest",
    "WebResponse",
    "check_declared_length",
    "error_response",
    "www_authenticate",
]

#: Largest JSON or form body the auth endpoints read.
MAX_BODY_BYTES = 64 * 1024


def check_declared_length(declared: str | int | None) -> None:
    """Refuse (413) a ``Content-Length`` above :data:`MAX_BODY_BYTES` or not a plain number, before reading."""
    if declared is None:
        return
    text = str(declared)
    # isascii(): str.isdigit() accepts digits int() refuses; the header is latin-1 decoded.
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_BODY_BYTES:
        raise PayloadTooLarge()


def www_authenticate(exc: AuthError | None = None, realm: str = "authcore") -> str:
    """The ``WWW-Authenticate`` value of a 401 answer (RFC 6750)."""
    if isinstance(exc, InvalidToken):
        return f'Bearer realm="{realm}", error="invalid_token"'
    # No credentials at all (NotAuthenticated) or a failed login: no error code (RFC 6750 3.1).
    return f'Bearer realm="{realm}"'


def error_response(exc: AuthError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, body, headers)`` for *exc*: the one error body, ``{"detail", "code"[, "errors"]}``.

    * Login failures: always :attr:`InvalidCredentials.default_message`, so the body does not
      tell an unknown login from a wrong password.
    * Server-side errors (configuration, unexpected): a generic message (it may name files).
    * An unknown provider named by a client is a 400, not a server error.
    """
    headers: dict[str, str] = {}
    second_step: dict[str, Any] = {}
    status, code, message = exc.status_code, exc.code, exc.message
    if isinstance(exc, NotAuthenticated):
        message = NotAuthenticated.default_message
    elif isinstance(exc, SecondFactorRequired):
        # The password was right: the client needs the challenge for the second step.
        second_step = {"challenge": exc.challenge, "methods": list(exc.methods), "expires_in": exc.expires_in}
    elif isinstance(exc, InvalidCredentials):
        # Code and message both fixed: a provider's subclass must not tell an unknown login apart.
        code, message = InvalidCredentials.code, InvalidCredentials.default_message
    elif isinstance(exc, UnknownProvider):
        status, code, message = 400, "unknown_provider", "unknown provider"
    elif isinstance(exc, ProviderUnavailable):
        # The class's fixed message ("session store unavailable"), never the instance's: a
        # provider's may name hosts or echo what a directory said.
        message = type(exc).default_message
    elif status >= 500 and not isinstance(exc, NotSupported):
        status, message = 500, "internal error"
    body: dict[str, Any] = {"detail": message, "code": code, **second_step}
    if isinstance(exc, BadRequest) and exc.problems:
        body["errors"] = exc.problems
    if status == 401:
        headers["WWW-Authenticate"] = www_authenticate(exc)
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    return status, body, headers


@dataclass
class WebRequest:
    """One HTTP request (or websocket handshake), as the adapter read it.

    ``headers`` maps lower-case names to every value received (a repeated ``Authorization`` is
    refused, so repetition must be visible). The body is read lazily by :meth:`read_body` through
    ``body_reader`` (which reads at most :data:`MAX_BODY_BYTES` + 1 bytes and refuses a larger
    declared length), so a guarded route refuses an anonymous caller before reading anything.
    """

    method: str
    path: str
    headers: Mapping[str, Sequence[str]]
    cookies: Mapping[str, str]
    query: Mapping[str, str]
    client: str | None = None
    scheme: str = "http"
    host: str = ""
    hostname: str | None = None
    websocket: bool = False
    params: dict[str, str] = field(default_factory=dict)
    body_reader: Callable[[], bytes] | None = field(default=None, repr=False)
    #: What an operation parsed once and may need again (the login body, decided on before dispatch).
    memo: dict[str, Any] = field(default_factory=dict, repr=False)
    _body: bytes | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        """The first value of header *name* (case-insensitive), ``None`` when absent."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def header_list(self, name: str) -> Sequence[str]:
        """Every value of header *name*."""
        return self.headers.get(name.lower(), ())

    def read_body(self) -> bytes:
        """The body; :class:`~authcore.errors.PayloadTooLarge` above :data:`MAX_BODY_BYTES`."""
        if self._body is None:
            self._body = self.body_reader() if self.body_reader is not None else b""
        if len(self._body) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        return self._body

    def preload(self, body: bytes) -> None:
        """Give the body already read (an async adapter reads it on its event loop)."""
        self._body, self.body_reader = body, None

    @property
    def base_url(self) -> str:
        """``scheme://host`` as the client addressed us."""
        return f"{self.scheme}://{self.host}"


@dataclass(frozen=True)
class SetCookie:
    """A cookie to set, or to clear when ``value`` is ``None``."""

    name: str
    value: str | None
    max_age: int | None = None
    httponly: bool = True
    secure: bool = False
    samesite: str = "lax"
    path: str = "/"
    domain: str | None = None

    def attributes(self) -> dict[str, Any]:
        """The keyword arguments both Starlette's and werkzeug's ``set_cookie``/``delete_cookie`` take."""
        return {
            "path": self.path,
            "domain": self.domain,
            "secure": self.secure,
            "httponly": self.httponly,
            "samesite": self.samesite,
        }


@dataclass
class WebResponse:
    """What an operation answers. ``json`` wins over ``html``; with neither the body is empty."""

    status: int = 200
    json: Any = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[SetCookie] = field(default_factory=list)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> WebResponse:
        """A redirect to *location*."""
        return cls(status=status, headers={"Location": location})

    @classmethod
    def error(cls, exc: AuthError) -> WebResponse:
        """The one error body of *exc* (see :func:`authcore.web.common.error_response`)."""
        status, body, headers = error_response(exc)
        return cls(status=status, json=body, headers=headers)

    def body_bytes(self) -> bytes:
        """The encoded body."""
        if self.json is not None:
            return json.dumps(self.json, separators=(",", ":"), ensure_ascii=False).encode()
        return (self.html or "").encode()

    @property
    def media_type(self) -> str | None:
        """``Content-Type`` of the body, ``None`` for an empty one."""
        if self.json is not None:
            return "application/json"
        return "text/html; charset=utf-8" if self.html is not None else None
