"""The ``local`` provider's settings (its ``config:`` mapping)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from authcore import ProviderConfig

__all__ = ["LocalConfig", "SecondFactorConfig", "SmtpConfig", "DEFAULT_DATABASE_URL", "MEMORY_DATABASE_URL"]

#: The default database: a file in the working directory of the process (a provider is
#: told nothing of the command line's state directory; see docs/design.md).
DEFAULT_DATABASE_URL = "sqlite:///authcore-users.db"
#: An SQLite database that lives as long as the provider: tests and throwaway services.
MEMORY_DATABASE_URL = "sqlite:///:memory:"


class SmtpConfig(BaseModel):
    """How ``delivery: smtp`` reaches the mail server (``smtp:`` in the provider's config)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    #: ``starttls`` (port 587), ``ssl`` (implicit TLS, port 465) or ``none`` (a local relay).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = Field(default=None, repr=False)
    from_address: str = Field(min_length=3, max_length=320)
    #: Seconds to wait for the server at each step.
    timeout: float = Field(default=10.0, gt=0, le=300)


class SecondFactorConfig(BaseModel):
    """TOTP second factor (``second_factor:`` in the provider's config): who must have one, how codes look.

    ``digits`` and ``period`` apply to enrolments begun after a change: an enrolled app keeps the
    parameters it was given, and the provider keeps them with the secret.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    required_groups: list[str] = Field(
        default=[],
        description="Users with any of these roles (groups) must have a second factor: until they enrol, "
        "a login asks them to (`enrol`). Others may enrol by choice.",
    )
    issuer: str = Field(
        default="authcore",
        min_length=1,
        max_length=100,
        description="The name authenticator apps show beside the account (no `:`).",
    )
    digits: int = Field(default=6, ge=6, le=8, description="Digits of a code (6 is what every app supports).")
    period: int = Field(default=30, ge=15, le=120, description="Seconds each code lasts (RFC 6238's time step).")
    valid_window: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Time steps of clock drift accepted on each side of the current one (1: the previous "
        "and the next code work too).",
    )
    recovery_codes: int = Field(
        default=10, ge=1, le=100, description="Single-use recovery codes made with each enrolment."
    )

    @field_validator("required_groups")
    @classmethod
    def _group_names(cls, value: list[str]) -> list[str]:
        for group in value:
            if not 1 <= len(group) <= 256 or not group.isprintable() or group != group.strip():
                raise ValueError("a group is 1-256 printable characters without leading or trailing space")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_text(cls, value: str) -> str:
        # The key URI's label is "issuer:account": a colon in the issuer would split it wrongly.
        if ":" in value or not value.isprintable() or value != value.strip():
            raise ValueError("issuer is printable text without ':' and without leading or trailing space")
        return value


class LocalConfig(ProviderConfig):
    """Settings of a ``type: local`` provider.

    ``database_url`` is a SQLAlchemy URL: ``sqlite:///path/users.db`` (the default is
    ``authcore-users.db`` in the working directory) or ``postgresql+psycopg://user:pw@host/db``
    (``pip install 'auth-local[postgresql]'``). It is never shown in a repr, an error or a log
    line; one that holds a password is kept as a secret (so the core also asks that a file
    spelling it out be private), one that holds none (an SQLite path) as plain text.
    """

    #: SQLAlchemy URL of the user database (SQLite or PostgreSQL).
    database_url: SecretStr | str = Field(default=DEFAULT_DATABASE_URL, repr=False)
    #: Run ``alembic upgrade head`` when the provider starts (off: the operator migrates).
    migrate: bool = True
    #: Who may create an account: nobody (administrators only), anyone, or invited people.
    registration: Literal["closed", "open", "invitation"] = "closed"
    #: Roles every self-registered user starts with.
    registration_roles: tuple[str, ...] = ()
    #: argon2id parameters; the defaults are OWASP's (2 passes over 19 MiB, one lane: about
    #: 50 ms a login on one core). Changing them makes each user's hash be redone at their
    #: next successful login.
    argon2_time_cost: int = Field(default=2, ge=1, le=100)
    argon2_memory_cost: int = Field(default=19456, ge=8, le=4 * 1024 * 1024, description="KiB")
    argon2_parallelism: int = Field(default=1, ge=1, le=64)
    #: The password policy: at least this many characters (at most 1024, the core's bound).
    password_min_length: int = Field(default=12, ge=1, le=1024)
    #: Refuse the most common passwords (the shipped list of 10,000).
    refuse_common_passwords: bool = True
    #: SQLite only: how long a writer waits for another one's lock, in seconds.
    sqlite_busy_timeout: float = Field(default=10.0, gt=0, le=600)
    #: Connection pool size for server databases (PostgreSQL).
    pool_size: int = Field(default=8, ge=1, le=200)

    #: How self-service messages leave: ``smtp`` (see ``smtp``), ``log`` (development: a log
    #: line naming the recipient, never the token unless ``log_tokens``) or ``module:callable``,
    #: a site's own: a callable ``f(to, subject, text)`` or an object with such a ``send``.
    delivery: str = Field(default="log", pattern=r"^(smtp|log|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")
    smtp: SmtpConfig | None = None
    #: ``delivery: log`` also writes the tokens (development only; refused in production).
    log_tokens: bool = False
    #: Links in the messages; ``{token}`` is replaced by the token (the UI owns the page). Without
    #: one, the message gives the token itself.
    reset_url: str | None = Field(default=None, max_length=2000)
    verification_url: str | None = Field(default=None, max_length=2000)
    invitation_url: str | None = Field(default=None, max_length=2000)
    #: How long each kind of token stays valid.
    reset_token_ttl: timedelta = Field(default=timedelta(minutes=30), gt=timedelta(0))
    verification_token_ttl: timedelta = Field(default=timedelta(days=2), gt=timedelta(0))
    invitation_ttl: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))
    second_factor: SecondFactorConfig = Field(
        default_factory=SecondFactorConfig,
        description="TOTP second factor: `required_groups` (roles that must have one; default none), "
        "`issuer` (`authcore`), `digits` (6, 6-8), `period` (30 s), `valid_window` (1 step of drift each "
        'side), `recovery_codes` (10). See auth-local\'s README, "Second factor".',
    )

    @field_validator("reset_url", "verification_url", "invitation_url")
    @classmethod
    def _has_token(cls, value: str | None) -> str | None:
        if value is not None and "{token}" not in value:
            raise ValueError("a link template must contain {token}")
        return value

    @model_validator(mode="after")
    def _smtp_settings(self) -> LocalConfig:
        if self.delivery == "smtp" and self.smtp is None:
            raise ValueError("delivery: smtp needs the smtp: settings (host, from_address, ...)")
        return self

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: SecretStr | str) -> SecretStr | str:
        # Only the scheme is named in the message: the rest of a URL may hold a password.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        scheme = text.split("://", 1)[0] if "://" in text else ""
        if scheme not in ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg"):
            shown = repr(scheme) if scheme.replace("+", "").isalnum() else "this URL"
            raise ValueError(
                f"database_url: {shown} is not supported; use sqlite:///path.db or postgresql+psycopg://..."
            )
        try:
            has_password = make_url(text).password is not None
        except (ArgumentError, ValueError):
            has_password = True  # unparsable: keep it secret; the engine refuses it later
        return SecretStr(text) if has_password else text

    @property
    def url(self) -> str:
        """``database_url`` as text (it may hold a password: never log it)."""
        value = self.database_url
        return value.get_secret_value() if isinstance(value, SecretStr) else value

    def production_issues(self) -> list[str]:
        """The base checks, an in-memory database (users gone at restart) and a policy below 8 characters."""
        issues = super().production_issues()
        if self.url == MEMORY_DATABASE_URL:
            issues.append("database_url keeps the users in memory: they are lost when the process ends")
        if self.password_min_length < 8:
            issues.append("password_min_length is below 8 characters")
        if self.log_tokens:
            issues.append("log_tokens writes password-reset and verification tokens to the log")
        if self.smtp is not None and self.smtp.security == "none" and self.smtp.password is not None:
            issues.append("smtp sends its password without TLS (security: none)")
        return issues
