"""``KeycloakConfig``: the ``config:`` mapping of a ``type: keycloak`` provider.

Besides authcore's own key names it accepts, as written in those projects, py-ispyb's
``KEYCLOAK_SERVER_URL``, ``KEYCLOAK_CLIENT_ID``, ``KEYCLOAK_REALM_NAME`` and
``KEYCLOAK_CLIENT_SECRET_KEY``, and MXCuBE's ``ISSUER``, ``CLIENT_ID``, ``CLIENT_SECRET``,
``SCOPE``, ``CODE_CHALLANGE_METHOD`` (sic) / ``CODE_CHALLENGE_METHOD``, ``LOGOUT_URI`` and
``TOKEN_INFO_URI``. An ``ISSUER`` of the form ``{server}/realms/{realm}/`` gives both the
server URL and the realm.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from authcore import ProviderConfig

__all__ = ["KeycloakConfig", "SUPPORTED_ALGORITHMS"]

#: Signature algorithms a realm key may use. HMAC (``HS*``) is never accepted for a JWKS key.
SUPPORTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")

_ISSUER = re.compile(r"^(?P<server>https?://[^?#]+?)/realms/(?P<realm>[^/?#]+)/?$")
#: The fields holding a URL of the identity provider (or of one of its endpoints).
_URL_FIELDS = ("server_url", "issuer", "logout_uri", "token_info_uri")


class KeycloakConfig(ProviderConfig):
    """Settings of the ``keycloak`` provider (one realm, one client)."""

    tls_verify_fields: ClassVar[tuple[str, ...]] = ("verify_tls",)

    server_url: str | None = Field(default=None, validation_alias=AliasChoices("server_url", "KEYCLOAK_SERVER_URL"))
    """Keycloak's base URL, e.g. ``https://sso.example.org/`` (with ``/auth/`` for old Keycloaks).
    Also ``KEYCLOAK_SERVER_URL``; derived from ``issuer`` when not given."""
    realm: str | None = Field(
        default=None, min_length=1, max_length=255, validation_alias=AliasChoices("realm", "KEYCLOAK_REALM_NAME")
    )
    """The realm name. Also ``KEYCLOAK_REALM_NAME``; derived from ``issuer`` when not given."""
    issuer: str | None = Field(default=None, validation_alias=AliasChoices("issuer", "ISSUER"))
    """The realm issuer ``{server}/realms/{realm}`` (MXCuBE's ``ISSUER``); an alternative to
    ``server_url`` + ``realm``."""
    client_id: str = Field(
        min_length=1, max_length=255, validation_alias=AliasChoices("client_id", "KEYCLOAK_CLIENT_ID", "CLIENT_ID")
    )
    """Our client in the realm. Also ``KEYCLOAK_CLIENT_ID`` / ``CLIENT_ID``."""
    client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("client_secret", "KEYCLOAK_CLIENT_SECRET_KEY", "CLIENT_SECRET")
    )
    """The client secret of a confidential client. Also ``KEYCLOAK_CLIENT_SECRET_KEY`` / ``CLIENT_SECRET``."""
    scope: str = Field(default="openid", validation_alias=AliasChoices("scope", "SCOPE"))
    """Scopes asked for at login and in SSO (MXCuBE's ``SCOPE``); ``openid`` is always added."""
    code_challenge_method: Literal["S256"] = Field(
        default="S256",
        validation_alias=AliasChoices("code_challenge_method", "CODE_CHALLENGE_METHOD", "CODE_CHALLANGE_METHOD"),
    )
    """PKCE method of the SSO flow; only ``S256`` (MXCuBE's ``CODE_CHALLANGE_METHOD``)."""
    logout_uri: str | None = Field(default=None, validation_alias=AliasChoices("logout_uri", "LOGOUT_URI"))
    """Where browsers end the Keycloak session; default: the realm's end-session endpoint (``LOGOUT_URI``)."""
    token_info_uri: str | None = Field(default=None, validation_alias=AliasChoices("token_info_uri", "TOKEN_INFO_URI"))
    """The user-info endpoint shown in ``public_config()``; default: the realm's (``TOKEN_INFO_URI``)."""

    verify_tls: bool = True
    """Check Keycloak's TLS certificate. ``false`` is refused under ``production: true``."""
    allow_plaintext: bool = False
    """Accept ``http://`` URLs for Keycloak under ``production: true``. Plain HTTP carries the
    client secret, users' passwords and tokens unencrypted, and lets anyone on the path forge
    the realm's keys. Without this switch, production refuses every ``http://`` URL, loopback
    ones included: a local port may be a proxy that forwards in clear text to another host.
    Set it only when TLS ends in front of Keycloak on a network you trust."""
    ca_file: str | None = None
    """A CA bundle to check Keycloak's certificate against, instead of the system's."""
    timeout: float = Field(default=10.0, gt=0, le=300)
    """Seconds a single HTTP call to Keycloak may take (connect, and each read)."""

    leeway: float = Field(default=10.0, ge=0, le=300)
    """Clock skew in seconds tolerated on ``exp``, ``nbf`` and ``iat`` of Keycloak tokens."""
    algorithms: tuple[Literal[SUPPORTED_ALGORITHMS], ...] = ("RS256",)  # type: ignore[valid-type]
    """Signature algorithms accepted; each realm key is used only with the algorithm it names."""
    client_check: Literal["azp", "aud", "either", "both"] = "either"
    """How a bearer token must name us: ``azp`` (the client that asked for it), ``aud`` (an audience
    mapper adds us), ``either`` or ``both``. Keycloak's default audience is only ``account``."""
    audience: tuple[str, ...] = ()
    """Audiences that name us in ``aud``; default: ``client_id``."""
    trusted_clients: tuple[str, ...] = ()
    """Other clients of the realm (a public front-end, say) whose tokens are accepted as ``azp``."""
    introspect: bool = False
    """Ask Keycloak's introspection endpoint about every bearer token (immediate revocation, one HTTP
    call per uncached token) after the offline checks."""

    jwks_cache_ttl: float = Field(default=3600.0, gt=0)
    """Seconds the realm's keys are used before they are fetched again (old keys stay if that fails)."""
    jwks_refetch_cooldown: float = Field(default=30.0, ge=0)
    """Seconds after a key fetch during which an unknown ``kid`` does not fetch again."""
    jwks_max_stale: float = Field(default=86400.0, ge=0)
    """Seconds past ``jwks_cache_ttl`` that cached keys keep verifying while Keycloak cannot be
    reached (stale-if-error); after that, bearer tokens get "provider unavailable"."""

    login_claim: str = "preferred_username"
    """The token claim that gives the authcore login."""
    realm_roles: bool = True
    """Map the realm roles (``realm_access.roles``) to authcore roles."""
    client_roles: tuple[str, ...] | None = None
    """Clients whose roles (``resource_access.<client>.roles``) become authcore roles; default: ``client_id``."""
    client_role_prefix: str = ""
    """Put before every client role name (``"mxcube:"`` gives ``mxcube:operator``)."""
    groups_claim: str = "groups"
    """The claim with the user's groups (Keycloak's group-membership mapper)."""
    strip_group_path: bool = True
    """Map ``/staff/mx`` to ``mx`` (the last path element) instead of keeping the full path."""
    ignored_roles: tuple[str, ...] = ("offline_access", "uma_authorization")
    """Keycloak's built-in roles left out of the identity (``default-roles-<realm>`` always is)."""

    admin_username: str | None = None
    """An admin user for user management; without it the client's service account is used
    (``client_credentials``, needs the ``realm-management`` roles)."""
    admin_password: SecretStr | None = None
    """The admin user's password."""
    admin_realm: str | None = None
    """The realm the admin user logs in to (``master``, say); default: ``realm``."""
    admin_client_id: str | None = None
    """The client the admin logs in through; default ``admin-cli`` for a user, ``client_id`` for the service account."""
    temporary_passwords: bool = False
    """Passwords set through user management must be changed at the next login."""

    @field_validator("server_url", "issuer", "logout_uri", "token_info_uri", "ca_file")
    @classmethod
    def _no_blank(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or not value.isprintable()):
            raise ValueError("must be a non-empty printable string")
        return value

    @field_validator("server_url", "issuer", "logout_uri", "token_info_uri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http(s) URL")
        return value

    @field_validator("realm", "client_id")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or "/" in value or value != value.strip()):
            raise ValueError("must be printable, without '/' or surrounding spaces")
        return value

    @field_validator("scope")
    @classmethod
    def _openid_scope(cls, value: str) -> str:
        words = value.split()
        if not value.isprintable():
            raise ValueError("must be printable")
        return " ".join(words if "openid" in words else ["openid", *words])

    @model_validator(mode="after")
    def _server_and_realm(self) -> KeycloakConfig:
        server, realm = self.server_url, self.realm
        if self.issuer is not None:
            match = _ISSUER.match(self.issuer)
            if match is None:
                raise ValueError("issuer must look like {server}/realms/{realm}")
            if server is None:
                server = match["server"]
            if realm is None:
                realm = match["realm"]
            if (server.rstrip("/"), realm) != (match["server"].rstrip("/"), match["realm"]):
                raise ValueError("issuer does not match server_url and realm")
        if server is None or realm is None:
            raise ValueError("give server_url and realm, or issuer")
        # python-keycloak joins paths with urljoin: a server URL must end in '/'.
        object.__setattr__(self, "server_url", server.rstrip("/") + "/")
        object.__setattr__(self, "realm", realm)
        if (self.admin_username is None) != (self.admin_password is None):
            raise ValueError("admin_username and admin_password go together")
        if not self.algorithms:
            raise ValueError("algorithms: at least one")
        return self

    def production_issues(self) -> list[str]:
        """The base checks, plus every ``http://`` URL of Keycloak unless ``allow_plaintext`` is set."""
        issues = super().production_issues()
        if not self.allow_plaintext:
            for name in _URL_FIELDS:
                value = getattr(self, name)
                if value is not None and urlsplit(value).scheme.lower() == "http":
                    issues.append(
                        f"{name} is plaintext http:// (secrets, passwords and tokens would cross the network "
                        "unencrypted): use https://, or set allow_plaintext: true to accept the risk"
                    )
        return issues

    # ------------------------------------------------------------ derived values

    @property
    def base_url(self) -> str:
        """The server URL, ending in ``/``."""
        assert self.server_url is not None
        return self.server_url

    @property
    def realm_name(self) -> str:
        """The realm."""
        assert self.realm is not None
        return self.realm

    @property
    def realm_issuer(self) -> str:
        """``iss`` of the realm's tokens: ``{server}/realms/{realm}``."""
        return f"{self.base_url}realms/{self.realm_name}"

    @property
    def audiences(self) -> frozenset[str]:
        """Audience values that name us."""
        return frozenset(self.audience or (self.client_id,))

    @property
    def role_clients(self) -> tuple[str, ...]:
        """Clients whose roles are mapped."""
        return self.client_roles if self.client_roles is not None else (self.client_id,)

    def endpoint(self, name: str) -> str:
        """An OpenID Connect endpoint of the realm: ``auth``, ``token``, ``logout``, ``certs``, ``userinfo``, ..."""
        return f"{self.realm_issuer}/protocol/openid-connect/{name}"

    def verify_argument(self) -> bool | str:
        """What python-keycloak's ``verify`` takes: the CA file, or the switch."""
        if self.ca_file is not None and self.verify_tls:
            return self.ca_file
        return self.verify_tls
