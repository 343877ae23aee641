"""The issuer's discovery document (OpenID Connect Discovery 1.0): fetched, checked, cached.

Checks, each failure a :class:`~authcore.ProviderUnavailable` that says what is wrong:

* the document's ``issuer`` equals the configured one; a single trailing ``/`` of difference
  is forgiven (MXCuBE's example ``ISSUER`` ends in ``/``, Keycloak's issuer does not). From
  then on the *document's* spelling is the issuer, compared exactly, also in later documents;
* ``authorization_endpoint``, ``token_endpoint`` and ``jwks_uri`` are there, and every
  endpoint is an http(s) URL; ``http://`` endpoints of an ``https://`` issuer only with
  ``allow_plaintext`` (a downgrade would expose codes, tokens and the client secret);
* the signature algorithms the issuer publishes (``*_signing_alg_values_supported`` of what
  it signs: ID tokens, userinfo, introspection and authorization responses) are kept, so
  tokens signed with any other algorithm are refused (see :mod:`auth_oidc.signing`).

Caching follows the keys' rules: fresh for ``discovery_ttl``; then the first caller
refetches while the others go on; a failed refetch keeps the document (stale-if-error) for
at most ``jwks_max_stale`` seconds, and is not retried within ``jwks_refetch_cooldown``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from authcore import AuthError, ProviderUnavailable

from .config import OIDCConfig
from .http import IssuerHTTP, host_of

__all__ = ["Metadata", "Discovery", "check_document", "same_issuer"]

log = logging.getLogger("auth_oidc")

_REQUIRED: Final = ("authorization_endpoint", "token_endpoint", "jwks_uri")
_OPTIONAL: Final = ("userinfo_endpoint", "introspection_endpoint", "revocation_endpoint", "end_session_endpoint")
#: What the issuer itself signs: the algorithms of its tokens and signed answers.
_SIGNING_LISTS: Final = (
    "id_token_signing_alg_values_supported",
    "userinfo_signing_alg_values_supported",
    "introspection_signing_alg_values_supported",
    "authorization_signing_alg_values_supported",
)


@dataclass(frozen=True, slots=True)
class Metadata:
    """The parts of a checked discovery document the provider uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    introspection_endpoint: str | None
    revocation_endpoint: str | None
    end_session_endpoint: str | None
    #: Signature algorithms the issuer says it signs with.
    published_algorithms: frozenset[str]
    #: RFC 9207: the issuer sends ``iss`` in authorization responses (then it is required).
    iss_parameter_supported: bool


def same_issuer(configured: str, published: str) -> bool:
    """Whether a document naming *published* belongs to the *configured* issuer (one trailing ``/`` forgiven)."""
    if published == configured:
        return True
    return published + "/" == configured or configured + "/" == published


def check_document(document: Any, config: OIDCConfig, expected: str | None = None) -> Metadata:
    """The :class:`Metadata` of *document*; raises :class:`ValueError` saying what is wrong.

    *expected*: the issuer an earlier document established (compared exactly).
    """
    if type(document) is not dict:
        raise ValueError("the discovery document is not a JSON object")
    issuer = document.get("issuer")
    if type(issuer) is not str or not issuer:
        raise ValueError("the discovery document names no issuer")
    if expected is not None and issuer != expected:
        raise ValueError(f"the discovery document now names issuer {_show(issuer)} instead of {_show(expected)}")
    if not same_issuer(config.issuer, issuer):
        raise ValueError(
            f"the discovery document names issuer {_show(issuer)}, not the configured {_show(config.issuer)}"
        )
    https_issuer = urlsplit(config.issuer).scheme == "https"
    endpoints: dict[str, str | None] = {}
    for name in (*_REQUIRED, *_OPTIONAL):
        value = document.get(name)
        if value is None and name in _OPTIONAL:
            endpoints[name] = None
            continue
        if type(value) is not str or not value:
            raise ValueError(f"the discovery document has no {name}")
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or not value.isascii()
            or not value.isprintable()
        ):
            raise ValueError(f"the discovery document's {name} is not an http(s) URL")
        if parts.scheme == "http" and https_issuer and not config.allow_plaintext:
            raise ValueError(f"the discovery document's {name} is plaintext http:// (set allow_plaintext to accept)")
        endpoints[name] = value
    published: set[str] = set()
    for name in _SIGNING_LISTS:
        values = document.get(name)
        if type(values) is list:
            published.update(v for v in values if type(v) is str)
    return Metadata(
        issuer=issuer,
        authorization_endpoint=str(endpoints["authorization_endpoint"]),
        token_endpoint=str(endpoints["token_endpoint"]),
        jwks_uri=str(endpoints["jwks_uri"]),
        userinfo_endpoint=endpoints["userinfo_endpoint"],
        introspection_endpoint=endpoints["introspection_endpoint"],
        revocation_endpoint=endpoints["revocation_endpoint"],
        end_session_endpoint=endpoints["end_session_endpoint"],
        published_algorithms=frozenset(published),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported") is True,
    )


