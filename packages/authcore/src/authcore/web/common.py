"""Framework-independent pieces of the web layer.

Both adapters (:mod:`authcore.web.fastapi`, :mod:`authcore.web.flask`) and the standalone
service use these, so that they answer the same way:

* :func:`bearer_token`: strict ``Authorization: Bearer <token>`` parsing (the scheme is
  case-insensitive; one space; RFC 6750 token characters; bounded length). Malformed
  headers are :class:`~authcore.errors.InvalidToken` (401), never a server error.
* :func:`error_response`: an :class:`~authcore.errors.AuthError` → status, JSON body and
  headers. An unknown login and a wrong password give byte-identical bodies.
* :class:`LoginBody`: py-ispyb's login body ``{plugin, login, password, token}``.
* CSRF: a token bound to the cookie session (:func:`csrf_for_session`) that scripts read
  from a cookie and echo in a header or form field; cookie settings (``HttpOnly``, ``Secure`` except on loopback,
  ``SameSite``), :class:`StateSigner` for short-lived signed cookies (SSO state).
* :class:`Throttle`: optional per-login and per-address failure counting, bounded, keyed on
  :func:`canonical_login` (both defined in :mod:`authcore.web.throttle`, re-exported here).

Timing: the web layer adds no delay of its own and does the same work for an unknown
login and a wrong password; whether the *provider* takes as long for both is the
provider's job (the dummy provider does the same work for every login; ``auth-static``
checks unknown logins against a decoy hash; LDAP binds either way).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import (
    AuthError,
    ConfigError,
    InvalidCredentials,
    InvalidToken,
    NotSupported,
    ProviderUnavailable,
    UnknownProvider,
)
from ..models import LoginResult, VerifiedToken
from ..providers import MAX_TOKEN_LENGTH
from .throttle import Throttle, Throttled, canonical_login

__all__ = [
    "MAX_AUTHORIZATION_LENGTH",
    "MAX_BODY_BYTES",
    "SAFE_METHODS",
    "CSRF_HEADER",
    "CSRF_FIELD",
    "BadRequest",
    "NotAuthenticated",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "UnknownPlugin",
    "Throttled",
    "LoginBody",
    "RefreshBody",
    "CookieSettings",
    "WebSettings",
    "Throttle",
    "StateSigner",
    "SingleUse",
    "websocket_permissions",
    "bearer_token",
    "canonical_login",
    "csrf_for_session",
    "expected_csrf",
    "is_json_content_type",
    "parse_login",
    "query_token_refused",
    "single_header",
    "error_response",
    "validation_problems",
    "parse_json",
    "login_payload",
    "me_payload",
    "new_csrf_token",
    "csrf_matches",
    "is_loopback",
    "safe_next",
    "www_authenticate",
]

#: Longest ``Authorization`` header looked at: ``Bearer `` plus the longest token the core accepts.
MAX_AUTHORIZATION_LENGTH = len("Bearer ") + MAX_TOKEN_LENGTH
#: Largest JSON or form body the auth endpoints read.
MAX_BODY_BYTES = 64 * 1024
#: Methods that change nothing: no CSRF check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Header carrying the CSRF token on cookie-authenticated unsafe requests.
CSRF_HEADER = "X-CSRF-Token"
#: Form field carrying the CSRF token (the login page's forms).
CSRF_FIELD = "csrf_token"

# RFC 6750 b64token.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class BadRequest(AuthError):
    """The request body or parameters are malformed (400, or 422 for a body that fails validation)."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str | None = None, *, status_code: int = 400, problems: list[Any] | None = None):
        super().__init__(message or "bad request")
        self.status_code = status_code
        self.problems = problems or []


class NotAuthenticated(InvalidCredentials):
    """The request carries no credentials at all (401 ``not_authenticated``).

    A subclass of :class:`~authcore.errors.InvalidCredentials` so that code catching that
    still catches it, but answered as itself: "authentication required", not "invalid login
    or password" (nothing was tried), and without RFC 6750's ``error=`` in ``WWW-Authenticate``.
    """

    code = "not_authenticated"

    @classmethod
    def default_message(cls) -> str:
        return "authentication required"


