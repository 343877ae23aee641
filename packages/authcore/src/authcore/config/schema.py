"""The configuration schema: one pydantic model per section, unknown keys refused.

Field documentation is written as attribute docstrings; ``docs/generate_config_reference.py``
turns them into ``docs/configuration.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from ..algorithms import ALGORITHMS, AlgorithmName
from ..durations import Duration
from .source import ConfigSource
from .web import WebConfig

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, hide_input_in_errors=True)


class TokenConfig(_Section):
    """``tokens:``: how access tokens are signed and checked."""

    algorithm: AlgorithmName = "HS256"
    """Signing algorithm, pinned: tokens signed any other way are refused (the rows of ``authcore.algorithms``)."""
    secret: SecretStr | None = None
    """HMAC secret for HS*; at least 32 bytes in production. Without one, development uses a random secret."""
    private_key_file: Path | None = None
    """PEM private key for RS*/PS*/ES*/EdDSA; its public key is published in the JWKS."""
    public_key_files: tuple[Path, ...] = ()
    """PEM public keys of earlier signing keys, still accepted while tokens they signed live (rotation)."""
    issuer: str = Field(default="authcore", min_length=1, max_length=512)
    """``iss`` of issued tokens, and the only issuer accepted."""
    audience: str = Field(default="authcore", min_length=1, max_length=512)
    """``aud`` of issued tokens, and the audience required."""
    access_ttl: Duration = 900.0
    """Lifetime of an access token."""
    personal_ttl: Duration = 30 * 86400.0
    """Lifetime of a personal access token created without ``expires_in``."""
    personal_max_ttl: Duration = 366 * 86400.0
    """Longest lifetime a personal access token may be given."""
    leeway: Duration = 10.0
    """Clock skew tolerated on ``exp``, ``nbf`` and ``iat`` (at most 5 minutes)."""
    cache_size: int = Field(default=10_000, ge=0, le=10_000_000)
    """Verified tokens remembered (0 switches the cache off)."""
    revocation_check_interval: Duration = 5.0
    """With a session store shared between processes, how long a cached verification is trusted
    before the session is looked up again (a logout elsewhere shows within this; with Redis it
    shows at once, through its revocation feed, and this is only a second line)."""
    profile: Literal["authcore", "pyispyb"] = "authcore"
    """``pyispyb``: issued tokens carry no ``aud`` (and do carry ``login``/``personId``), so a py-ispyb
    service sharing ``secret`` decodes them with ``jwt.decode(token, secret, algorithms=[...])``; our
    tokens without ``aud`` are accepted. HS* only. Tokens a py-ispyb service minted are accepted by an
    ``authcore.compat.pyispyb:PyIspybTokens`` provider."""

    @field_validator("leeway")
    @classmethod
    def _small_leeway(cls, value: float) -> float:
        if value > 300:
            raise ValueError("leeway is at most 5 minutes")
        return value

    @field_validator("access_ttl")
    @classmethod
    def _positive_ttl(cls, value: float) -> float:
        if value < 1:
            raise ValueError("access_ttl is at least one second")
        return value

    @model_validator(mode="after")
    def _key_material(self) -> TokenConfig:
        if ALGORITHMS[self.algorithm].symmetric:
            if self.private_key_file is not None or self.public_key_files:
                raise ValueError(f"{self.algorithm} uses 'secret', not key files")
        elif self.private_key_file is None:
            raise ValueError(f"{self.algorithm} needs 'private_key_file'")
        elif self.secret is not None:
            raise ValueError(f"{self.algorithm} uses key files, not 'secret'")
        # py-ispyb checks tokens with its shared secret_key: only HMAC algorithms can interoperate.
        if self.profile == "pyispyb" and not ALGORITHMS[self.algorithm].symmetric:
            raise ValueError(
                f"profile 'pyispyb' needs an HS* algorithm (py-ispyb's shared secret), not {self.algorithm}"
            )
        return self


class SessionConfig(_Section):
    """``sessions:``: refresh tokens and how long a session lives."""

    idle_timeout: Duration = 8 * 3600.0
    """A session unused for this long ends; each refresh pushes the end back (sliding expiry)."""
    max_lifetime: Duration = 24 * 3600.0
    """No session outlives this, however active."""
    store: str = Field(default="memory://", min_length=1, max_length=4096)
    """Where sessions are kept: ``memory://``, ``sqlite:////absolute/path/sessions.db`` (four slashes: an
    absolute path; ``sqlite:///sessions.db`` is relative to the working directory; the directory must exist),
    ``redis://[:password@]host:port/db``, ``rediss://…`` (TLS), ``redis+sentinel://host:port[,host:port]/service/db``
    (``pip install 'authcore[redis]>=0.2'``; options ``?prefix=``, ``?socket_timeout=``, ``?socket_connect_timeout=``:
    several instances share them; ``?min_other_sentinels=`` for Sentinel), or a plugin's scheme."""
    outage_grace: Duration = 0.0
    """With a store that announces revocations (Redis): how long tokens verified before it became
    unreachable keep verifying from the cache. 0 (the default) fails closed at once: every verify
    then asks the store, which answers 503 while it is down. A grace trades availability for
    revocations missed meanwhile."""

    @model_validator(mode="after")
    def _ordered(self) -> SessionConfig:
        if self.idle_timeout < 1 or self.max_lifetime < 1:
            raise ValueError("idle_timeout and max_lifetime are at least one second")
        return self


