"""The provider's HTTP client: one ``httpx.Client`` per provider, JSON only, errors in authcore's terms.

* Timeouts on every call (``timeout`` for connecting and each read, and for the whole
  answer), TLS checked against the system's CAs or ``ca_file``, redirects never followed
  (an OAuth endpoint does not redirect; following one could send our client secret elsewhere).
* Answers are read by streaming and capped at :data:`MAX_ANSWER` bytes; only JSON is accepted.
* Every failure is :class:`~authcore.ProviderUnavailable` whose message names the host and
  the reason, never a token, a secret or the body. OAuth error answers (RFC 6749 5.2) are
  read: ``invalid_grant`` raises the caller's *refused* error (a wrong password, a used code,
  a revoked refresh token), ``invalid_client``/``unauthorized_client`` say the issuer
  refused our client credentials.

``httpx`` is imported when the first client is made, never by ``import auth_oidc``.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode, urlsplit

from authcore import AuthError, ProviderUnavailable

from .config import OIDCConfig

if TYPE_CHECKING:
    import httpx

__all__ = ["IssuerHTTP", "MAX_ANSWER", "host_of"]

#: The most bytes read from one answer.
MAX_ANSWER: Final = 1024 * 1024
_JSON_TYPES: Final = ("application/json", "application/jwk-set+json")

ErrorClass = type[AuthError]


def host_of(url: str) -> str:
    """``host[:port]`` of *url*, without any user information."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


class _Failed(Exception):
    """An internal signal: the reason a call failed (turned into ``ProviderUnavailable`` by the caller)."""


class IssuerHTTP:
    """HTTP calls to one issuer for the provider instance *name*; safe to use from many threads."""

    def __init__(self, name: str, config: OIDCConfig) -> None:
        self.name = name
        self.config = config
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        #: Requests sent so far (every attempt, successful or not).
        self.requests = 0

    def client(self) -> httpx.Client:
        """The shared ``httpx.Client``, made on first use."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> httpx.Client:
        import httpx  # here: importing auth_oidc must not import httpx (the core's startup rule)

        config = self.config
        verify: ssl.SSLContext | bool
        if config.ca_file is not None and config.verify_tls:
            try:
                verify = ssl.create_default_context(cafile=config.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ProviderUnavailable(
                    f"provider {self.name!r}: ca_file cannot be read ({type(exc).__name__})"
                ) from None
        else:
            verify = config.verify_tls
        return httpx.Client(
            timeout=httpx.Timeout(config.timeout),
            verify=verify,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would see our client secret
            headers={"Accept": "application/json", "User-Agent": "authcore-oidc"},
        )

    def close(self) -> None:
        """Close the connections (a later call makes a new client)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # ------------------------------------------------------------ calls

    def get_json(self, url: str, *, bearer: str | None = None, refused: ErrorClass | None = None) -> Any:
        """GET *url* and return its JSON. With *bearer*, a 401/403 raises *refused* (the token is not accepted)."""
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else None
        status, body = self._send("GET", url, headers=headers)
        if status == 200:
            return self._json(url, body)
        if refused is not None and status in (401, 403):
            raise refused()
        raise self._unavailable(url, _status_reason(status, _oauth_error(body)))

    def post_form(
        self,
        url: str,
        form: dict[str, str],
        *,
        refused: ErrorClass,
        expect_json: bool = True,
    ) -> Any:
        """POST *form* to an OAuth endpoint with our client authentication; return the JSON answer.

        ``invalid_grant`` raises *refused*; a refusal of our client credentials and every other
        failure raise :class:`~authcore.ProviderUnavailable`. With ``expect_json=False`` any 2xx
        answer is fine and ``None`` is returned (revocation answers 200 with an empty body).
        """
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        form = dict(form)
        self._authenticate(form, headers)
        status, body = self._send("POST", url, headers=headers, content=urlencode(form).encode("ascii"))
        if 200 <= status < 300 and (status == 200 or not expect_json):
            return self._json(url, body) if expect_json else None
        error = _oauth_error(body)
        if error == "invalid_grant" and status in (400, 401):
            raise refused()
        if error in ("invalid_client", "unauthorized_client") or (status == 401 and not error):
            raise ProviderUnavailable(f"provider {self.name!r}: {host_of(url)} refused our client credentials")
        raise self._unavailable(url, _status_reason(status, error))

    def _authenticate(self, form: dict[str, str], headers: dict[str, str]) -> None:
        config = self.config
        method = config.auth_method
        secret = config.client_secret.get_secret_value() if config.client_secret is not None else ""
        if method == "client_secret_basic":
            # RFC 6749 2.3.1: both parts form-urlencoded before base64.
            pair = f"{quote(config.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form["client_id"] = config.client_id
            if method == "client_secret_post":
                form["client_secret"] = secret

    def _send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, content: bytes | None = None
    ) -> tuple[int, bytes]:
        import httpx

        client = self.client()
        self.requests += 1
        deadline = time.monotonic() + self.config.timeout
        try:
            with client.stream(method, url, headers=headers, content=content) as response:
                if 300 <= response.status_code < 400:
                    raise _Failed(f"answered a redirect ({response.status_code}); redirects are not followed")
                body = _read_capped(response, deadline)
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if body and response.status_code == 200 and not _is_json(kind):
                    raise _Failed(f"answered {response.status_code} with {kind or 'no content type'}, not JSON")
                return response.status_code, body
        except _Failed as exc:
            raise self._unavailable(url, str(exc)) from None
        except httpx.TimeoutException:
            raise self._unavailable(url, f"no answer within {self.config.timeout:g} s") from None
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise self._unavailable(url, "its TLS certificate is not trusted (see ca_file)") from None
            raise self._unavailable(url, "cannot be reached") from None
        except httpx.HTTPError as exc:
            raise self._unavailable(url, f"HTTP failure ({type(exc).__name__})") from None

    def _json(self, url: str, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise self._unavailable(url, "the answer is not valid JSON") from None

    def _unavailable(self, url: str, reason: str) -> ProviderUnavailable:
        return ProviderUnavailable(f"provider {self.name!r}: {host_of(url)}: {reason}")


def _read_capped(response: httpx.Response, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER:
        raise _Failed(f"answer larger than {MAX_ANSWER} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER:
            raise _Failed(f"answer larger than {MAX_ANSWER} bytes")
        if time.monotonic() > deadline:  # a server trickling bytes: each read is in time, the whole is not
            raise _Failed("the answer took longer than the timeout")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(kind: str) -> bool:
    return kind in _JSON_TYPES or kind.endswith("+json")


def _oauth_error(body: bytes) -> str:
    """The ``error`` code of an RFC 6749 5.2 answer, if it looks like one; else ``""``."""
    try:
        data = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str) and 0 < len(error) <= 64 and error.isascii() and error.replace("_", "").isalnum():
        return error
    return ""


def _status_reason(status: int, error: str) -> str:
    if status == 404:
        return "not found (404)"
    return f"answered {status}" + (f" ({error})" if error else "")