class UnsupportedMediaType(AuthError):
    """The body is not ``application/json`` where JSON is required (415)."""

    status_code = 415
    code = "unsupported_media_type"

    @classmethod
    def default_message(cls) -> str:
        return "the body must be JSON (Content-Type: application/json)"


class UnknownPlugin(AuthError):
    """A login body whose ``plugin`` is missing, null, empty, not a string or not an enabled provider (400).

    The message lists the enabled provider instances: ``GET /auth/config`` publishes them anyway,
    and the first-time user needs to know what to write.
    """

    status_code = 400
    code = "unknown_provider"

    def __init__(self, enabled: Collection[str]) -> None:
        names = ", ".join(sorted(enabled)) or "none"
        super().__init__(f"'plugin' must name an enabled provider: {names}")


class PayloadTooLarge(AuthError):
    """The request body is larger than :data:`MAX_BODY_BYTES`."""

    status_code = 413
    code = "payload_too_large"

    @classmethod
    def default_message(cls) -> str:
        return "request body too large"


# --------------------------------------------------------------------------- bodies


class LoginBody(BaseModel):
    """py-ispyb's login body: ``plugin`` names the provider instance; the rest are optional.

    Values are checked by the core's credential packages; here only the shape. Unknown keys
    are ignored (front-ends send extra fields); the input never appears in error messages.
    """

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, frozen=True)

    plugin: str = Field(min_length=1, max_length=64)
    login: str | None = Field(default=None, max_length=4096)
    password: str | None = Field(default=None, max_length=4096)
    token: str | None = Field(default=None, max_length=MAX_TOKEN_LENGTH + 1)

    def credentials(self) -> dict[str, str | None]:
        """Keyword arguments for :meth:`AuthManager.login <authcore.AuthManager.login>`.

        py-ispyb's own client sends ``password`` and ``token`` both; empty strings mean "not given".
        """
        return {
            "login": self.login or None,
            "password": self.password or None,
            "token": self.token or None,
        }


class RefreshBody(BaseModel):
    """``POST /auth/refresh``: the refresh token of a session."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, frozen=True)

    refresh_token: str = Field(min_length=1, max_length=1024)


def validation_problems(exc: ValidationError) -> list[dict[str, Any]]:
    """A validation error as a list of ``{loc, msg, type}``: never the input (it may be a password)."""
    return [
        {"loc": [str(part) for part in error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_input=False, include_url=False, include_context=False)
    ]


def parse_json(raw: bytes, model: type[BaseModel] | None = None) -> Any:
    """Decode a JSON object body (and validate it with *model*); :class:`BadRequest` when malformed."""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    if model is None:
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest("the body is not valid", status_code=422, problems=validation_problems(exc)) from None


def is_json_content_type(content_type: str | None) -> bool:
    """Whether *content_type* is ``application/json`` or ``application/<something>+json`` (parameters ignored)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def parse_login(raw: bytes, content_type: str | None, enabled: Collection[str]) -> LoginBody:
    """``POST /auth/login``'s body, checked the same way by every adapter, in this order.

    1. Not JSON (form-encoded, ``text/plain``, multipart, no ``Content-Type``): 415. The adapters
       can start cookie sessions, and a cross-site ``<form>`` or ``fetch`` can send those types
       without a CORS preflight (login CSRF); ``application/json`` cannot.
    2. Larger than :data:`MAX_BODY_BYTES`: 413; not a JSON object: 400.
    3. ``plugin`` missing, null, empty, not a string, or not an enabled provider: 400
       (:class:`UnknownPlugin`, the same answer in every case, naming the enabled providers).
    4. The other fields' shape (types, lengths): 422 with the problems (never the input).
    """
    if not is_json_content_type(content_type):
        raise UnsupportedMediaType()
    data = parse_json(raw)
    plugin = data.get("plugin")
    if not isinstance(plugin, str) or plugin not in enabled:
        raise UnknownPlugin(enabled)
    result: LoginBody = parse_json(raw, LoginBody)
    return result


def query_token_refused(name: str) -> InvalidToken:
    """The refusal of a token sent in the query string of a plain HTTP request.

    Query strings end up in access logs, browser history and ``Referer`` headers; browsers
    cannot set headers on a websocket handshake, which is the only place ``query_token`` is
    honoured.
    """
    return InvalidToken(f"a token in the query string ({name}=) is accepted on websocket routes only")


