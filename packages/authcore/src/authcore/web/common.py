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
import json
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import (
    BadRequest,
    ConfigError,
    InvalidToken,
    NotAuthenticated,
    PayloadTooLarge,
    Throttled,
    UnknownPlugin,
    UnsupportedMediaType,
)
from ..models import LoginResult, VerifiedToken
from ..providers import MAX_BEARER_TOKEN_LENGTH
from ..sessions.shared import MemorySharedState, SharedState
from .http import MAX_BODY_BYTES, WebRequest, error_response, www_authenticate
from .settings import CookieSettings, WebSettings, is_loopback
from .throttle import Throttle, canonical_login

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
    "json_body",
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
MAX_AUTHORIZATION_LENGTH = len("Bearer ") + MAX_BEARER_TOKEN_LENGTH
#: Methods that change nothing: no CSRF check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Header carrying the CSRF token on cookie-authenticated unsafe requests.
CSRF_HEADER = "X-CSRF-Token"
#: Form field carrying the CSRF token (the login page's forms).
CSRF_FIELD = "csrf_token"

# RFC 6750 b64token.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


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
    token: str | None = Field(default=None, max_length=MAX_BEARER_TOKEN_LENGTH + 1)

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


_Model = TypeVar("_Model", bound=BaseModel)


def json_body(request: WebRequest, model: type[_Model], *, optional: bool = False) -> _Model:
    """*request*'s JSON body as *model*: 415 unless ``application/json``, then :func:`parse_json`'s
    413/400/422. *optional*: an empty body is the model's defaults.

    JSON only, as for a login: a cross-site ``<form>`` or a simple ``fetch`` cannot send it
    without a CORS preflight, so a route that starts a cookie session cannot be driven by them.
    """
    raw = request.read_body()
    if optional and not raw.strip():
        return model()
    if not is_json_content_type(request.header("content-type")):
        raise UnsupportedMediaType()
    parsed: _Model = parse_json(raw, model)
    return parsed


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


def safe_next(value: str | None, default: str = "/") -> str:
    """A redirect target that stays on this site: a path, not ``//host`` nor ``scheme:``.

    Non-ASCII characters come back percent-encoded (UTF-8): a ``Location`` header is ASCII, and
    an adapter that encodes it as latin-1 (Starlette) would fail after the login was made.
    """
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 0x21 for c in value):
        return default
    value = quote(value, safe=_PRINTABLE_ASCII)
    return value if len(value) <= 2048 else default


# Left as they are by safe_next: everything visible in ASCII, "%" included (escapes stay as sent).
_PRINTABLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


# --------------------------------------------------------------------------- signed state


class StateSigner:
    """Short-lived, HMAC-signed JSON values for cookies (the SSO state, nonce and PKCE verifier).

    The key is *key* if given (``web.sso_state_secret``); else *key_source*'s answer, asked on
    every use (the secret every instance agrees on through a shared session store:
    :meth:`~authcore.sessions.shared.SharedState.agreed_secret`, so a callback may land on any
    instance, and an instance never keeps a key the store has lost); else random per process: a
    restart voids pending SSO logins, nothing else. The value is signed, not encrypted: it is
    kept in an ``HttpOnly`` cookie on the browser that started the login, which is the party the
    PKCE verifier belongs to anyway.
    """

    def __init__(self, key: bytes | None = None, key_source: Callable[[], bytes] | None = None) -> None:
        self._source = key_source if key is None else None
        self._key = key if key is not None else secrets.token_bytes(32)
        if len(self._key) < 32:
            raise ConfigError("the state signing key needs at least 32 bytes")

    def _mac(self, payload: bytes) -> str:
        key = self._key if self._source is None else self._source()
        if len(key) < 32:
            raise ConfigError("the state signing key needs at least 32 bytes")
        digest = hmac.new(key, payload, hashlib.sha256).digest()
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
    """Values (SSO states) that may be redeemed once within *ttl* seconds.

    The record of redeemed values is a :class:`~authcore.sessions.shared.SharedState`'s claims:
    by default this process's bounded memory (at most *max_entries*, the oldest going first);
    with the Redis session store's, a value redeemed on one instance is refused on every other.
    After *ttl* the signed cookie carrying the value has expired anyway.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000, state: SharedState | None = None) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.state: SharedState = MemorySharedState(max_entries) if state is None else state

    def redeem(self, value: str) -> None:
        """Mark *value* as used; :class:`~authcore.errors.InvalidToken` if it was used before."""
        if not self.state.claim("sso-state:" + value, ttl=self.ttl):
            raise InvalidToken("single sign-on: state already used")


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
