"""The ``local`` provider's settings (its ``config:`` mapping)."""

from __future__ import annotations

import os
import ssl
from datetime import timedelta
from pathlib import Path
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
#: A CA bundle larger than this is refused (the system's whole bundle is about 0.2 MB).
_MAX_CA_FILE = 10_000_000


class SmtpConfig(BaseModel):
    """How ``delivery: smtp`` reaches the mail server (``smtp:`` in the provider's config).

    With ``starttls`` and ``ssl`` the server's certificate is always verified, host name
    included, against the system's CAs or the PEM bundle ``ca_file``: there is no switch to
    turn that off (a site with its own CA names it in ``ca_file``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = Field(
        min_length=1, max_length=255, description="The mail server's name or address (what its certificate names)."
    )
    port: int = Field(default=587, ge=1, le=65535, description="Its port: 587 for `starttls`, 465 for `ssl`.")
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="`starttls` (port 587), `ssl` (implicit TLS, port 465) or `none` (a local relay: no TLS).",
    )
    username: str | None = Field(default=None, description="Account to log in with (AUTH), if the server wants one.")
    password: SecretStr | None = Field(default=None, repr=False, description="That account's password.")
    from_address: str = Field(min_length=3, max_length=320, description="The messages' `From` address.")
    timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds to wait for the server at each step.")
    ca_file: Path | None = Field(
        default=None,
        description="PEM bundle of the CA(s) that sign the server's certificate (a site's own CA); only these "
        "are trusted then. Default: the system's CAs. The host name is checked either way. Read when the "
        "configuration is loaded (a missing, unreadable or non-PEM file is a configuration error) and again "
        "for each message. Only with `security: starttls` or `ssl`.",
    )

    @field_validator("ca_file")
    @classmethod
    def _readable_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            _check_ca_file(value)
        return value

    @model_validator(mode="after")
    def _ca_file_needs_tls(self) -> SmtpConfig:
        # A CA with no TLS to check would read as protection that is not there.
        if self.ca_file is not None and self.security == "none":
            raise ValueError("ca_file is used only with security: starttls or ssl (security is none)")
        return self


def _check_ca_file(path: Path) -> None:
    """``ValueError`` (the message names the file, never its content) unless *path* is a PEM CA bundle."""
    shown = repr(str(path))
    if "\x00" in str(path):
        raise ValueError("is not a valid path (it holds a NUL character)")
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ValueError(f"{shown} is not a file")
        if size > _MAX_CA_FILE:
            raise ValueError(f"{shown} is too large to be a PEM CA bundle (over {_MAX_CA_FILE // 1_000_000} MB)")
        # The same loader the delivery uses, so what passes here also loads when a message is sent.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=str(path))
    except ssl.SSLError:  # OpenSSL read no certificate: empty, not PEM, a key, a damaged block
        raise ValueError(f"{shown} is not a PEM CA bundle (no certificate could be read from it)") from None
    except OSError as exc:  # missing, unreadable, a loop of links, a directory
        raise ValueError(f"cannot read {shown} ({exc.strerror or type(exc).__name__})") from None
    if context.cert_store_stats()["x509"] == 0:  # CRLs only
        raise ValueError(f"{shown} is not a PEM CA bundle (it holds no certificate)")


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
    secret_keys: list[SecretStr] = Field(
        default=[],
        max_length=8,
        description="Keys that seal TOTP secrets at rest (AES-256-GCM) and hash recovery codes "
        "(HMAC-SHA256), newest first: new enrolments use the first, any opens what it sealed, and a secret "
        "is sealed anew with the first when its user's code is next accepted. Each 32-1024 printable "
        "characters (`${TOTP_KEY}` from the environment). Empty: secrets are stored as they are, codes "
        "as plain SHA-256.",
    )

    @field_validator("secret_keys")
    @classmethod
    def _keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        texts = [key.get_secret_value() for key in value]
        for text in texts:
            if not 32 <= len(text) <= 1024 or not text.isprintable():
                raise ValueError("a secret key is 32-1024 printable characters")
        if len(set(texts)) != len(texts):
            raise ValueError("secret_keys names one key twice")
        return value

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
    #: argon2id lanes (threads) per hash.
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
    #: How ``delivery: smtp`` reaches the mail server (the ``smtp`` table below).
    smtp: SmtpConfig | None = None
    #: ``delivery: log`` also writes the tokens (development only; refused in production).
    log_tokens: bool = False
    #: Links in the messages; ``{token}`` is replaced by the token (the UI owns the page). Without
    #: one, the message gives the token itself.
    reset_url: str | None = Field(default=None, max_length=2000)
    #: The link of an e-mail verification message (``{token}`` replaced, as in ``reset_url``).
    verification_url: str | None = Field(default=None, max_length=2000)
    #: The link of an invitation message (``{token}`` replaced, as in ``reset_url``).
    invitation_url: str | None = Field(default=None, max_length=2000)
    #: How long each kind of token stays valid.
    reset_token_ttl: timedelta = Field(default=timedelta(minutes=30), gt=timedelta(0))
    #: How long an e-mail verification token stays valid.
    verification_token_ttl: timedelta = Field(default=timedelta(days=2), gt=timedelta(0))
    #: How long an invitation stays valid.
    invitation_ttl: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))
    second_factor: SecondFactorConfig = Field(
        default_factory=SecondFactorConfig,
        description='TOTP second factor (the `second_factor` table below); see auth-local\'s README, "Second factor".',
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
        """The base checks, an in-memory database (users gone at restart), a relative SQLite path (the
        default among them: another working directory, another, empty, database) and a policy below
        8 characters."""
        issues = super().production_issues()
        if self.url == MEMORY_DATABASE_URL:
            issues.append("database_url keeps the users in memory: they are lost when the process ends")
        elif _relative_sqlite_path(self.url):
            issues.append(
                "database_url is a relative SQLite path: the working directory decides which file holds the users "
                "(give an absolute one: sqlite:////var/lib/authcore/users.db)"
            )
        if self.password_min_length < 8:
            issues.append("password_min_length is below 8 characters")
        if self.log_tokens:
            issues.append("log_tokens writes password-reset and verification tokens to the log")
        if self.smtp is not None and self.smtp.security == "none" and self.smtp.password is not None:
            issues.append("smtp sends its password without TLS (security: none)")
        return issues


def _relative_sqlite_path(url: str) -> bool:
    """Whether *url* names an SQLite file by a path relative to the working directory."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return False  # the engine refuses it at start, with its own message
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return False
    return not os.path.isabs(database)