def _show(value: str) -> str:
    return repr(value[:200]) if value.isprintable() else "(unprintable)"


class Discovery:
    """The checked discovery document of one issuer, cached (see the module documentation)."""

    def __init__(self, http: IssuerHTTP, config: OIDCConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self._config = config
        self._clock = clock
        #: The document held now (read by the bearer hot path; :attr:`cached` is its public name).
        self.held: Metadata | None = None
        self.fresh_until = float("-inf")
        self._last_failure = float("-inf")
        self._lock = threading.Lock()
        #: Fetches attempted.
        self.fetches = 0

    @property
    def cached(self) -> Metadata | None:
        """The document held now, fresh or stale; ``None`` before the first successful fetch."""
        return self.held

    def get(self) -> Metadata:
        """The document: cached while fresh, refetched after ``discovery_ttl``, stale within ``jwks_max_stale``."""
        metadata = self.held
        if metadata is not None and self._clock() < self.fresh_until:
            return metadata
        if metadata is None:
            with self._lock:
                if self.held is not None:
                    return self.held
                if self._clock() - self._last_failure < self._config.jwks_refetch_cooldown:
                    raise self._unavailable("the discovery document could not be fetched (retried after a pause)")
                return self._fetch()
        return self._stale(metadata)

    def _stale(self, metadata: Metadata) -> Metadata:
        if self._lock.acquire(blocking=False):  # one caller refetches, the others go on with what is held
            try:
                now = self._clock()
                if now >= self.fresh_until and now - self._last_failure >= self._config.jwks_refetch_cooldown:
                    try:
                        return self._fetch()
                    except AuthError as exc:
                        log.warning("refetching the discovery document of %s failed (%s)", metadata.issuer, exc.code)
            finally:
                self._lock.release()
        if self._clock() >= self.fresh_until + self._config.jwks_max_stale:
            raise self._unavailable("the discovery document could not be refreshed for longer than jwks_max_stale")
        return self.held or metadata

    def refresh(self) -> Metadata:
        """Fetch the document now (health checks); raises when that fails."""
        with self._lock:
            return self._fetch()

    def _fetch(self) -> Metadata:
        """Fetch and check (the lock is held)."""
        self.fetches += 1
        expected = self.held.issuer if self.held is not None else None
        try:
            document = self._http.get_json(self._config.discovery_url)
            metadata = check_document(document, self._config, expected)
        except ProviderUnavailable:
            self._last_failure = self._clock()
            raise
        except ValueError as exc:
            self._last_failure = self._clock()
            raise self._unavailable(str(exc)) from None
        self.held = metadata
        self.fresh_until = self._clock() + self._config.discovery_ttl
        return metadata

    def _unavailable(self, reason: str) -> ProviderUnavailable:
        return ProviderUnavailable(f"provider {self._http.name!r}: {host_of(self._config.discovery_url)}: {reason}")
