"""``OIDCProvider``: single sign-on, bearer tokens and upstream sessions with any OpenID Connect issuer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from authcore import (
    AuthorizationCodeCredentials,
    AuthorizationRequest,
    BearerIdentity,
    BearerTokens,
    Credentials,
    Health,
    Identity,
    InvalidCredentials,
    InvalidToken,
    NotSupported,
    PasswordCredentials,
    Provider,
    ProviderUnavailable,
    SingleSignOn,
    TokenCredentials,
    UpstreamSessions,
)
from authcore.jose import flow

from .bearer import BearerChecks
from .claims import ClaimSources
from .config import OIDCConfig
from .discovery import Discovery, Metadata
from .grants import Grants, TokenSet
from .http import IssuerHTTP
from .introspection import Introspection
from .mapping import ClaimMapper, MissingLogin
from .presets import resolve
from .signing import IssuerKeys

__all__ = ["OIDCProvider"]

log = logging.getLogger("auth_oidc")

# An alias: inside the class body the name ``type`` is the provider type, not the builtin.
CredentialKinds = tuple[type[Credentials], ...]


class OIDCProvider(Provider[OIDCConfig], BearerTokens, SingleSignOn, UpstreamSessions):
    """Any OpenID Connect issuer as an authcore provider.

    * single sign-on: authorization code with PKCE S256, state and nonce, RFC 9207 ``iss``
      checked; the identity comes from the verified ID token, the access token (when a JWT
      of ours) and userinfo, mapped by the preset and the claim settings;
    * bearer tokens: JWTs of the issuer are checked offline against its published keys;
      opaque tokens are introspected (RFC 7662) with a short cache;
    * the issuer's refresh token is kept server-side (``Identity.session_state``) for
      :meth:`refresh_upstream`; :meth:`logout_upstream` revokes it (RFC 7009);
    * password logins through the password grant only with ``password_grant: true``.

    Nothing is fetched when the provider is made: the discovery document and the keys are
    read on first use. *clock* (wall time, for token times) and *monotonic* (for cache
    freshness) exist for tests.
    """

    type = "oidc"
    credential_types: ClassVar[CredentialKinds] = (
        AuthorizationCodeCredentials,
        PasswordCredentials,
        TokenCredentials,
    )

    def __init__(
        self,
        name: str,
        config: OIDCConfig,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, config)
        if not config.password_grant:
            # Per instance: the core then answers a password login with the kinds we accept,
            # and py-ispyb's clients that send a password and a token get the token checked.
            self.credential_types = (AuthorizationCodeCredentials, TokenCredentials)  # type: ignore[misc]
        self._clock = clock
        self._monotonic = monotonic
        self.rules = resolve(config)
        self.mapper = ClaimMapper(self.rules, allowed_groups=config.allowed_groups, denied_groups=config.denied_groups)
        self.http = IssuerHTTP(name, config)
        self.discovery = Discovery(self.http, config, clock=monotonic)
        self.grants = Grants(self.http, config)
        self.introspection = Introspection(self.http, config, clock=clock)
        self._sources = ClaimSources(config, self.grants, self.mapper, clock=clock)
        self._bearer = BearerChecks(
            config, self.mapper, self.grants, self.introspection, self.issuer_keys, self.discovery, monotonic
        )
        self._keys: IssuerKeys | None = None
        self._keys_lock = threading.Lock()

    # ------------------------------------------------------------ the issuer

    def issuer_keys(self) -> IssuerKeys:
        """The keys and verifiers of the current discovery document (built on first use, rebuilt when it changes)."""
        metadata = self.discovery.get()
        keys = self._keys
        if keys is not None and keys.metadata is metadata:
            return keys
        with self._keys_lock:
            keys = self._keys
            if keys is not None and keys.metadata == metadata:
                keys.metadata = metadata  # the same document fetched again: keep the keys held
                return keys
            keys = IssuerKeys(
                metadata, self.http, self.config, self.rules, clock=self._clock, monotonic=self._monotonic
            )
            self._keys = keys
            return keys

    # ------------------------------------------------------------ logins

    def authenticate(self, credentials: Credentials) -> Identity:
        """Log in with an authorization code, a password (``password_grant``) or a bearer token of the issuer."""
        if isinstance(credentials, AuthorizationCodeCredentials):
            return self._login_with_code(credentials)
        if isinstance(credentials, PasswordCredentials):
            if not self.config.password_grant:
                raise NotSupported(self.name, "password logins (password_grant is off)")
            metadata = self.discovery.get()
            tokens = self.grants.password(
                metadata.token_endpoint,
                login=credentials.login,
                password=credentials.password.get_secret_value(),
                refused=InvalidCredentials,
            )
            return self._identity(tokens, metadata, nonce=None, id_token_required=False)
        if isinstance(credentials, TokenCredentials):
            try:
                verified = self.verify_bearer(credentials.token)
            except InvalidToken:
                raise InvalidCredentials() from None
            if verified is None:
                raise InvalidCredentials()
            return verified.identity.model_copy(update={"session_state": {"access_expires_at": verified.expires_at}})
        raise InvalidCredentials()

    def _login_with_code(self, credentials: AuthorizationCodeCredentials) -> Identity:
        if credentials.code_verifier is None:
            raise InvalidCredentials("the authorization code flow needs the PKCE code verifier")
        metadata = self.discovery.get()
        # RFC 9207: the authorization response names its issuer; a code another issuer answered
        # with (a mix-up attack) must never be sent to our token endpoint.
        if credentials.issuer is not None and not flow.same_value(credentials.issuer, metadata.issuer):
            log.warning("provider %r: authorization response from another issuer refused (mix-up?)", self.name)
            raise InvalidCredentials()
        if credentials.issuer is None and metadata.iss_parameter_supported:
            log.warning("provider %r: authorization response without the iss its issuer always sends", self.name)
            raise InvalidCredentials()
        tokens = self.grants.authorization_code(
            metadata.token_endpoint,
            code=credentials.code,
            redirect_uri=credentials.redirect_uri,
            code_verifier=credentials.code_verifier,
            refused=InvalidCredentials,
        )
        return self._identity(tokens, metadata, nonce=credentials.nonce, id_token_required=True)

    def _identity(
        self, tokens: TokenSet, metadata: Metadata, *, nonce: str | None, id_token_required: bool
    ) -> Identity:
        keys = self.issuer_keys()
        try:
            claims, state = self._sources.of_tokens(
                tokens, keys, metadata, nonce=nonce, id_token_required=id_token_required
            )
            identity = self.mapper.identity(claims)
        except MissingLogin:
            log.warning(
                "provider %r: the issuer's claims hold none of %s (check login_claim and scope)",
                self.name,
                ", ".join(self.rules.login_claim),
            )
            raise InvalidCredentials() from None
        except InvalidToken as exc:
            log.info("provider %r: login refused (%s)", self.name, exc.message)
            raise InvalidCredentials() from None
        return identity.model_copy(update={"session_state": state})

    # ------------------------------------------------------------ bearer tokens

    def verify_bearer(self, token: str) -> BearerIdentity | None:
        """Check a token of the issuer: a JWT offline, an opaque token by introspection.

        ``None`` for a token that is not this issuer's (or that introspection calls inactive);
        :class:`~authcore.InvalidToken` for one of ours that fails a check.
        """
        return self._bearer.verify(token)

    # ------------------------------------------------------------ upstream sessions

    def refresh_upstream(self, identity: Identity) -> Identity:
        """Refresh the issuer's session; the identity gets the new tokens and current claims (same ``sub``)."""
        state = identity.session_state or {}
        refresh_token = state.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            expires = state.get("access_expires_at")
            if isinstance(expires, int | float) and self._clock() >= expires + self.config.leeway:
                raise InvalidToken("the issuer's token behind this session has expired")
            return identity
        metadata = self.discovery.get()
        tokens = self.grants.refresh(metadata.token_endpoint, refresh_token)
        claims, fresh_state = self._sources.of_tokens(
            tokens, self.issuer_keys(), metadata, nonce=None, id_token_required=False
        )
        sub = state.get("sub")
        if sub is not None and claims.get("sub", sub) != sub:
            raise InvalidToken("the issuer refreshed another user's session")
        new_state = {
            **state,
            **{k: v for k, v in fresh_state.items() if v is not None},
        }
        if self.mapper.login_of(claims) is None:  # nothing about the user came back: keep who they were
            return identity.model_copy(update={"session_state": new_state})
        fresh = self.mapper.identity(claims)
        if fresh.login != identity.login:
            raise InvalidToken("the issuer refreshed another user's session")
        keep = ("given_name", "family_name", "email", "display_name", "roles", "groups")
        return identity.model_copy(update={**{k: getattr(fresh, k) for k in keep}, "session_state": new_state})

    def logout_upstream(self, identity: Identity) -> None:
        """Revoke the issuer's refresh token (RFC 7009) when it has a revocation endpoint; failures are logged."""
        state = identity.session_state or {}
        refresh_token = state.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return
        try:
            endpoint = self.discovery.get().revocation_endpoint
        except ProviderUnavailable as exc:
            log.warning("provider %r: cannot revoke the refresh token (%s)", self.name, exc.code)
            return
        if endpoint is not None:
            self.grants.revoke(endpoint, refresh_token, "refresh_token")

    # ------------------------------------------------------------ single sign-on

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        """A fresh authorization-code request: PKCE S256, state, nonce, plus ``extra_authorize_params``."""
        metadata = self.discovery.get()
        verifier, state, nonce = flow.new_code_verifier(), flow.new_state(), flow.new_nonce()
        url = flow.authorization_url(
            metadata.authorization_endpoint,
            client_id=self.config.client_id,
            redirect_uri=redirect_uri,
            scope=self.config.scope,
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            extra=self.config.extra_authorize_params,
        )
        return AuthorizationRequest(
            url=url, state=state, nonce=nonce, code_verifier=verifier, redirect_uri=redirect_uri
        )

    def logout_url(self, identity: Identity, post_logout_redirect_uri: str | None = None) -> str | None:
        """``logout_uri`` or the issuer's end-session endpoint, with the ID token as hint; ``None`` if neither."""
        endpoint = self.config.logout_uri
        if endpoint is None:
            try:
                endpoint = self.discovery.get().end_session_endpoint
            except ProviderUnavailable as exc:
                log.warning("provider %r: no logout URL (%s)", self.name, exc.code)
                return None
        if endpoint is None:
            return None
        hint = (identity.session_state or {}).get("id_token")
        return flow.logout_url(
            endpoint,
            client_id=self.config.client_id,
            id_token_hint=hint if isinstance(hint, str) else None,
            post_logout_redirect_uri=post_logout_redirect_uri,
        )

    # ------------------------------------------------------------ the rest

    def public_config(self) -> dict[str, Any]:
        """Issuer, client, scope, preset and endpoints (when the issuer answers); never the secret."""
        config = self.config
        try:
            metadata: Metadata | None = self.discovery.get()
        except ProviderUnavailable:
            metadata = self.discovery.cached
        endpoints: dict[str, str | None] = {"logout": config.logout_uri, "introspection": config.token_info_uri}
        if metadata is not None:
            endpoints = {
                "authorization": metadata.authorization_endpoint,
                "token": metadata.token_endpoint,
                "jwks": metadata.jwks_uri,
                "userinfo": metadata.userinfo_endpoint,
                "logout": config.logout_uri or metadata.end_session_endpoint,
                "introspection": config.token_info_uri or metadata.introspection_endpoint,
            }
        return {
            **super().public_config(),
            "issuer": metadata.issuer if metadata is not None else config.issuer,
            "client_id": config.client_id,
            "scope": config.scope,
            "preset": self.rules.preset,
            "code_challenge_method": config.code_challenge_method,
            "endpoints": {k: v for k, v in endpoints.items() if v is not None},
        }

    def health(self) -> Health:
        """The discovery document, fetched now, and the issuer's keys; the detail names the URL and the reason."""
        try:
            metadata = self.discovery.refresh()
            count = self.issuer_keys().check(self.http)
        except ProviderUnavailable as exc:
            return Health(ok=False, detail=exc.message)
        return Health(ok=True, extra={"issuer": metadata.issuer, "keys": count})

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()