# --------------------------------------------------------------------------- headers


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; ``None`` if there is no header.

    Strict: exactly one space after the scheme (``bearer`` in any case), RFC 6750 token
    characters, at most :data:`MAX_AUTHORIZATION_LENGTH` characters. Anything else raises
    :class:`~authcore.errors.InvalidToken`.
    """
    if not header:
        return None
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        raise InvalidToken("Authorization header too long")
    scheme, sep, token = header.partition(" ")
    if not sep or scheme.lower() != "bearer":
        raise InvalidToken("expected 'Authorization: Bearer <token>'")
    if not _B64TOKEN.fullmatch(token):
        raise InvalidToken("malformed bearer token")
    return token


def single_header(values: Sequence[str]) -> str | None:
    """The one value of a header that must not repeat (``Authorization``); ``None`` when absent.

    Several ``Authorization`` headers are ambiguous credentials (RFC 9110 does not allow the
    field to repeat): frameworks silently pick the first, a proxy may pick another, so refuse.
    """
    if len(values) > 1:
        raise InvalidToken("more than one Authorization header")
    return values[0] if values else None


def www_authenticate(exc: AuthError | None = None, realm: str = "authcore") -> str:
    """The ``WWW-Authenticate`` value of a 401 answer (RFC 6750)."""
    if isinstance(exc, InvalidToken):
        return f'Bearer realm="{realm}", error="invalid_token"'
    # No credentials at all (NotAuthenticated) or a failed login: no error code (RFC 6750 3.1).
    return f'Bearer realm="{realm}"'


def error_response(exc: AuthError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, body, headers)`` for *exc*.

    * Login failures: always :meth:`InvalidCredentials.default_message`, so the body does not
      tell an unknown login from a wrong password.
    * Server-side errors (configuration, unexpected): a generic message (it may name files).
    * An unknown provider named by a client is a 400, not a server error.
    """
    headers: dict[str, str] = {}
    status = exc.status_code
    code = exc.code
    message = exc.message
    if isinstance(exc, NotAuthenticated):
        message = NotAuthenticated.default_message()
    elif isinstance(exc, InvalidCredentials):
        # Code and message both fixed: a provider's subclass must not tell an unknown login apart.
        code, message = InvalidCredentials.code, InvalidCredentials.default_message()
    elif isinstance(exc, UnknownProvider):
        status, code, message = 400, "unknown_provider", "unknown provider"
    elif isinstance(exc, ProviderUnavailable):
        message = ProviderUnavailable.default_message()
    elif status >= 500 and not isinstance(exc, NotSupported):
        status, message = 500, "internal error"
    body: dict[str, Any] = {"detail": message, "code": code}
    if isinstance(exc, BadRequest) and exc.problems:
        body["errors"] = exc.problems
    if status == 401:
        headers["WWW-Authenticate"] = www_authenticate(exc)
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    return status, body, headers


# --------------------------------------------------------------------------- payloads


def login_payload(result: LoginResult) -> dict[str, Any]:
    """py-ispyb's ``{login, token, permissions}`` plus the session's refresh token and lifetime."""
    return {
        "login": result.login,
        "token": result.access_token,
        "permissions": list(result.permissions),
        "refresh_token": result.refresh_token,
        "token_type": "Bearer",
        "expires_in": result.expires_in,
        "expires_at": int(result.expires_at),
        "provider": result.identity.provider,
        "groups": list(result.identity.groups),
    }


def me_payload(user: VerifiedToken) -> dict[str, Any]:
    """What ``GET /auth/me`` answers: the verified caller (Jupyverse's ``username`` included)."""
    data = user.to_dict()
    data["username"] = user.login
    return data


# --------------------------------------------------------------------------- cookies, CSRF


def new_csrf_token() -> str:
    """A fresh CSRF token (256 random bits)."""
    return secrets.token_urlsafe(32)