class ProviderEntry(_Section):
    """One entry of ``providers:`` in the YAML: the instance name, the provider type, its settings.

    Three names for three things: this entry, the provider's settings model
    (:class:`~authcore.ProviderConfig`, which validates ``config``), and the configured
    instance (a :class:`~authcore.Provider`).
    """

    name: str
    """Instance name: what a login request names (``plugin`` in py-ispyb)."""
    type: str | None = None
    """Provider type (entry-point name); defaults to the instance name."""
    class_: str | None = Field(default=None, alias="class")
    """``"package.module:Class"``: load a provider class directly instead of by type."""
    enabled: bool = True
    """A disabled entry is validated for shape but not started."""
    config: dict[str, Any] = Field(default_factory=dict, repr=False)  # raw: may hold secrets
    """The provider's own settings, validated by its settings model (``Provider.Config``)."""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a provider name is a letter, then letters, digits, '_' or '-' (at most 64)")
        return value

    @model_validator(mode="after")
    def _type_or_class(self) -> ProviderEntry:
        if self.type is not None and self.class_ is not None:
            raise ValueError("give 'type' or 'class', not both")
        if self.type is None and self.class_ is None:
            object.__setattr__(self, "type", self.name)
        return self


class IspybDatabaseConfig(_Section):
    """``permissions.ispyb:``: py-ispyb's database (``pip install 'authcore[ispyb]>=0.2'``), read as
    py-ispyb's login reads it: the ``Person`` of each login, permissions from its ``UserGroup`` tables."""

    url: SecretStr
    """A SQLAlchemy URL (``mysql+pymysql://user:pw@host/ispyb``); ``${SQLALCHEMY_DATABASE_URI}``
    reads the variable py-ispyb itself reads."""
    create_person_on_missing: bool = False
    """Create the ``Person`` row of a login that has none (py-ispyb's option of the same name)."""


class PermissionsConfig(_Section):
    """``permissions:``: how groups become permissions."""

    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Group (or role) name → permissions granted to its members."""
    authenticated: list[str] = Field(default_factory=list)
    """Permissions every authenticated identity gets."""
    store: str | None = None
    """``sqlite:////absolute/path.db`` (four slashes: absolute; three: relative to the working directory):
    py-ispyb's UserGroup/Permission tables, read by the SQL permission store."""
    ispyb: IspybDatabaseConfig | None = None
    """py-ispyb's own database: Person lookup (and auto-create) and its permission tables."""


class AuthcoreConfig(_Section):
    """The whole configuration file."""

    #: Top-level keys accepted besides the fields: py-ispyb's ``AUTH:`` list, translated onto ``providers``.
    translated_keys: ClassVar[tuple[str, ...]] = ("AUTH",)

    production: bool = False
    """Refuse development providers, weak secrets and disabled TLS verification."""
    tokens: TokenConfig = Field(default_factory=TokenConfig)
    """How access tokens are signed and checked."""
    sessions: SessionConfig = Field(default_factory=SessionConfig)
    """Refresh tokens and session lifetimes."""
    providers: list[ProviderEntry] = Field(default_factory=list)
    """The provider instances; several of one type may be enabled at once."""
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    """How groups and roles become permissions."""
    web: WebConfig = Field(default_factory=WebConfig)
    """The web adapters and ``authcore serve``: prefix, cookies, CORS, throttling (``authcore.config.web``)."""

    _source: ConfigSource = PrivateAttr(default_factory=ConfigSource)

    @property
    def source(self) -> ConfigSource:
        """Where this configuration came from: file name and line positions, for error messages."""
        return self._source

    @model_validator(mode="after")
    def _unique_names(self) -> AuthcoreConfig:
        seen: set[str] = set()
        for entry in self.providers:
            if entry.name in seen:
                raise ValueError(f"two providers are named {entry.name!r}; instance names must be unique")
            seen.add(entry.name)
        return self
