"""``LdapConfig``: every setting of the ``ldap`` provider, with py-ispyb's key names as aliases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from authcore import ProviderConfig

from .filters import compile_filter

__all__ = ["LdapConfig", "AttributeMap", "DEFAULT_ATTRIBUTES", "DEFAULT_USER_FILTERS", "DEFAULT_GROUP_FILTERS"]

Directory = Literal["openldap", "active_directory"]

#: Attribute names per directory flavour: login, given_name, family_name, email, display_name, member_of.
DEFAULT_ATTRIBUTES: dict[str, dict[str, str]] = {
    "openldap": {
        "login": "uid",
        "given_name": "givenName",
        "family_name": "sn",
        "email": "mail",
        "display_name": "displayName",
        "member_of": "memberOf",
    },
    "active_directory": {
        "login": "sAMAccountName",
        "given_name": "givenName",
        "family_name": "sn",
        "email": "mail",
        "display_name": "displayName",
        "member_of": "memberOf",
    },
}
#: Default user filters; ``{login}`` is replaced by the RFC 4515-escaped login.
DEFAULT_USER_FILTERS: dict[str, str] = {
    "openldap": "({login_attribute}={login})",
    "active_directory": (
        "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={login})(userPrincipalName={login})))"
    ),
}
#: Default group filters; ``{dn}`` and ``{login}`` are replaced by RFC 4515-escaped values.
DEFAULT_GROUP_FILTERS: dict[str, str] = {
    "openldap": "(|(member={dn})(uniqueMember={dn})(memberUid={login}))",
    "active_directory": "(member={dn})",
}
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+")


def _scheme(uri: str) -> str:
    return urlsplit(uri).scheme.lower()


class AttributeMap(BaseModel):
    """Which directory attribute fills which identity field; unset fields take the directory flavour's default."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    login: str | None = None
    """The login name (``uid``; Active Directory ``sAMAccountName``).
    Its value, as stored, becomes the identity's login."""
    given_name: str | None = None
    """Given name (``givenName``)."""
    family_name: str | None = None
    """Family name (``sn``)."""
    email: str | None = None
    """E-mail address (``mail``)."""
    display_name: str | None = None
    """Display name (``displayName``; ``cn`` is used when it is empty)."""
    member_of: str | None = None
    """The user attribute listing group DNs (``memberOf``); read by name, as it is operational."""

    @field_validator("*")
    @classmethod
    def _attribute_name(cls, value: str | None) -> str | None:
        if value is not None and not _ATTRIBUTE_NAME.fullmatch(value):
            raise ValueError("an LDAP attribute name (letters, digits, hyphens) or an OID")
        return value