def csrf_for_session(session_token: str) -> str:
    """The CSRF token of the cookie session whose token (access, else refresh cookie) is *session_token*.

    Bound to the session: ``HMAC-SHA256(key=session token, "authcore-csrf")``. The session
    token is an ``HttpOnly`` secret, so nobody else can compute this value, and a CSRF cookie
    planted from a sibling subdomain (cookie tossing: a same-site page may set cookies for the
    parent domain) belongs to no session the victim's browser holds. No server key is needed,
    so it survives restarts and works across instances; it changes when the tokens rotate, and
    every response that rotates them sets the new value in the CSRF cookie.
    """
    digest = hmac.new(session_token.encode("utf-8", "replace"), b"authcore-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def expected_csrf(cookies: Mapping[str, str], names: CookieSettings) -> str | None:
    """The CSRF value a cookie-authenticated unsafe request must echo (header or form field).

    With a session cookie: :func:`csrf_for_session` of the access cookie, else of the refresh
    cookie (the one the request is authenticated with). The CSRF cookie itself is only how a
    script learns the value; it is never trusted for a session. Without a session (a sign-in
    form), the plain double submit: the CSRF cookie's value.
    """
    session_token = cookies.get(names.access) or cookies.get(names.refresh)
    if session_token:
        return csrf_for_session(session_token)
    return cookies.get(names.csrf) or None


def csrf_matches(expected: str | None, supplied: str | None) -> bool:
    """Whether *supplied* (header or form field) equals *expected* (cookie or session), in constant time."""
    if not expected or not supplied or len(supplied) > 256:
        return False
    return hmac.compare_digest(expected.encode(), supplied.encode())


def is_loopback(host: str | None) -> bool:
    """Whether *host* (``name``, ``name:port``, ``[v6]:port``, or an address) is this machine."""
    if not host:
        return False
    name = host.strip()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name.lower() in {"localhost", "localhost.localdomain"} or name.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def safe_next(value: str | None, default: str = "/") -> str:
    """A redirect target that stays on this site: a path, not ``//host`` nor ``scheme:``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 2048:
        return default
    if any(ord(c) < 0x21 for c in value):
        return default
    return value


@dataclass(frozen=True)
class CookieSettings:
    """Names and attributes of the cookies the web layer sets.

    ``secure=None`` means: ``Secure`` unless the request came to a loopback host (so that
    ``http://127.0.0.1`` works in development). Session cookies are always ``HttpOnly``;
    the CSRF cookie is readable by scripts on purpose (double submit).
    """

    access: str = "authcore_access"
    refresh: str = "authcore_refresh"
    csrf: str = "authcore_csrf"
    sso: str = "authcore_sso"
    samesite: Literal["lax", "strict"] = "lax"
    secure: bool | None = None
    path: str = "/"

    def secure_for(self, host: str | None) -> bool:
        """Whether cookies set for a request to *host* carry ``Secure``."""
        return self.secure if self.secure is not None else not is_loopback(host)


# --------------------------------------------------------------------------- signed state


class StateSigner:
    """Short-lived, HMAC-signed JSON values for cookies (the SSO state, nonce and PKCE verifier).

    The key is random per process unless given: a restart voids pending SSO logins, nothing else.
    The value is signed, not encrypted: it is kept in an ``HttpOnly`` cookie on the browser that
    started the login, which is the party the PKCE verifier belongs to anyway.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        if len(self._key) < 32:
            raise ConfigError("the state signing key needs at least 32 bytes")

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def dumps(self, data: Mapping[str, Any], ttl: float) -> str:
        """Sign *data*, valid for *ttl* seconds."""
        payload = json.dumps({"d": dict(data), "e": int(time.time() + ttl)}, separators=(",", ":")).encode()
        encoded = base64.urlsafe_b64encode(payload).rstrip(b"=")
        return f"{encoded.decode()}.{self._mac(encoded)}"

    def loads(self, value: str | None) -> dict[str, Any]:
        """The data of a value from :meth:`dumps`; :class:`InvalidToken` if forged, malformed or expired."""
        if not value or len(value) > 8192 or value.count(".") != 1:
            raise InvalidToken("missing or malformed state")
        encoded, mac = value.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(encoded.encode()).encode()):
            raise InvalidToken("state signature mismatch")
        try:
            document = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            data, expires = document["d"], document["e"]
        except (ValueError, KeyError, TypeError):
            raise InvalidToken("malformed state") from None
        if not isinstance(data, dict) or not isinstance(expires, int) or time.time() >= expires:
            raise InvalidToken("state expired")
        return data


class SingleUse:
    """Values (SSO states) that may be redeemed once within *ttl* seconds; per process, bounded.

    Entries are kept for *ttl* (after that the signed cookie carrying the value has expired
    anyway); at most *max_entries* are kept, the oldest (closest to expiry) going first.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._used: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def redeem(self, value: str) -> None:
        """Mark *value* as used; :class:`~authcore.errors.InvalidToken` if it was used before."""
        now = time.time()
        with self._lock:
            used = self._used
            while used and next(iter(used.values())) < now:
                used.popitem(last=False)
            if value in used:
                raise InvalidToken("single sign-on: state already used")
            used[value] = now + self.ttl
            while len(used) > self.max_entries:
                used.popitem(last=False)


def websocket_permissions(
    user: VerifiedToken, permissions: Mapping[str, Iterable[str]] | Iterable[str] | str | None
) -> tuple[Any, bool]:
    """Jupyverse's websocket rule: which of *permissions* the user holds, and whether any."""
    if permissions is None:
        return None, True
    if isinstance(permissions, Mapping):
        checked: dict[str, list[str]] = {}
        for resource, actions in permissions.items():
            allowed = checked[resource] = []
            for action in [actions] if isinstance(actions, str) else actions:
                if user.allows(f"{resource}:{action}"):
                    allowed.append(action)
        return checked, any(checked.values())
    wanted = [permissions] if isinstance(permissions, str) else list(permissions)
    held = [p for p in wanted if user.allows(p)]
    return held, bool(held)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class WebSettings:
    """How an adapter exposes authcore over HTTP. Every default is the safe choice.

    * ``prefix``: put in front of every auth path (``/ispyb/api/v1`` → ``/ispyb/api/v1/auth/login``).
    * ``query_token``: name of a query parameter accepted as a token on **websocket** routes
      (browsers cannot set headers on a websocket handshake); ``None`` (default) accepts none.
      A plain HTTP request carrying it is refused (401): query strings end up in access logs
      (see :class:`authcore.web.logfilter.RedactTokens`), history and ``Referer`` headers.
    * ``cookie_auth``: accept the access-token cookie set by the login page / SSO callback
      (unsafe methods then need the CSRF token).
    * ``admin_permission``: what the user-management endpoints require: ``users:admin`` grants
      them on every provider instance, ``users:admin:<instance>`` on that instance only.
    * ``cors_origins``: origins allowed by CORS; empty (default) switches CORS off. ``"*"`` is
      refused together with ``cors_credentials``.
    * ``throttle``: a :class:`Throttle`, or ``None`` for no throttling.
    * ``public_url``: the external base URL (``https://host``) for SSO redirect URIs; default:
      taken from the request.
    """

    prefix: str = ""
    query_token: str | None = None
    cookie_auth: bool = False
    cookies: CookieSettings = field(default_factory=CookieSettings)
    admin_permission: str = "users:admin"
    cors_origins: tuple[str, ...] = ()
    cors_credentials: bool = False
    throttle: Throttle | None = None
    public_url: str | None = None
    state_key: bytes | None = field(default=None, repr=False)
    sso_state_ttl: float = 600.0

    def __post_init__(self) -> None:
        if self.prefix and (not self.prefix.startswith("/") or self.prefix.endswith("/") or "//" in self.prefix):
            raise ConfigError("prefix must start with '/' and not end with '/' (e.g. /ispyb/api/v1)")
        if "*" in self.cors_origins and self.cors_credentials:
            raise ConfigError("CORS: '*' cannot be combined with credentials; list the origins")
        if self.query_token is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", self.query_token):
            raise ConfigError("query_token must be a parameter name")

    def cookie_secure(self, host: str | None) -> bool:
        """Whether cookies set for a request to *host* carry ``Secure``.

        With ``public_url`` its host decides, not the request's ``Host``: behind a reverse proxy
        that forwards to ``127.0.0.1`` (nginx's default ``Host: $proxy_host``) the request looks
        like loopback although the browser is on the public HTTPS site.
        """
        if self.cookies.secure is None and self.public_url is not None:
            return self.cookies.secure_for(urlsplit(self.public_url).netloc)
        return self.cookies.secure_for(host)

    def path(self, suffix: str) -> str:
        """``prefix + suffix``."""
        return f"{self.prefix}{suffix}"
