"""AuthManager: the one object a host application holds.

It wires the configured providers, the plugin hooks, the token service and the
session store together, and is the only place where a login turns into tokens.
Safe to share between threads; ``a*`` methods serve asynchronous hosts.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import pluggy
from pydantic import ValidationError

from . import permissions as _permissions
from .config import AuthcoreConfig, load_config, parse_config
from .config.checks import (
    check_provider_config,
    check_token_secret,
    exposed_file_warnings,
    located,
    no_provider_error,
)
from .errors import (
    AuthError,
    ConfigError,
    InvalidCredentials,
    InvalidToken,
    NotSupported,
    ProviderUnavailable,
    TokenExpired,
    UnknownProvider,
)
from .models import Identity, LoginResult, VerifiedToken
from .plugins import ProviderRegistry, create_plugin_manager, load_class
from .providers import (
    AnonymousCredentials,
    AuthorizationCodeCredentials,
    BearerTokens,
    Credentials,
    Health,
    PasswordCredentials,
    Provider,
    TokenCredentials,
    UpstreamSessions,
    UserManagement,
)
from .sessions import RefreshTokenReused, SessionRecord, Sessions, open_store
from .tokens import TokenCache, TokenService

__all__ = ["AuthManager", "RESERVED_CLAIMS", "MIN_PRODUCTION_SECRET_BYTES"]

log = logging.getLogger("authcore")

#: Claims authcore sets itself; plugins cannot override them.
RESERVED_CLAIMS = frozenset(
    {"iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "username", "groups", "permissions", "provider"}
)
MIN_PRODUCTION_SECRET_BYTES = 32
_T = TypeVar("_T")


class AuthManager:
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
        self._production_checks_for_tokens()
        source = config.source
        state = Path(state_dir) if state_dir is not None else None
        fallback_secret = self._development_secret(state)
        # Errors about a configured value name its file, line and key path, like the schema's.
        try:
            self._tokens = TokenService(config.tokens, fallback_secret=fallback_secret)
        except ConfigError as exc:
            key = "secret" if config.tokens.algorithm.startswith("HS") else "private_key_file"
            raise located(source, ("tokens", key), exc) from None
        try:
            store = self._open_store(state)
        except ConfigError as exc:
            raise located(source, ("sessions", "store"), exc) from None
        self._sessions = Sessions(store, config.sessions)
        self._cache = TokenCache(config.tokens.cache_size) if config.tokens.cache_size else None
        # Cached verifications with a store other processes write to are re-checked this often.
        self._recheck = config.tokens.revocation_check_interval if self._sessions.store.shared else None
        self._group_permissions = {
            group: _permissions.normalize(perms) for group, perms in config.permissions.groups.items()
        }
        self._default_permissions = _permissions.normalize(config.permissions.authenticated)
        if config.permissions.store:
            from .permission_store import SQLPermissionStore

            try:
                permission_store = SQLPermissionStore.from_url(config.permissions.store)
            except ConfigError as exc:
                raise located(source, ("permissions", "store"), exc) from None
            self.plugins.register(permission_store, name="permission-store")
        self._providers: dict[str, Provider] = {}
        try:
            for index, entry in enumerate(config.providers):
                if entry.enabled:
                    self._providers[entry.name] = self._start_provider(index)
            if not self._providers:
                raise no_provider_error(config)
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

    def _production_checks_for_tokens(self) -> None:
        # Production refuses a missing or weak HMAC secret; development warns once about a weak one.
        check_token_secret(self.config, log)

    def _development_secret(self, state: Path | None) -> bytes | None:
        tokens = self.config.tokens
        if state is None or tokens.secret is not None or not tokens.algorithm.startswith("HS"):
            return None
        path = state / "dev-secret"
        _private_state_dir(state)
        secret = _read_dev_secret(path)
        if secret is not None:
            return secret
        # Write the whole secret to a private temporary file, then hard-link it into place:
        # the link fails if another process won the race (we then use its secret), and no
        # process ever reads a half-written file and replaces it with a secret of its own.
        secret = secrets.token_hex(32).encode()
        temporary = state / f".dev-secret.{os.getpid()}.{secrets.token_hex(8)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secret)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                other = _read_dev_secret(path)
                if other is None:
                    raise ConfigError(f"development secret {str(path)!r} could not be created; remove it") from None
                return other
        finally:
            temporary.unlink(missing_ok=True)
        log.warning("development mode: tokens are signed with a development secret kept in %s", path)
        return secret

    def _open_store(self, state: Path | None) -> Any:
        url = self.config.sessions.store
        if state is not None and "store" not in self.config.sessions.model_fields_set:
            _private_state_dir(state)
            url = f"sqlite:///{(state / 'sessions.db').resolve()}"
        store = open_store(url)
        if store is None:
            store = self.plugins.hook.authcore_session_store(url=url)
        if store is None:
            scheme = url.partition(":")[0]
            raise ConfigError(f"sessions.store: no session store for scheme {scheme!r} (memory, sqlite, or a plugin's)")
        return store

    def _start_provider(self, index: int) -> Provider:
        entry = self.config.providers[index]
        source = self.config.source
        try:
            if entry.class_ is not None:
                cls = load_class(entry.class_)
            else:
                assert entry.type is not None
                cls = self._registry.get(entry.type)
        except ConfigError as exc:
            raise located(source, ("providers", index, "type" if entry.class_ is None else "class"), exc) from None
        if self.config.production and cls.development_only:
            key = "class" if entry.class_ is not None else "type" if "type" in entry.model_fields_set else "name"
            raise source.error(
                ("providers", index, key),
                f"provider {entry.name!r} (type {cls.type!r}) is for development only and is refused with "
                "production: true",
            )
        try:
            provider_config = cls.Config.model_validate(entry.config)
        except ValidationError as exc:
            raise source.validation_error(exc, ("providers", index, "config")) from None
        # Production refuses what production_issues() names; development warns once on TLS verification off.
        check_provider_config(self.config, index, provider_config, log)
        try:
            return cls(entry.name, provider_config)
        except ConfigError as exc:
            raise located(source, ("providers", index), exc) from None
        except AuthError:
            raise
        except Exception as exc:
            raise source.error(
                ("providers", index), f"provider {entry.name!r} failed to start: {type(exc).__name__}"
            ) from exc

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
    ) -> LoginResult:
        """Log in through the enabled provider *provider* and start a session.

        Give ``login`` and ``password``, or ``token``, or ``code`` with ``redirect_uri``
        (authorization-code flow). When several are given (py-ispyb's client sends
        password and token), the first kind the provider accepts wins. Bad input is
        refused with :class:`InvalidCredentials` before the provider sees it.
        """
        instance = self.provider(provider)
        try:
            credentials = self._credentials(instance, login, password, token, code, redirect_uri, code_verifier, nonce)
        except InvalidCredentials as exc:
            self.plugins.hook.authcore_login_failed(provider=provider, login=_printable(login), error=exc)
            raise
        return self.authenticate(provider, credentials)

    def _credentials(
        self,
        provider: Provider,
        login: str | None,
        password: str | None,
        token: str | None,
        code: str | None,
        redirect_uri: str | None,
        code_verifier: str | None,
        nonce: str | None,
    ) -> Credentials:
        offered: list[tuple[type[Credentials], dict[str, Any]]] = []
        if code is not None or redirect_uri is not None:
            offered.append(
                (
                    AuthorizationCodeCredentials,
                    {"code": code, "redirect_uri": redirect_uri, "code_verifier": code_verifier, "nonce": nonce},
                )
            )
        if login is not None or password is not None:
            offered.append((PasswordCredentials, {"login": login, "password": password}))
        if token is not None:
            offered.append((TokenCredentials, {"token": token}))
        if not offered:
            offered.append((AnonymousCredentials, {}))
        accepted = provider.credential_types
        for kind in accepted:
            for offered_kind, values in offered:
                if issubclass(kind, offered_kind):
                    try:
                        return kind.model_validate(values)
                    except (ValidationError, TypeError):
                        raise InvalidCredentials() from None
        raise _wrong_kind(provider)

    def authenticate(self, provider: str, credentials: Credentials) -> LoginResult:
        """Log in with a ready-made credential package (see :meth:`login`)."""
        instance = self.provider(provider)
        attempted = getattr(credentials, "login", None)
        try:
            identity = self._authenticate(instance, credentials)
        except AuthError as exc:
            self.plugins.hook.authcore_login_failed(provider=provider, login=attempted, error=exc)
            raise
        self._hook("authcore_login_succeeded", identity=identity, provider=provider)
        record, refresh_token = self._sessions.start(
            login=identity.login, provider=provider, identity=_snapshot(identity)
        )
        return self._result(identity, record, refresh_token)

    def _authenticate(self, provider: Provider, credentials: Credentials) -> Identity:
        if not isinstance(credentials, provider.credential_types):
            raise _wrong_kind(provider)
        try:
            identity = provider.authenticate(credentials)
        except InvalidCredentials:
            # One message whatever the provider said: errors never tell whether a login exists.
            raise InvalidCredentials() from None
        except AuthError:
            raise
        except Exception as exc:
            # Unexpected provider failures: the type is logged, the message is not (it may hold input).
            log.error("provider %r failed during login: %s", provider.name, type(exc).__name__)
            raise ProviderUnavailable(f"provider {provider.name!r} failed") from exc
        if not isinstance(identity, Identity):
            raise ProviderUnavailable(f"provider {provider.name!r} returned no identity")
        if not self._has_impls("authcore_identity_updates", "authcore_permissions"):
            # No plugin looks at the identity: one copy instead of two (logins are a hot path).
            permissions = self._permissions_for(identity)
            return identity.model_copy(update={"provider": provider.name, "permissions": permissions})
        identity = identity.model_copy(update={"provider": provider.name})
        try:
            for updates in reversed(self._hook("authcore_identity_updates", identity=identity, provider=provider.name)):
                if updates:
                    identity = Identity.model_validate({**_snapshot(identity), **dict(updates)})
        except InvalidCredentials:
            raise InvalidCredentials() from None  # a plugin's refusal says no more than a provider's
        return identity.model_copy(update={"permissions": self._permissions_for(identity)})

    def _has_impls(self, *names: str) -> bool:
        return any(getattr(self.plugins.hook, name).get_hookimpls() for name in names)

    def _hook(self, name: str, **kwargs: Any) -> list[Any]:
        """Call hook *name*; skip pluggy's call machinery when no plugin implements it."""
        caller = getattr(self.plugins.hook, name)
        return caller(**kwargs) if caller.get_hookimpls() else []

    def _permissions_for(self, identity: Identity) -> tuple[str, ...]:
        granted: set[str] = {*identity.permissions, *self._default_permissions}
        for group in (*identity.groups, *identity.roles):
            granted.update(self._group_permissions.get(group, ()))
        for contribution in self._hook("authcore_permissions", identity=identity):
            if contribution:
                granted.update(_permissions.normalize(list(contribution)))
        return tuple(sorted(granted))

    def _result(self, identity: Identity, record: SessionRecord, refresh_token: str) -> LoginResult:
        now = time.time()
        expires_at = min(now + self.config.tokens.access_ttl, record.absolute_expires_at)
        claims: dict[str, Any] = {}
        for extra in reversed(self._hook("authcore_token_claims", identity=identity)):
            if extra:
                clash = RESERVED_CLAIMS.intersection(extra)
                if clash:
                    raise AuthError(f"a plugin tried to set reserved token claims: {', '.join(sorted(clash))}")
                claims.update(extra)
        claims.update(
            sub=identity.login,
            sid=record.session_id,
            exp=int(expires_at),
            username=identity.login,
            groups=list(identity.groups),
            permissions=list(identity.permissions),
            provider=identity.provider,
        )
        access_token = self._tokens.issue(claims, now=now)
        return LoginResult(
            identity=identity,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=int(expires_at),
            expires_in=max(0, int(expires_at - now)),
            session_id=record.session_id,
        )

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
            # Final when the token is provably ours (our header, or our valid signature) but
            # failed a check: no identity provider gets a second say on what our rules refused.
            if not self._bearer_providers or self._tokens.owns(token):
                raise
            verified = self._verify_bearer(token)  # an identity provider's own token, perhaps
            deadline = verified.expires_at
        else:
            record = self._sessions.peek(claims["sid"])
            # A session belongs to the provider instance that started it: when the instance is
            # gone from the configuration (removed, disabled, renamed), so are its sessions.
            if record is None or not record.active(now) or record.provider not in self._providers:
                raise InvalidToken("session ended") from None
            verified = _verified(claims)
            # Cached no longer than the token and its session live: an uncached verify would
            # refuse the token once the session idles out, so a cached one must too.
            deadline = min(float(claims["exp"]), record.idle_expires_at, record.absolute_expires_at)
            if self._recheck is not None:
                deadline = min(deadline, now + self._recheck)
        if cache is not None:
            cache.put(token, verified, deadline, generation)
        return verified

    def _verify_bearer(self, token: str) -> VerifiedToken:
        for provider in self._bearer_providers:
            result = provider.verify_bearer(token)
            if result is None:
                continue
            identity = result.identity.model_copy(update={"provider": provider.name})
            permissions = self._permissions_for(identity)
            return VerifiedToken(
                login=identity.login,
                provider=provider.name,
                permissions=frozenset(permissions),
                groups=identity.groups,
                session_id=result.session_id,
                token_id=result.token_id,
                issued_at=result.issued_at,
                expires_at=result.expires_at,
                claims=result.claims,
            )
        raise InvalidToken()

    def refresh(self, refresh_token: str) -> LoginResult:
        """Trade a refresh token for new tokens (rotation). A reused refresh token ends the session."""
        try:
            record, new_refresh = self._sessions.refresh(refresh_token)
        except RefreshTokenReused as exc:
            # The store revoked the session; its cached access tokens must die with it.
            if self._cache is not None:
                self._cache.drop_session(exc.session_id)
            raise
        provider = self._providers.get(record.provider)
        if provider is None:
            # The instance that started the session is no longer configured (see verify()).
            self._end_session(record)
            raise InvalidToken("session ended")
        identity = _restore(record)
        if isinstance(provider, UpstreamSessions):
            try:
                refreshed = provider.refresh_upstream(identity)
            except NotSupported:
                refreshed = identity
            except InvalidToken:
                # The identity provider ended its session: ours ends with it.
                self._end_session(record)
                raise
            except AuthError as exc:
                # The provider is down, say. The refresh token has already rotated, so failing
                # here would leave the client with a used token: keep the identity as it was and
                # try upstream again at the next refresh.
                log.warning("refresh at provider %r failed (%s); identity kept as it was", record.provider, exc.code)
                refreshed = identity
            if refreshed is not identity:
                # Roles or groups may have changed upstream: the permissions follow them.
                identity = refreshed.model_copy(update={"permissions": self._permissions_for(refreshed)})
                self._sessions.store.update_identity(record.session_id, _snapshot(identity))
        return self._result(identity, record, new_refresh)

    def logout(self, token: str) -> None:
        """End the session of an access token or a refresh token (as OAuth clients send, RFC 7009).

        The session's refresh token and every access token die with it. An already ended or
        unknown session raises :class:`InvalidToken`; of two concurrent logouts of one
        session, exactly one succeeds and runs the upstream logout and the logout hook.
        """
        session_id = self._sessions.session_of_refresh_token(token)
        if session_id is None:
            session_id = self._tokens.decode(token)["sid"]
        record = self._sessions.get(session_id)
        if record is None or not self._end_session(record):
            if self._cache is not None:
                self._cache.drop_session(session_id)
            raise InvalidToken("session ended")

    def _end_session(self, record: SessionRecord) -> bool:
        """Revoke the session; the caller whose revocation took effect runs the upstream logout and hook."""
        ended = self._sessions.revoke(record.session_id)
        if self._cache is not None:
            self._cache.drop_session(record.session_id)
        if not ended:
            return False  # someone else ended it (a concurrent logout): their call does the rest
        provider = self._providers.get(record.provider)
        if isinstance(provider, UpstreamSessions):
            try:
                provider.logout_upstream(_restore(record))
            except NotSupported:
                pass
            except AuthError as exc:  # our session is gone either way
                log.warning("logout at provider %r failed: %s", record.provider, exc.code)
        self.plugins.hook.authcore_logout(session_id=record.session_id, login=record.login)
        return True

    def require(
        self, subject: VerifiedToken | Identity | Iterable[str], permissions: _permissions.PermissionSpec
    ) -> None:
        """Raise :class:`~authcore.errors.Forbidden` unless *subject* holds every permission."""
        granted = subject.permissions if isinstance(subject, VerifiedToken | Identity) else subject
        _permissions.require(granted, permissions)

    # ----------------------------------------------------------------- async

    async def alogin(self, provider: str, **credentials: str | None) -> LoginResult:
        """:meth:`login` for asynchronous hosts: in a worker thread unless nothing in it blocks."""
        if not self.login_blocks(provider):
            return self.login(provider, **credentials)
        return await _to_thread(lambda: self.login(provider, **credentials))

    def login_blocks(self, provider: str) -> bool:
        """Whether a login through *provider* may wait on I/O (so async hosts use a thread).

        False only when the provider declares ``blocking = False``, the session store does
        no I/O, no SQL permission store is configured and no registered plugin declares
        ``blocking = True`` (as :class:`~authcore.permission_store.SQLPermissionStore` does,
        also when a host registers it in code). Other plugin hooks then run on the caller's
        event loop too: keep them free of I/O, or give them a ``blocking = True`` attribute.
        """
        instance = self._providers.get(provider)
        return (
            instance is None
            or instance.blocking
            or self._sessions.store.blocking
            or self.config.permissions.store is not None
            or any(getattr(plugin, "blocking", False) is True for plugin in self.plugins.get_plugins())
        )

    async def averify(self, token: str) -> VerifiedToken:
        """:meth:`verify` for asynchronous hosts: in-line when the answer needs no I/O."""
        if self._cache is not None:
            hit = self._cache.get(token, time.time())
            if hit is not None:
                return hit
        # A token that is not ours goes to the bearer providers, which may do network I/O.
        if self._sessions.store.blocking or self._bearer_blocks:
            return await _to_thread(self.verify, token)
        return self.verify(token)

    async def arefresh(self, refresh_token: str) -> LoginResult:
        """:meth:`refresh` in a worker thread."""
        return await _to_thread(self.refresh, refresh_token)

    async def alogout(self, token: str) -> None:
        """:meth:`logout` in a worker thread."""
        await _to_thread(self.logout, token)

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close every provider and the session store."""
        for provider in getattr(self, "_providers", {}).values():
            try:
                provider.close()
            except Exception as exc:  # closing one must not stop closing the others
                log.warning("closing provider %r failed: %s", provider.name, type(exc).__name__)
        sessions = getattr(self, "_sessions", None)
        if sessions is not None:
            sessions.store.close()

    def __enter__(self) -> AuthManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AuthManager providers={sorted(getattr(self, '_providers', {}))}>"


#: Not on every platform; where missing, the directory checks below are what protects the file.
_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
#: What a development secret file holds: ``secrets.token_hex(32)``.
_DEV_SECRET_LENGTH = 64


def _private_state_dir(state: Path) -> None:
    """Create the state directory, and refuse one that someone else could write to.

    The development secret signs tokens: another user who can write to the directory
    (``AUTHCORE_STATE_DIR=/tmp/x`` made by them first, a world-writable directory) could
    plant a ``dev-secret`` they know, or a symlink, and forge tokens.
    """
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = state.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"state directory {str(state)!r} is not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(f"state directory {str(state)!r} belongs to another user; choose another one")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"state directory {str(state)!r} is writable by other users; chmod 700 it")


def _read_dev_secret(path: Path) -> bytes | None:
    """The development secret in *path*, or ``None`` if there is none (a damaged one is removed)."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:  # ELOOP: a symbolic link, which we never follow to a secret
        raise ConfigError(f"development secret {str(path)!r} is not a regular file; remove it") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            raise ConfigError(f"development secret {str(path)!r} is not a regular file of ours; remove it")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"development secret {str(path)!r} is accessible to other users; remove it")
        data = os.read(fd, 4 * _DEV_SECRET_LENGTH)
    finally:
        os.close(fd)
    secret = data.strip()
    if len(secret) == _DEV_SECRET_LENGTH and all(c in b"0123456789abcdef" for c in secret):
        return secret
    # Truncated or damaged (an older version's crash mid-write): a shorter secret would be
    # weaker and would not verify the tokens signed with the whole one anyway. Start afresh.
    log.warning("development secret %s is damaged; making a new one", path)
    path.unlink(missing_ok=True)
    return None