class LdapConfig(ProviderConfig):
    """Settings of the ``ldap`` provider (OpenLDAP, Active Directory, any LDAPv3 directory).

    How a login is checked:

    * ``user_dn_template`` set: **direct bind** as that DN (``uid={login},ou=people,dc=example,dc=org``)
      or bind name (``{login}@example.org`` for Active Directory); the login is escaped per RFC 4514
      when the template is a DN.
    * else ``bind_dn`` (or ``anonymous_search: true``): **search then bind**: the service account
      finds the user's entry with ``user_filter`` (login escaped per RFC 4515), then the user binds
      with the DN exactly as the directory returned it.
    * else (a py-ispyb ``auth.yml`` with ``LDAP_URI``/``LDAP_BASE_INTERNAL`` only): direct bind as
      ``<login attribute>={login},<base_dn>``, as py-ispyb's LdapAuthentication does.
    """

    #: Fields whose ``False`` switches TLS verification off (refused with ``production: true``).
    tls_verify_fields: ClassVar[tuple[str, ...]] = ("tls_verify",)

    uri: tuple[str, ...] = Field(validation_alias=AliasChoices("uri", "LDAP_URI", "urls", "server_uri"))
    """Server URIs (``ldap://``, ``ldaps://``, or ``ldapi://`` with the percent-encoded socket path),
    tried in order; a list, or one string with several URIs separated by spaces or commas.
    py-ispyb: ``LDAP_URI``."""
    base_dn: str = Field(validation_alias=AliasChoices("base_dn", "LDAP_BASE_INTERNAL", "user_base_dn"))
    """Where users are searched (subtree). py-ispyb: ``LDAP_BASE_INTERNAL``."""
    group_base_dn: str | None = Field(
        default=None, validation_alias=AliasChoices("group_base_dn", "LDAP_BASE_GROUPS", "groups_base_dn")
    )
    """Where groups are searched; no group search without it (``memberOf`` is still read).
    py-ispyb: ``LDAP_BASE_GROUPS``."""
    directory: Directory = "openldap"
    """Directory flavour, for default attributes and filters: ``openldap`` (inetOrgPerson, uid) or
    ``active_directory`` (sAMAccountName/userPrincipalName)."""

    bind_dn: str | None = None
    """Service account that searches users and groups (read access, no need to read passwords)."""
    bind_password: SecretStr | None = None
    """Password of ``bind_dn``. Never shown in ``public_config()``, reprs or logs."""
    anonymous_search: bool = False
    """Search users anonymously (no ``bind_dn``) where the directory allows it."""
    user_dn_template: str | None = None
    """Direct bind: ``uid={login},ou=people,dc=example,dc=org`` (DN, login RFC 4514-escaped) or
    ``{login}@example.org`` / ``EXAMPLE\\{login}`` (Active Directory bind names)."""
    user_filter: str | None = None
    """Filter that finds a user; ``{login}`` is the RFC 4515-escaped login. Default
    ``(<login attribute>={login})``; Active Directory: person objects by sAMAccountName or userPrincipalName."""
    attributes: AttributeMap = Field(default_factory=AttributeMap)
    """Directory attribute per identity field (defaults per ``directory``)."""

    group_filter: str | None = None
    """Filter for a user's groups under ``group_base_dn``; ``{dn}`` (user DN as returned) and ``{login}``
    are RFC 4515-escaped. Default ``(|(member={dn})(uniqueMember={dn})(memberUid={login}))``
    (groupOfNames, groupOfUniqueNames, posixGroup); Active Directory ``(member={dn})``."""
    group_name_attribute: str = "cn"
    """The group attribute that names a group (the name the permission mapping uses)."""
    read_member_of: bool = True
    """Take groups also from the user's ``memberOf`` values (the name is the first RDN's value)."""
    member_of_only: bool = False
    """Take groups from ``memberOf`` alone and send no group search: one request fewer per login.
    Right only when ``memberOf`` lists every group that counts (Active Directory; OpenLDAP's memberof
    overlay with ``groupOfNames`` groups only): ``posixGroup`` (``memberUid``) and, unless configured,
    ``groupOfUniqueNames`` memberships are not in it. Values outside ``group_base_dn`` (if set) are ignored."""
    nested_groups: bool = False
    """Follow groups that are members of groups (``member``/``uniqueMember`` = group DN)."""
    nested_groups_max_depth: int = Field(default=3, ge=1, le=20)
    """How many levels of nesting are followed; cycles are detected whatever the depth."""

    start_tls: bool = False
    """Upgrade ``ldap://`` connections with StartTLS before anything else is sent."""
    allow_plaintext: bool = False
    """I accept that passwords cross the network in clear text: lets ``production: true`` use ``ldap://``
    URIs without ``start_tls``. Without it they are refused in production (``ldaps://``, StartTLS and
    ``ldapi://``, a local socket, are always accepted)."""
    tls_verify: bool = True
    """Verify the server certificate and host name (``ldaps://`` and StartTLS). Refused ``false`` in production."""
    ca_file: Path | None = None
    """PEM file of the CA(s) that sign the server certificate; default: the system's CAs."""

    connect_timeout: float = Field(default=5.0, gt=0, le=300)
    """Seconds to wait for a TCP connection to a server."""
    timeout: float = Field(default=10.0, gt=0, le=600)
    """Seconds to wait for any answer of a server (bind, search, StartTLS)."""
    failure_backoff: float = Field(default=10.0, ge=0, le=3600)
    """Seconds a server that just failed is skipped while another one is available."""
    pool_size: int = Field(default=8, ge=1, le=256)
    """Idle connections kept per pool (service searches, user binds) for reuse."""

    writer_dn: str | None = None
    """Account with write access for user management; without it, writes raise NotSupported."""
    writer_password: SecretStr | None = None
    """Password of ``writer_dn``."""
    user_object_classes: tuple[str, ...] = ("inetOrgPerson",)
    """Object classes of users created through user management."""
    user_rdn_attribute: str | None = None
    """RDN attribute of created users (default: the login attribute), under ``base_dn``."""
    lock_attribute: str = "pwdAccountLockedTime"
    """Attribute that disables a user (default: the ppolicy overlay's lock, which slapd enforces at bind
    when a password policy with ``pwdLockout: TRUE`` applies). Users carrying ``lock_value`` are refused
    by the provider as well."""
    lock_value: str = "000001010000Z"
    """Value of ``lock_attribute`` that disables (``000001010000Z``: ppolicy's permanent administrative lock)."""

    @field_validator("uri", mode="before")
    @classmethod
    def _split_uris(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in re.split(r"[\s,]+", value) if part)
        return value

    @field_validator("uri")
    @classmethod
    def _check_uris(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one server URI")
        for uri in value:
            parts = urlsplit(uri)
            if parts.scheme.lower() == "ldapi":
                if not parts.netloc.lower().startswith("%2f") or parts.path not in ("", "/"):
                    raise ValueError(
                        "ldapi:// URIs name the socket's absolute path, percent-encoded (ldapi://%2Frun%2Fldapi)"
                    )
                continue
            if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
                raise ValueError("server URIs look like ldap://host[:port], ldaps://host[:port] or ldapi://%2Fpath")
            if parts.path not in ("", "/"):
                raise ValueError("server URIs carry no DN or query (ldap://host:port)")
            _ = parts.port  # raises for a bad port
        return value

    @field_validator("group_name_attribute", "lock_attribute", "user_rdn_attribute")
    @classmethod
    def _attribute(cls, value: str | None) -> str | None:
        if value is not None and not _ATTRIBUTE_NAME.fullmatch(value):
            raise ValueError("an LDAP attribute name (letters, digits, hyphens) or an OID")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LdapConfig:
        if (self.bind_dn is None) != (self.bind_password is None):
            raise ValueError("bind_dn and bind_password go together")
        if (self.writer_dn is None) != (self.writer_password is None):
            raise ValueError("writer_dn and writer_password go together")
        if self.bind_password is not None and not self.bind_password.get_secret_value():
            raise ValueError("bind_password is empty (an empty password is an unauthenticated bind)")
        if self.writer_password is not None and not self.writer_password.get_secret_value():
            raise ValueError("writer_password is empty")
        if self.user_dn_template is not None and self.user_dn_template.count("{login}") != 1:
            raise ValueError("user_dn_template holds {login} exactly once")
        if self.user_filter is not None and "{login}" not in self.user_filter:
            raise ValueError("user_filter holds {login}")
        for name in ("user_filter", "group_filter"):
            text = getattr(self, name)
            if text is not None and not (text.startswith("(") and text.endswith(")")):
                raise ValueError(f"{name} is an LDAP filter in parentheses")
            if text is not None:
                try:  # placeholders filled with a sample value: a broken filter fails here, not at login
                    compile_filter(
                        text.replace("{login_attribute}", "uid").replace("{login}", "x").replace("{dn}", "x")
                    )
                except ValueError as exc:
                    raise ValueError(f"{name} is not a valid LDAP filter: {exc}") from None
        if self.member_of_only and not self.read_member_of:
            raise ValueError("member_of_only needs read_member_of")
        if (
            self.directory == "active_directory"
            and self.user_dn_template is None
            and self.bind_dn is None
            and not self.anonymous_search
        ):
            raise ValueError("active_directory needs bind_dn (search then bind) or user_dn_template ({login}@domain)")
        if self.start_tls and not any(_scheme(u) == "ldap" for u in self.uri):
            raise ValueError("start_tls is for ldap:// URIs; ldaps:// is TLS already, ldapi:// a local socket")
        return self

    def production_issues(self) -> list[str]:
        """The base checks, and ``ldap://`` without StartTLS unless ``allow_plaintext`` accepts the risk."""
        issues = super().production_issues()
        plain = [u for u in self.uri if _scheme(u) == "ldap"]
        if plain and not self.start_tls and not self.allow_plaintext:
            issues.append(
                f"uri {', '.join(plain)} sends passwords in clear text (ldap:// without start_tls): use ldaps://, "
                "start_tls: true, or allow_plaintext: true to accept that passwords cross the network in clear text"
            )
        return issues

    # ------------------------------------------------------------------ derived

    def attribute(self, field: str) -> str:
        """The directory attribute for identity *field* (configured, else the flavour's default)."""
        value = getattr(self.attributes, field)
        return value if value is not None else DEFAULT_ATTRIBUTES[self.directory][field]

    @property
    def mode(self) -> Literal["direct", "search"]:
        """``direct`` (bind with a DN/bind-name template) or ``search`` (search, then bind)."""
        if self.user_dn_template is None and (self.bind_dn is not None or self.anonymous_search):
            return "search"
        return "direct"

    @property
    def dn_template(self) -> str:
        """The direct-bind template in use (py-ispyb's ``uid={login},<base_dn>`` by default)."""
        if self.user_dn_template is not None:
            return self.user_dn_template
        return f"{self.attribute('login')}={{login}},{self.base_dn}"

    @property
    def effective_user_filter(self) -> str:
        """The user filter with ``{login_attribute}`` filled in (``{login}`` left for the login)."""
        template = self.user_filter or DEFAULT_USER_FILTERS[self.directory]
        return template.replace("{login_attribute}", self.attribute("login"))

    @property
    def effective_group_filter(self) -> str:
        """The group filter in use."""
        return self.group_filter or DEFAULT_GROUP_FILTERS[self.directory]
