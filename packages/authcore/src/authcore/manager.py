"""AuthManager: the one object a host application holds.

It wires the configured providers, the plugin hooks, the token service and the
session store together, and is the only place where a login turns into tokens.
Safe to share between threads; ``a*`` methods serve asynchronous hosts.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import pluggy

from . import dev_state, upstream
from . import permissions as _permissions
from .async_api import AsyncMethods, StoreCall, made_in_place
from .capabilities import BearerTokens, SecondFactor, UserManagement
from .claims import verified_token
from .config import AuthcoreConfig, load_config, parse_config
from .config.checks import check_token_secret, exposed_file_warnings, located
from .errors import (
    AuthError,
    ConfigError,
    InvalidCredentials,
    InvalidToken,
    NotSupported,
    TokenExpired,
    UnknownProvider,
)
from .instances import start_providers
from .login_results import LoginResults, StartedLogin
from .logins import Identities, credentials_for, granted_of, printable, restore, snapshot
from .models import Identity, LoginResult, VerifiedToken
from .permission_store import register_permission_stores
from .plugins import ProviderRegistry, create_plugin_manager
from .providers import Credentials, Health, Provider
from .second_factor import SecondFactorLogins
from .session_control import SessionControl
from .sessions import PERSONAL_TOKEN_PREFIX, RefreshTokenReused, SessionRecord, Sessions, open_store
from .token_cache import TokenCache
from .tokens import TokenService

__all__ = ["AuthManager"]

log = logging.getLogger("authcore")

_T = TypeVar("_T")


class AuthManager(AsyncMethods, SessionControl, SecondFactorLogins, LoginResults):
    """Authentication and authorization for one host application.

    Build it with :meth:`from_file` or :meth:`from_config`. ``state_dir`` is for
    command-line use in development: without a configured secret and session store,
    the development secret and the sessions are kept there, so that a token issued by
    one process verifies in the next.
    """

    def __init__(
        self,
        config: AuthcoreConfig,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugin_manager if plugin_manager is not None else create_plugin_manager()
        self._registry = ProviderRegistry(self.plugins)
        # Production refuses a missing or weak HMAC secret; development warns once about a weak one.
        check_token_secret(config, log)
        state = Path(state_dir) if state_dir is not None else None
        self._tokens = self._open_tokens(state)
        self._sessions = Sessions(self._open_store(state), config.sessions)
        self._cache = TokenCache(config.tokens.cache_size) if config.tokens.cache_size else None
        # Cached verifications with a store other processes write to are re-checked this often.
        self._recheck = config.tokens.revocation_check_interval if self._sessions.store.shared else None
        # A store announcing revocations (Redis) reaches the cache at once; see TokenCache.follow.
        cache = self._cache
        self._unfollow = cache.follow(self._sessions.store, config.sessions.outage_grace) if cache is not None else None
        self._identities = Identities(self.plugins, config.permissions)
        register_permission_stores(self.plugins, config)
        self._providers: dict[str, Provider] = {}
        try:
            start_providers(config, self._registry, self._providers)
        except BaseException:
            self.close()
            raise
        self.providers: Mapping[str, Provider] = MappingProxyType(self._providers)
        for warning in exposed_file_warnings(config, self._providers):
            log.warning("%s", warning)
        self._bearer_providers: tuple[BearerTokens, ...] = tuple(
            p for p in self._providers.values() if isinstance(p, BearerTokens)
        )
        # verify() may call these on a token that is not ours: averify() must not do that on the loop.
        self._bearer_blocks = any(getattr(p, "blocking", True) for p in self._bearer_providers)

    # ----------------------------------------------------------------- building

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> AuthManager:
        """Load a YAML configuration file (authcore's schema or a py-ispyb ``auth.yml``)."""
        return cls(load_config(path), **kwargs)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | AuthcoreConfig, **kwargs: Any) -> AuthManager:
        """Build from a configuration dict (same schema as the file) or a validated config."""
        if not isinstance(config, AuthcoreConfig):
            config = parse_config(config, interpolate=False)
        return cls(config, **kwargs)

    def _open_tokens(self, state: Path | None) -> TokenService:
        tokens = self.config.tokens
        # The command line's development state keeps a secret across processes (see dev_state).
        fallback_secret = dev_state.token_secret(state, tokens) if state is not None else None
        try:
            return TokenService(tokens, fallback_secret=fallback_secret)
        except ConfigError as exc:
            # Errors about a configured value name its file, line and key path, like the schema's.
            key = "private_key_file" if tokens.private_key_file is not None else "secret"
            raise located(self.config.source, ("tokens", key), exc) from None

    def _open_store(self, state: Path | None) -> Any:
        sessions = self.config.sessions
        try:
            url = dev_state.session_store_url(state, sessions) if state is not None else sessions.store
            store = open_store(url)
            if store is None:
                store = self.plugins.hook.authcore_session_store(url=url)
            if store is None:
                scheme = url.partition(":")[0]
                raise ConfigError(
                    f"sessions.store: no session store for scheme {scheme!r} (memory, sqlite, or a plugin's)"
                )
        except ConfigError as exc:
            raise located(self.config.source, ("sessions", "store"), exc) from None
        return store

    # ----------------------------------------------------------------- providers

    def provider(self, name: str) -> Provider:
        """The enabled provider instance called *name*."""
        provider = self._providers.get(name)
        if provider is None:
            known = ", ".join(sorted(self._providers)) or "none"
            raise UnknownProvider(f"no enabled provider named {name!r} (enabled: {known})")
        return provider

    def users(self, provider: str) -> UserManagement:
        """The user-management side of *provider*; :class:`NotSupported` if it has none."""
        instance = self.provider(provider)
        if not isinstance(instance, UserManagement):
            raise NotSupported(provider, "user management")
        return instance

    def permissions_for(self, identity: Identity) -> tuple[str, ...]:
        """Every permission *identity* holds as a login would grant it (its own, the configured
        defaults and group mapping, permission plugins): for identities from user management."""
        return self._identities.permissions_for(identity)

    def public_config(self) -> dict[str, Any]:
        """What a login page may know: every enabled provider's public config, token settings. No secrets."""
        return {
            "providers": [p.public_config() for p in self._providers.values()],
            "tokens": {
                "issuer": self.config.tokens.issuer,
                "audience": self.config.tokens.audience,
                "algorithm": self.config.tokens.algorithm,
                "access_ttl": int(self.config.tokens.access_ttl),
            },
        }

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify our tokens (empty for HMAC algorithms)."""
        return self._tokens.jwks()

    def health(self) -> dict[str, Health]:
        """Health of every enabled provider; a provider that raises counts as unhealthy."""
        result = {}
        for name, provider in self._providers.items():
            try:
                result[name] = provider.health()
            except Exception as exc:  # health checks report, they do not raise
                result[name] = Health(ok=False, detail=type(exc).__name__)
        return result

    # ----------------------------------------------------------------- login

    def login(
        self,
        provider: str,
        *,
        login: str | None = None,
        password: str | None = None,
        token: str | None = None,
        code: str | None = None,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
        nonce: str | None = None,
        issuer: str | None = None,
    ) -> LoginResult:
        """Log in through the enabled provider *provider* and start a session.

        Give ``login`` and ``password``, or ``token``, or ``code`` with ``redirect_uri``
        (authorization-code flow; ``issuer``: the response's ``iss``, RFC 9207). When several
        are given (py-ispyb's client sends password and token), the first kind the provider
        accepts wins. Bad input is refused with :class:`InvalidCredentials` first.
        """
        credentials = self.credentials(
            provider,
            login=login,
            password=password,
            token=token,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            nonce=nonce,
            issuer=issuer,
        )
        return self.login_with(provider, credentials)

    def credentials(self, provider: str, **given: str | None) -> Credentials:
        """The credential package *provider* accepts among *given* (:meth:`login`'s keywords).

        :class:`InvalidCredentials` (and the login-failed hook) when none fits or input is bad.
        """
        instance = self.provider(provider)
        try:
            return credentials_for(instance, **given)
        except InvalidCredentials as exc:
            self.plugins.hook.authcore_login_failed(provider=provider, login=printable(given.get("login")), error=exc)
            raise

    def login_with(self, provider: str, credentials: Credentials, *, lifetime: float | None = None) -> LoginResult:
        """Log in with a ready-made credential package and start a session (see :meth:`login`).

        With *lifetime* the session is a token's (lowball's login; :mod:`authcore.session_control`).

        The whole login: the provider checks *credentials* (its ``authenticate``), plugins
        update the identity, permissions are worked out, and a session with its tokens begins.
        """
        return self.start_login(provider, credentials, lifetime=lifetime).sign()

    def start_login(self, provider: str, credentials: Credentials, *, lifetime: float | None = None) -> StartedLogin:
        """:meth:`login_with` up to the access token's signature (``sign()`` it for the result): a
        caller may send more calls first, to go to Redis with the session (the web layer's
        throttle step, ``WebLogin.awaited``), then sign while Redis works on them."""
        instance = self.provider(provider)
        attempted = getattr(credentials, "login", None)
        try:
            identity, granted = self._identities.identify(instance, credentials)
        except AuthError as exc:
            self.plugins.hook.authcore_login_failed(provider=provider, login=attempted, error=exc)
            raise
        if isinstance(instance, SecondFactor):
            self._ask_second_factor(instance, identity, granted, lifetime)  # SecondFactorRequired, if it must
        return self._started(provider, identity, granted, lifetime, attempted)

    # ----------------------------------------------------------------- tokens

    def verify(self, token: str) -> VerifiedToken:
        """Check an access token: signature, claims, and that its session is still alive.

        Raises :class:`InvalidToken` (or :class:`TokenExpired`). Verified tokens are
        cached until they expire or their session is logged out.
        """
        now = time.time()
        cache = self._cache
        generation = 0
        if cache is not None:
            hit = cache.get(token, now)
            if hit is not None:
                return hit
            # Read before the session check: a logout racing with this call voids our put().
            generation = cache.generation
        try:
            claims = self._tokens.decode(token, now=now)
        except TokenExpired:
            raise
        except InvalidToken:
            if token.startswith(PERSONAL_TOKEN_PREFIX):  # a personal access token (authcore.session_control)
                verified, deadline = self._verify_personal(token, now)
            else:
                # Final when the token is provably ours (our header, or our valid signature) but
                # failed a check: no identity provider gets a second say on what our rules refused.
                if not self._bearer_providers or self._tokens.owns(token):
                    raise
                # An identity provider's own token, perhaps.
                bearers = self._bearer_providers
                verified, deadline = upstream.verify_bearer(bearers, token, self._identities.permissions_for)
        else:
            record = self._sessions.peek(claims["sid"])
            # A session belongs to the provider instance that started it: when the instance is
            # gone from the configuration (removed, disabled, renamed), so are its sessions.
            if record is None or not record.active(now) or record.provider not in self._providers:
                raise InvalidToken("session ended") from None
            verified = verified_token(claims)
            # Cached no longer than the token and its session live: an uncached verify would
            # refuse the token once the session idles out, so a cached one must too.
            deadline = min(float(claims["exp"]), record.idle_expires_at, record.absolute_expires_at)
            if self._recheck is not None:
                deadline = min(deadline, now + self._recheck)
        if cache is not None:
            cache.put(token, verified, deadline, generation)
        return verified

    def refresh(self, refresh_token: str) -> LoginResult:
        """Trade a refresh token for new tokens (rotation). A reused refresh token ends the session."""
        try:
            record, new_refresh = self._sessions.refresh(refresh_token)
        except RefreshTokenReused as exc:
            self._drop_cached(exc.session_id)  # the store revoked the session: its access tokens die too
            raise
        return made_in_place(self._refreshed(record, new_refresh))

    def _drop_cached(self, session_id: str) -> None:
        if self._cache is not None:
            self._cache.drop_session(session_id)

    def _refreshed(self, record: SessionRecord, new_refresh: str) -> Generator[StoreCall, None, LoginResult]:
        """A rotated session's new tokens, its identity refreshed upstream where the provider can;
        yields each store call (ending the session, a changed identity) for the caller to make
        where a store call may wait (:data:`~authcore.async_api.StoreCall`); usually none."""
        provider = self._providers.get(record.provider)
        if provider is None:
            # The instance that started the session is no longer configured (see verify()).
            yield lambda: self._end_session(record)
            raise InvalidToken("session ended")
        identity = restore(record.identity)
        try:
            refreshed = upstream.refresh_upstream(provider, identity)
        except InvalidToken:
            yield lambda: self._end_session(record)  # the identity provider ended its session: ours ends with it
            raise
        # Permissions are worked out again from what the provider itself granted: groups may have
        # changed upstream, and the group mapping may have changed in the configuration.
        granted = granted_of(record.identity)
        base = refreshed if granted is None else refreshed.model_copy(update={"permissions": granted})
        permissions = self._identities.permissions_for(base)
        if refreshed is not identity or permissions != identity.permissions:
            identity = base.model_copy(update={"permissions": permissions})
            saved = snapshot(identity, base.permissions)
            yield lambda: self._sessions.store.update_identity(record.session_id, saved)
        return self._result(identity, record, new_refresh)

    def logout(self, token: str) -> None:
        """End the session of an access token or a refresh token (as OAuth clients send, RFC 7009).

        The session's refresh token and every access token die with it. An already ended or
        unknown session raises :class:`InvalidToken`; of two concurrent logouts of one
        session, exactly one succeeds and runs the upstream logout and the logout hook.
        """
        sessions = self._sessions
        session_id = sessions.session_of_refresh_token(token) or sessions.session_of_personal_token(token)
        if session_id is None:
            session_id = self._tokens.decode(token)["sid"]
        record = self._sessions.get(session_id)
        if record is None or not self._end_session(record):
            self._drop_cached(session_id)
            raise InvalidToken("session ended")

    def keep_alive(self, user: VerifiedToken) -> None:
        """Slide the idle expiry of *user*'s session, as a refresh does, without new tokens: the web
        layer calls it on authenticated requests (Flask's ``SESSION_REFRESH_EACH_REQUEST``)."""
        if user.session_id and user.provider in self._providers:
            self._sessions.touch(user.session_id)

    def _end_session(self, record: SessionRecord) -> bool:
        """Revoke the session; the caller whose revocation took effect runs the upstream logout and hook."""
        ended = self._sessions.revoke(record.session_id)
        self._drop_cached(record.session_id)
        if not ended:
            return False  # someone else ended it (a concurrent logout): their call does the rest
        upstream.logout_upstream(self._providers.get(record.provider), restore(record.identity))
        self.plugins.hook.authcore_logout(session_id=record.session_id, login=record.login)
        return True

    def require(
        self, subject: VerifiedToken | Identity | Iterable[str], permissions: _permissions.PermissionSpec
    ) -> None:
        """Raise :class:`~authcore.errors.Forbidden` unless *subject* holds every permission."""
        granted = subject.permissions if isinstance(subject, VerifiedToken | Identity) else subject
        _permissions.require(granted, permissions)

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close every provider and the session store."""
        unfollow = getattr(self, "_unfollow", None)
        if unfollow is not None:
            unfollow()
        for provider in getattr(self, "_providers", {}).values():
            try:
                provider.close()
            except Exception as exc:  # closing one must not stop closing the others
                log.warning("closing provider %r failed: %s", provider.name, type(exc).__name__)
        sessions = getattr(self, "_sessions", None)
        if sessions is not None:
            sessions.store.close()
        database = self.plugins.get_plugin("ispyb-database") if hasattr(self, "plugins") else None
        if database is not None:
            database.close()

    def __enter__(self) -> AuthManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AuthManager providers={sorted(getattr(self, '_providers', {}))}>"