async def _to_thread(function: Callable[..., _T], *args: Any) -> _T:
    # asyncio is imported here: a host that never uses the a* methods does not pay for it.
    import asyncio

    return await asyncio.to_thread(function, *args)


def _wrong_kind(provider: Provider) -> InvalidCredentials:
    kinds = ", ".join(k.kind for k in provider.credential_types)
    return InvalidCredentials(f"provider {provider.name!r} accepts: {kinds}")


def _printable(value: str | None) -> str | None:
    if value is None or not isinstance(value, str):
        return None
    return value[:256] if value.isprintable() else None


def _snapshot(identity: Identity) -> dict[str, Any]:
    data = identity.model_dump(mode="json")
    data["session_state"] = identity.session_state
    return data


def _restore(record: SessionRecord) -> Identity:
    return Identity.model_validate(record.identity)


def _verified(claims: dict[str, Any]) -> VerifiedToken:
    # On every uncached verification: type() checks and map() instead of generator
    # expressions keep this to about a microsecond.
    permissions = claims.get("permissions", ())
    groups = claims.get("groups", ())
    provider = claims.get("provider", "")
    if (
        type(permissions) is not list
        or type(groups) is not list
        or type(provider) is not str
        or not _ONLY_STR.issuperset(map(type, permissions))
        or not _ONLY_STR.issuperset(map(type, groups))
    ):
        raise InvalidToken("token claims have the wrong shape")
    return VerifiedToken(
        claims["sub"],
        provider,
        frozenset(permissions),
        tuple(groups),
        claims["sid"],
        claims["jti"],
        float(claims["iat"]),
        float(claims["exp"]),
        claims,  # decode() built this dict for us alone
    )


_ONLY_STR = frozenset({str})
