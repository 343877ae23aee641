"""``KeycloakProvider``: logins, bearer tokens, upstream sessions, SSO pieces and user management."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pydantic import ValidationError

from authcore import (
    AuthError,
    AuthorizationCodeCredentials,
    AuthorizationRequest,
    BearerIdentity,
    BearerTokens,
    Credentials,
    Health,
    Identity,
    InvalidCredentials,
    InvalidToken,
    NewUser,
    PasswordCredentials,
    Provider,
    ProviderUnavailable,
    SingleSignOn,
    TokenCredentials,
    UpstreamSessions,
    UserManagement,
    UserUpdate,
)
from authcore.jose import KeyCache, flow

from .admin import AdminClient
from .config import KeycloakConfig
from .errors import client_refused, oauth_error
from .health import check_health
from .verify import KeycloakVerifier

if TYPE_CHECKING:
    from keycloak import KeycloakOpenID

__all__ = ["KeycloakProvider"]

log = logging.getLogger("auth_keycloak")

T = TypeVar("T")
_ErrorClass = type[AuthError]

#: The form content type, set once on the shared connection: python-keycloak's token calls
#: then only re-assign an existing header instead of adding and deleting one, which keeps
#: the one client safe to use from many threads.
_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


class KeycloakProvider(Provider[KeycloakConfig], UpstreamSessions, BearerTokens, SingleSignOn, UserManagement):
    """Keycloak (OpenID Connect) as an authcore provider, built on python-keycloak.

    * password logins (the password grant) and authorization codes (SSO with PKCE) give
      an identity from the verified access token, with Keycloak's refresh token kept in
      ``Identity.session_state`` for :meth:`refresh_upstream` and :meth:`logout_upstream`;
    * bearer tokens Keycloak issued are checked offline against the realm's keys
      (:meth:`verify_bearer`), optionally followed by introspection;
    * user management goes through the admin REST API.
    """

    type = "keycloak"
    credential_types = (PasswordCredentials, AuthorizationCodeCredentials, TokenCredentials)

    def __init__(self, name: str, config: KeycloakConfig) -> None:
        super().__init__(name, config)
        from keycloak import KeycloakOpenID

        timeout: Any = config.timeout  # python-keycloak annotates int; requests takes float
        self._openid: KeycloakOpenID = KeycloakOpenID(
            server_url=config.base_url,
            realm_name=config.realm_name,
            client_id=config.client_id,
            client_secret_key=config.client_secret.get_secret_value() if config.client_secret else None,
            verify=config.verify_argument(),
            timeout=timeout,
            max_retries=0,  # a retry would double the time a caller waits for a dead server
            custom_headers=dict(_FORM_HEADERS),
        )
        self.keys = KeyCache(
            self._fetch_jwks,
            algorithms=config.algorithms,
            ttl=config.jwks_cache_ttl,
            cooldown=config.jwks_refetch_cooldown,
            max_stale=config.jwks_max_stale,
            label=f"the keys of realm {config.realm_name!r}",
        )
        self._verifier = KeycloakVerifier(
            issuer=config.realm_issuer,
            keys=self.keys,
            clients=frozenset({config.client_id, *config.trusted_clients}),
            audiences=config.audiences,
            client_check=config.client_check,
            leeway=config.leeway,
        )
        self._ignored_roles = frozenset(config.ignored_roles) | {f"default-roles-{config.realm_name}"}
        # The claim mapping read once: identity_from_claims runs for every uncached bearer token,
        # and its own work (besides the Identity model) is what verify_bearer adds to the signature check.
        self._login_claim = config.login_claim
        self._role_clients = tuple(config.role_clients) if config.role_clients else ()
        self._role_prefix = config.client_role_prefix
        self._admin = AdminClient(name, config, self._admin_identity)

    # ------------------------------------------------------------ HTTP helpers

    def _fetch_jwks(self) -> Any:
        return self._call(self._openid.certs)

    def _call(self, request: Callable[[], T], *, refused: _ErrorClass = ProviderUnavailable) -> T:
        """Run a python-keycloak call; map its errors. *refused* is raised for ``invalid_grant``."""
        from keycloak.exceptions import KeycloakConnectionError, KeycloakError

        try:
            return request()
        except KeycloakConnectionError:
            raise ProviderUnavailable(f"provider {self.name!r}: Keycloak cannot be reached") from None
        except KeycloakError as exc:
            self._raise_for(exc, refused)
        except (TypeError, ValueError, KeyError):  # a body that is not Keycloak's JSON (a proxy's 502 page)
            raise ProviderUnavailable(f"provider {self.name!r}: unexpected answer from Keycloak") from None

    def _raise_for(self, exc: BaseException, refused: _ErrorClass) -> NoReturn:
        status, error, description = oauth_error(exc)
        if error == "invalid_grant" and status in (400, 401):
            raise refused()
        if client_refused(error, description) or (status == 401 and error != "unauthorized_client"):
            raise ProviderUnavailable(f"provider {self.name!r}: Keycloak refused our client credentials") from None
        if error == "unauthorized_client":
            raise ProviderUnavailable(f"provider {self.name!r}: the client may not use this grant") from None
        if status == 404:
            raise ProviderUnavailable(f"provider {self.name!r}: Keycloak does not know the realm") from None
        raise ProviderUnavailable(f"provider {self.name!r}: Keycloak answered {status or 'with an error'}") from None

    # ------------------------------------------------------------ logins

    def authenticate(self, credentials: Credentials) -> Identity:
        """Log in with a password, an authorization code, or a Keycloak access token."""
        if isinstance(credentials, PasswordCredentials):
            tokens = self._call(
                lambda: self._openid.token(
                    credentials.login, credentials.password.get_secret_value(), scope=self.config.scope
                ),
                refused=InvalidCredentials,
            )
            return self._identity_from_tokens(tokens)
        if isinstance(credentials, AuthorizationCodeCredentials):
            return self._exchange_code(credentials)
        if isinstance(credentials, TokenCredentials):
            try:
                verified = self.verify_bearer(credentials.token)
            except InvalidToken:
                raise InvalidCredentials() from None
            if verified is None:
                raise InvalidCredentials()
            state = {"access_expires_at": verified.expires_at}
            return verified.identity.model_copy(update={"session_state": state})
        raise InvalidCredentials()

    def _exchange_code(self, credentials: AuthorizationCodeCredentials) -> Identity:
        if credentials.code_verifier is None:
            raise InvalidCredentials("the authorization code flow needs the PKCE code verifier")
        tokens = self._call(
            lambda: self._openid.token(
                grant_type="authorization_code",
                code=credentials.code,
                redirect_uri=credentials.redirect_uri,
                code_verifier=credentials.code_verifier,
                scope=self.config.scope,
            ),
            refused=InvalidCredentials,
        )
        if credentials.nonce is not None:
            id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
            if not isinstance(id_token, str):
                raise InvalidCredentials("no ID token to check the nonce against")
            access_token = tokens.get("access_token")
            try:
                id_claims = self._verifier.id_token_claims(
                    id_token, client_id=self.config.client_id, nonce=credentials.nonce, access_token=access_token
                )
                if id_claims.get("typ") != "ID":  # Keycloak's kind claim
                    raise InvalidToken("unexpected token type")
            except InvalidToken:
                raise InvalidCredentials("the ID token does not carry the nonce of the request") from None
        return self._identity_from_tokens(tokens)

    def _identity_from_tokens(self, tokens: Any) -> Identity:
        if not isinstance(tokens, dict) or not isinstance(tokens.get("access_token"), str):
            raise ProviderUnavailable(f"provider {self.name!r}: Keycloak sent no access token")
        try:
            claims = self._verifier.answered_claims(tokens["access_token"])  # our own request's answer
        except InvalidToken as exc:
            raise ProviderUnavailable(f"provider {self.name!r}: Keycloak's token fails our checks: {exc}") from None
        if claims is None:
            raise ProviderUnavailable(
                f"provider {self.name!r}: Keycloak's tokens name another issuer than {self._verifier.issuer}"
            )
        now = time.time()
        state: dict[str, Any] = {
            "refresh_token": tokens.get("refresh_token"),
            "id_token": tokens.get("id_token"),
            "access_expires_at": claims["exp"],
            "sid": claims.get("sid") or tokens.get("session_state"),
        }
        refresh_in = tokens.get("refresh_expires_in")
        if isinstance(refresh_in, int | float) and refresh_in > 0:
            state["refresh_expires_at"] = now + refresh_in
        return self.identity_from_claims(claims).model_copy(update={"session_state": state})

    # ------------------------------------------------------------ claims → identity

    def identity_from_claims(self, claims: dict[str, Any]) -> Identity:
        """The identity a verified access token describes, with roles and groups mapped as configured."""
        config = self.config
        login = claims.get(self._login_claim)
        if type(login) is not str or not login or len(login) > 256 or not login.isprintable():
            raise InvalidToken("token without a usable login")
        ignored = self._ignored_roles
        # Insertion-ordered dicts as ordered sets: one pass, no intermediate lists.
        roles: dict[str, None] = {}
        if config.realm_roles:
            realm_access = claims.get("realm_access")
            if type(realm_access) is dict:
                names = realm_access.get("roles")
                if type(names) is list:
                    for role in names:
                        if type(role) is str and role and role not in ignored:
                            roles[role] = None
        resource_access = claims.get("resource_access")
        if type(resource_access) is dict:
            prefix = self._role_prefix
            for client in self._role_clients:
                access = resource_access.get(client)
                names = access.get("roles") if type(access) is dict else None
                if type(names) is list:
                    for role in names:
                        if type(role) is str and role and prefix + role not in ignored:
                            roles[prefix + role] = None
        groups: dict[str, None] = {}
        names = claims.get(config.groups_claim)
        if type(names) is list:
            strip = config.strip_group_path
            for group in names:
                if type(group) is str:
                    if strip:
                        group = group.rstrip("/").rsplit("/", 1)[-1]
                    if group:
                        groups[group] = None
        sub = claims.get("sub")
        try:
            # model_validate of a dict skips the keyword-argument wrapper of __init__: a quarter
            # of the model's cost, on the path of every uncached bearer token.
            return Identity.model_validate(
                {
                    "login": login,
                    "given_name": _string(claims.get("given_name")),
                    "family_name": _string(claims.get("family_name")),
                    "email": _string(claims.get("email")),
                    "display_name": _string(claims.get("name")),
                    "roles": tuple(roles),
                    "groups": tuple(groups),
                    "attributes": {"sub": sub} if type(sub) is str else {},
                }
            )
        except ValidationError:
            raise InvalidToken("token claims have the wrong shape") from None

    def _admin_identity(self, user: dict[str, Any]) -> Identity:
        attributes = user.get("attributes") if isinstance(user.get("attributes"), dict) else {}
        assert isinstance(attributes, dict)
        display = attributes.get("displayName")
        groups = _strings(user.get("groups"))
        if self.config.strip_group_path:
            groups = [g.rstrip("/").rsplit("/", 1)[-1] for g in groups]
        return Identity(
            login=str(user.get("username")),
            given_name=_string(user.get("firstName")),
            family_name=_string(user.get("lastName")),
            email=_string(user.get("email")),
            display_name=_string(display[0]) if isinstance(display, list) and display else None,
            roles=tuple(r for r in _strings(user.get("realmRoles")) if r not in self._ignored_roles),
            groups=tuple(dict.fromkeys(g for g in groups if g)),
            attributes={"id": user.get("id"), "enabled": bool(user.get("enabled", True))},
        )

    # ------------------------------------------------------------ bearer tokens

    def verify_bearer(self, token: str) -> BearerIdentity | None:
        """Check a Keycloak access token offline (and by introspection if configured).

        ``None`` for a token that is not this realm's; :class:`~authcore.InvalidToken`
        for one that is but fails a check.
        """
        claims = self._verifier.claims(token)
        if claims is None:
            return None
        if self.config.introspect:
            answer = self._call(lambda: self._openid.introspect(token), refused=InvalidToken)
            if not isinstance(answer, dict) or answer.get("active") is not True:
                raise InvalidToken("token is no longer active")
        identity = self.identity_from_claims(claims)
        sid = claims.get("sid") or claims.get("session_state")
        jti, iat = claims.get("jti"), claims.get("iat")
        return BearerIdentity(
            identity=identity,
            expires_at=float(claims["exp"]),
            session_id=sid if type(sid) is str else "",
            token_id=jti if type(jti) is str else "",
            issued_at=float(iat) if type(iat) is int or type(iat) is float else 0.0,
            claims=claims,
        )

    # ------------------------------------------------------------ upstream sessions

    def refresh_upstream(self, identity: Identity) -> Identity:
        """Refresh Keycloak's session; the identity gets the new tokens (and current roles and groups)."""
        state = identity.session_state or {}
        refresh_token = state.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            expires = state.get("access_expires_at")
            if isinstance(expires, int | float) and time.time() >= expires + self.config.leeway:
                raise InvalidToken("the Keycloak token behind this session has expired")
            return identity
        tokens = self._call(lambda: self._openid.refresh_token(refresh_token), refused=InvalidToken)
        fresh = self._identity_from_tokens(tokens)
        if fresh.login != identity.login:
            raise InvalidToken("Keycloak refreshed another user's session")
        return identity.model_copy(
            update={
                "given_name": fresh.given_name,
                "family_name": fresh.family_name,
                "email": fresh.email,
                "display_name": fresh.display_name,
                "roles": fresh.roles,
                "groups": fresh.groups,
                "session_state": fresh.session_state,
            }
        )

    def logout_upstream(self, identity: Identity) -> None:
        """End Keycloak's session (a session that already ended is fine)."""
        state = identity.session_state or {}
        refresh_token = state.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return
        try:
            self._call(lambda: self._openid.logout(refresh_token), refused=InvalidToken)
        except InvalidToken:
            return

    # ------------------------------------------------------------ single sign-on

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        """A fresh authorization-code request with PKCE S256, state and nonce."""
        verifier, state, nonce = flow.new_code_verifier(), flow.new_state(), flow.new_nonce()
        url = flow.authorization_url(
            self.config.endpoint("auth"),
            client_id=self.config.client_id,
            redirect_uri=redirect_uri,
            scope=self.config.scope,
            state=state,
            nonce=nonce,
            code_verifier=verifier,
        )
        return AuthorizationRequest(
            url=url, state=state, nonce=nonce, code_verifier=verifier, redirect_uri=redirect_uri
        )

    def logout_url(self, identity: Identity, post_logout_redirect_uri: str | None = None) -> str | None:
        """Keycloak's end-session URL for a browser, with the ID token as hint when we have it."""
        state = identity.session_state or {}
        hint = state.get("id_token")
        return flow.logout_url(
            self.config.logout_uri or self.config.endpoint("logout"),
            client_id=self.config.client_id,
            id_token_hint=hint if isinstance(hint, str) else None,
            post_logout_redirect_uri=post_logout_redirect_uri,
        )

    # ------------------------------------------------------------ user management

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> list[Identity]:
        """Users of the realm (one page; roles and groups are not fetched per user)."""
        return self._admin.list_users(search, limit, offset)

    def get_user(self, login: str) -> Identity:
        """One user, with realm roles and groups."""
        return self._admin.get_user(login)

    def create_user(self, user: NewUser) -> Identity:
        """Create a user (password, profile, realm roles / groups)."""
        self._admin.create_user(user, self.config.temporary_passwords)
        return self._admin.get_user(user.login)

    def update_user(self, login: str, changes: UserUpdate) -> Identity:
        """Change a user's profile."""
        self._admin.update_user(login, changes)
        return self._admin.get_user(login)

    def enable_user(self, login: str) -> None:
        """Let the user log in again."""
        self._admin.set_enabled(login, True)

    def disable_user(self, login: str) -> None:
        """Stop the user from logging in."""
        self._admin.set_enabled(login, False)

    def delete_user(self, login: str) -> None:
        """Delete the user."""
        self._admin.delete_user(login)

    def set_password(self, login: str, password: str) -> None:
        """Reset the user's password (temporary if ``temporary_passwords``)."""
        self._admin.set_password(login, password, self.config.temporary_passwords)

    def add_roles(self, login: str, roles: Sequence[str]) -> None:
        """Give realm roles; names that are groups (``staff`` or ``/staff/mx``) add memberships."""
        self._admin.change_roles(login, roles, add=True)

    def remove_roles(self, login: str, roles: Sequence[str]) -> None:
        """Take realm roles or group memberships away."""
        self._admin.change_roles(login, roles, add=False)

    # ------------------------------------------------------------ the rest

    def public_config(self) -> dict[str, Any]:
        """Server, realm, client and endpoints for a login page; never the secret."""
        config = self.config
        return {
            **super().public_config(),
            # py-ispyb's KeycloakAuthentication.config_export, which its front ends read from
            # /auth/config's plugins to start the Keycloak sign-in themselves.
            "config": {
                "KEYCLOAK_SERVER_URL": config.base_url,
                "KEYCLOAK_CLIENT_ID": config.client_id,
                "KEYCLOAK_REALM_NAME": config.realm_name,
            },
            "server_url": config.base_url,
            "realm": config.realm_name,
            "client_id": config.client_id,
            "issuer": config.realm_issuer,
            "scope": config.scope,
            "code_challenge_method": config.code_challenge_method,
            "endpoints": {
                "authorization": config.endpoint("auth"),
                "token": config.endpoint("token"),
                "logout": config.logout_uri or config.endpoint("logout"),
                "jwks": config.endpoint("certs"),
                "userinfo": config.token_info_uri or config.endpoint("userinfo"),
            },
        }

    def health(self) -> Health:
        """The realm's discovery document, then our client's credentials at the token endpoint
        (see :func:`auth_keycloak.health.check_health`); no user is needed."""
        return check_health(self._openid, self.config, keys=len(self.keys.kids))

    def close(self) -> None:
        """Drop the admin client and the HTTP connections."""
        self._admin.close()
        session = getattr(self._openid.connection, "_s", None)
        if session is not None:
            session.close()


def _string(value: Any) -> str | None:
    return value if type(value) is str else None


def _strings(value: Any) -> list[str]:
    if type(value) is not list:
        return []
    return [v for v in value if type(v) is str]
