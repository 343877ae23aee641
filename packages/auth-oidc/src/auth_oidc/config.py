"""``OIDCConfig``: the ``config:`` mapping of a ``type: oidc`` provider.

Besides authcore's own key names it accepts MXCuBE's, as written there: ``ISSUER``,
``CLIENT_ID``, ``CLIENT_SECRET``, ``SCOPE``, ``CODE_CHALLANGE_METHOD`` (sic) /
``CODE_CHALLENGE_METHOD``, ``LOGOUT_URI`` and ``TOKEN_INFO_URI``. Every empty string means
"not set" (MXCuBE's sample leaves ``LOGOUT_URI: ""``), so a required key given as ``""``
is reported missing and an optional one takes its default.

The claim-mapping fields (``login_claim``, ``groups_claim``, ``roles_claim``,
``strip_group_path``, ``ignored_roles``, ``client_check``, ``audience``) start from the
chosen ``preset`` (:mod:`auth_oidc.presets`); a field written in the configuration wins.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from authcore import ProviderConfig
from authcore.algorithms import ALGORITHMS, AlgorithmName

__all__ = ["OIDCConfig", "ASYMMETRIC_ALGORITHMS", "PresetName", "FLOW_PARAMETERS"]

#: Every asymmetric row of the core's algorithm table: the default of ``algorithms``.
ASYMMETRIC_ALGORITHMS: tuple[str, ...] = tuple(name for name, row in ALGORITHMS.items() if not row.symmetric)

PresetName = Literal["generic", "keycloak", "entra", "google", "gitlab", "authentik", "okta"]

#: Parameters of the authorization request that ``extra_authorize_params`` may not set.
FLOW_PARAMETERS = frozenset(
    {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method"}
)

_CLAIM_PATH = re.compile(r"^[^{}]*(\{client_id\}[^{}]*)*$")
_MAX_NAME = 256


def _check_text(value: str, what: str = "value") -> str:
    if not value or not value.isprintable() or value != value.strip() or len(value) > _MAX_NAME:
        raise ValueError(f"each {what} must be 1-{_MAX_NAME} printable characters without surrounding spaces")
    return value


def _names(value: Any, what: str) -> Any:
    """A string or a list of strings, as a tuple (the input is left for pydantic to refuse otherwise)."""
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, str):
                _check_text(item, what)
        return tuple(value)
    return value


class OIDCConfig(ProviderConfig):
    """Settings of the ``oidc`` provider (one issuer, one client)."""

    tls_verify_fields: ClassVar[tuple[str, ...]] = ("verify_tls",)

    issuer: str = Field(validation_alias=AliasChoices("issuer", "ISSUER"))
    """The issuer URL (MXCuBE's ``ISSUER``). The discovery document is read from
    ``{issuer}/.well-known/openid-configuration`` and must name this issuer; a single trailing
    ``/`` of difference is forgiven, and from then on the document's spelling is the one tokens
    must carry."""
    client_id: str = Field(min_length=1, max_length=255, validation_alias=AliasChoices("client_id", "CLIENT_ID"))
    """Our client at the issuer (``CLIENT_ID``)."""
    client_secret: SecretStr | None = Field(
        default=None, max_length=4096, validation_alias=AliasChoices("client_secret", "CLIENT_SECRET")
    )
    """The client secret of a confidential client (``CLIENT_SECRET``); none (or ``""``) for a public client."""
    client_auth: Literal["client_secret_basic", "client_secret_post", "none"] | None = None
    """How we authenticate at the token, introspection and revocation endpoints: default
    ``client_secret_basic`` with a secret, ``none`` (a public client) without."""
    scope: str = Field(default="openid profile email", max_length=2048, validation_alias=AliasChoices("scope", "SCOPE"))
    """Scopes asked for (MXCuBE's ``SCOPE``); must contain ``openid``. Add ``groups`` (or your
    issuer's equivalent) when the groups claim is released only for a scope."""
    code_challenge_method: Literal["S256"] = Field(
        default="S256",
        validation_alias=AliasChoices("code_challenge_method", "CODE_CHALLENGE_METHOD", "CODE_CHALLANGE_METHOD"),
    )
    """PKCE method of single sign-on; only ``S256`` (``CODE_CHALLANGE_METHOD``, MXCuBE's spelling, or
    ``CODE_CHALLENGE_METHOD``). ``plain`` is refused: it protects nothing against a stolen code."""
    logout_uri: str | None = Field(default=None, validation_alias=AliasChoices("logout_uri", "LOGOUT_URI"))
    """Where browsers end the issuer's session (``LOGOUT_URI``); default: the discovery
    document's ``end_session_endpoint``."""
    token_info_uri: str | None = Field(default=None, validation_alias=AliasChoices("token_info_uri", "TOKEN_INFO_URI"))
    """The RFC 7662 introspection endpoint (``TOKEN_INFO_URI``); default: the discovery
    document's ``introspection_endpoint``."""

    preset: PresetName = "generic"
    """Claim mapping and checks of a known issuer (``keycloak``, ``entra``, ``google``, ``gitlab``,
    ``authentik``, ``okta``); each field below that you set overrides the preset's value."""
    login_claim: tuple[str, ...] = ("preferred_username",)
    """The claim giving the authcore login; a list means the first claim present wins."""
    groups_claim: tuple[str, ...] = ("groups",)
    """Dotted path(s) to the user's groups (a string or a list of strings); ``[]`` for none.
    ``{client_id}`` stands for our client id. A claim whose name itself holds dots
    (``https://example.org/groups``) is found too."""
    roles_claim: tuple[str, ...] = ()
    """Dotted path(s) to the user's roles, e.g. ``realm_access.roles`` or
    ``resource_access.{client_id}.roles``."""
    strip_group_path: bool = False
    """Map ``/staff/mx`` to ``mx`` (the last path element) instead of keeping the full path."""
    ignored_roles: tuple[str, ...] = ()
    """Roles left out of the identity; a trailing ``*`` matches a prefix (``default-roles-*``)."""
    userinfo: Literal["auto", "always", "never"] = "auto"
    """Ask the userinfo endpoint: ``auto`` when the token claims lack the login claim or a groups
    claim (at login and for introspected bearer tokens; a JWT checked offline asks only when it
    lacks the login, so that its check makes no HTTP call), ``always`` (at login), or ``never``."""
    allowed_groups: tuple[str, ...] = ()
    """When set, only members of one of these groups may log in or use a bearer token. A refused
    login gets the same answer as a wrong password."""
    denied_groups: tuple[str, ...] = ()
    """Members of any of these groups may not log in or use a bearer token (also when the
    issuer's answer does not tell the groups at all)."""

    client_check: Literal["aud", "azp", "either", "both"] = "either"
    """How a bearer JWT must name us: ``aud`` (an audience we accept), ``azp`` (our client, or a
    trusted one, asked for it: ``azp`` or RFC 9068's ``client_id``), ``either`` or ``both``.
    Introspection answers are checked the same way."""
    audience: tuple[str, ...] = ()
    """Audience values that name us in ``aud``; default: ``client_id``."""
    trusted_clients: tuple[str, ...] = ()
    """Other clients of the issuer (a public front-end, say) whose tokens we accept as ``azp``."""
    access_token_type: Literal["auto", "at+jwt"] = "auto"
    """``at+jwt``: accept only JWT access tokens typed as RFC 9068 says (header ``typ: at+jwt``).
    ``auto`` also accepts untyped ones that name a client or scope (``client_id``, ``azp``,
    ``cid``, ``appid``, ``scope`` or ``scp``) and do not look like ID tokens (a ``nonce``,
    ``at_hash`` or ``c_hash`` claim, or a ``typ`` claim other than ``Bearer``)."""
    algorithms: tuple[AlgorithmName, ...] = ASYMMETRIC_ALGORITHMS
    """Signature algorithms accepted; only those the issuer also publishes (or its keys pin) are used."""
    leeway: float = Field(default=10.0, ge=0, le=300)
    """Clock skew in seconds tolerated on ``exp``, ``nbf`` and ``iat``."""

    introspect: Literal["opaque", "always", "never"] = "opaque"
    """RFC 7662 introspection: ``opaque`` sends tokens that are not JWTs to the introspection
    endpoint (when one is known) and checks JWTs offline; ``always`` also asks about every
    JWT after the offline checks (revocation shows within ``introspection_cache_ttl``);
    ``never``."""
    introspection_cache_ttl: float = Field(default=30.0, ge=0, le=300)
    """Seconds an introspection answer is reused (never past the token's ``exp``)."""
    password_grant: bool = False
    """Allow password logins through the issuer's password grant (ROPC). Off by default: OAuth 2.1
    drops the grant, and most issuers refuse it."""

    discovery_ttl: float = Field(default=3600.0, gt=0)
    """Seconds the discovery document is used before it is fetched again (kept if that fails)."""
    jwks_cache_ttl: float = Field(default=3600.0, gt=0)
    """Seconds the issuer's keys are used before they are fetched again (kept if that fails)."""
    jwks_refetch_cooldown: float = Field(default=30.0, ge=0)
    """Seconds after a fetch of the keys (or a failed fetch) during which an unknown ``kid`` does not fetch again."""
    jwks_max_stale: float = Field(default=86400.0, ge=0)
    """Seconds past their freshness that keys and discovery document are still used while the issuer cannot
    be reached; after that the provider reports itself unavailable."""
    timeout: float = Field(default=10.0, gt=0, le=300)
    """Seconds a single HTTP call to the issuer may take."""
    verify_tls: bool = True
    """Check the issuer's TLS certificate. ``false`` is refused under ``production: true``."""
    ca_file: str | None = None
    """A CA bundle to check the issuer's certificate against, instead of the system's."""
    allow_plaintext: bool = False
    """Accept ``http://`` URLs under ``production: true``, and ``http://`` endpoints in the discovery
    document of an ``https://`` issuer. Plain HTTP carries secrets and tokens unencrypted."""
    extra_authorize_params: dict[str, str] = Field(default_factory=dict, max_length=32)
    """More parameters of the authorization request (``prompt``, ``resource``, ``hd``, ...); the
    flow's own parameters cannot be overridden."""

    # ------------------------------------------------------------ validators

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        # MXCuBE's sample writes LOGOUT_URI: "" for "use the default": every "" is a key left out.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if not (isinstance(value, str) and value == "")}
        return data

    @field_validator("login_claim", "groups_claim", "roles_claim", mode="before")
    @classmethod
    def _claim_names(cls, value: Any) -> Any:
        return _names(value, "claim name")

    @field_validator("ignored_roles", "allowed_groups", "denied_groups", "audience", "trusted_clients", mode="before")
    @classmethod
    def _name_lists(cls, value: Any) -> Any:
        return _names(value, "name")

    @field_validator("login_claim")
    @classmethod
    def _some_login_claim(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one claim")
        return value

    @field_validator("groups_claim", "roles_claim")
    @classmethod
    def _claim_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not _CLAIM_PATH.match(path) or ".." in path or path.startswith(".") or path.endswith("."):
                raise ValueError("a dotted claim path; the only placeholder is {client_id}")
        return value

    @field_validator("issuer", "logout_uri", "token_info_uri")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.isascii() or not value.isprintable() or value != value.strip() or len(value) > 2048:
            raise ValueError("must be a printable ASCII URL (write international host names in their xn-- form)")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("an issuer has no query or fragment (OpenID Connect Discovery 3)")
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return _check_text(value, "client id")

    @field_validator("ca_file")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or value != value.strip() or len(value) > 4096):
            raise ValueError("must be a printable path")
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        words = value.split()
        if not value.isascii() or not value.isprintable() or any('"' in w or "\\" in w for w in words):
            raise ValueError("scopes are printable ASCII words separated by spaces")
        if "openid" not in words:
            raise ValueError("must contain openid (this is an OpenID Connect provider)")
        return " ".join(dict.fromkeys(words))

    @field_validator("code_challenge_method", mode="before")
    @classmethod
    def _pkce(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() == "plain":
            raise ValueError("PKCE 'plain' is refused: it does not protect a stolen code; use S256")
        return value

    @field_validator("extra_authorize_params")
    @classmethod
    def _extra(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            _check_text(key, "parameter name")
            if key in FLOW_PARAMETERS:
                raise ValueError(f"{key!r} is set by the flow itself")
            if len(item) > 2048 or not item.isprintable():
                raise ValueError("each parameter value must be at most 2048 printable characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OIDCConfig:
        if not self.algorithms:
            raise ValueError("algorithms: at least one")
        symmetric = [name for name in self.algorithms if ALGORITHMS[name].symmetric]
        if symmetric:
            raise ValueError(
                f"algorithms: {', '.join(symmetric)} needs a shared secret; an issuer publishes public keys"
            )
        if self.client_auth in ("client_secret_basic", "client_secret_post") and self.client_secret is None:
            raise ValueError(f"client_auth {self.client_auth} needs a client_secret")
        if self.client_auth == "none" and self.client_secret is not None:
            raise ValueError("client_auth none (a public client) and a client_secret do not go together")
        return self

    def production_issues(self) -> list[str]:
        """The base checks, plus every ``http://`` URL unless ``allow_plaintext`` is set."""
        issues = super().production_issues()
        if not self.allow_plaintext:
            for name in ("issuer", "logout_uri", "token_info_uri"):
                value = getattr(self, name)
                if value is not None and urlsplit(value).scheme == "http":
                    issues.append(
                        f"{name} is plaintext http:// (secrets and tokens would cross the network "
                        "unencrypted): use https://, or set allow_plaintext: true to accept the risk"
                    )
        return issues

    # ------------------------------------------------------------ derived values

    @property
    def discovery_url(self) -> str:
        """Where the discovery document is read."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def auth_method(self) -> str:
        """The client authentication actually used."""
        if self.client_auth is not None:
            return self.client_auth
        return "client_secret_basic" if self.client_secret is not None else "none"

    def tls_verify(self) -> bool | str:
        """httpx's ``verify``: the CA file, or the switch."""
        if self.ca_file is not None and self.verify_tls:
            return self.ca_file
        return self.verify_tls
