"""``LdapProvider``: login against LDAP/Active Directory, groups, and user management."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Sequence
from typing import Any, Literal

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE, Connection  # type: ignore[import-untyped,unused-ignore]
from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped,unused-ignore]
from ldap3.utils.dn import escape_rdn  # type: ignore[import-untyped,unused-ignore]

from authcore import (
    Credentials,
    Health,
    Identity,
    InvalidCredentials,
    NewUser,
    NotSupported,
    PasswordCredentials,
    Provider,
    ProviderUnavailable,
    UserExists,
    UserManagement,
    UserNotFound,
    UserUpdate,
)
from authcore.errors import UserChangeRefused
from authcore.providers import MAX_LOGIN_LENGTH, MAX_PASSWORD_LENGTH

from . import wire
from .config import LdapConfig
from .connections import BindFailed, ConnectionPool, ServerFailure, ServerSet, check_result, failure_reason
from .login import LoginFlow, first_value, login_is_canonical, values

__all__ = ["LdapProvider"]

log = logging.getLogger("auth_ldap")

_ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
#: Attributes that ``update_user(attributes=…)`` must not touch.
_PROTECTED = frozenset({"objectclass", "userpassword", "memberof", "uid", "samaccountname", "unicodepwd"})
_READ_OPERATIONS = ("list_users", "get_user")


def _entries(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
    """``(dn, attributes)`` of the search entries in the last response (referrals dropped); keys lower-case."""
    found = []
    for item in conn.response or ():
        if item.get("type") != "searchResEntry":
            continue
        attrs = {str(k).lower(): v for k, v in (item.get("attributes") or {}).items()}
        found.append((str(item["dn"]), attrs))
    return found


class LdapProvider(Provider[LdapConfig], UserManagement):
    """Logins against an LDAP directory (OpenLDAP, Active Directory) with ldap3.

    One service-account pool serves searches and one pool serves user binds; both reuse
    connections (``get_info=NONE``: no schema read per login) and fail over between the
    configured servers. See :class:`~auth_ldap.LdapConfig` for the settings.
    """

    type = "ldap"
    credential_types = (PasswordCredentials,)

    def __init__(self, name: str, config: LdapConfig) -> None:
        super().__init__(name, config)
        self.servers = ServerSet(config)
        search_user: str | None = None
        search_password = None
        if config.bind_dn is not None and config.bind_password is not None:
            search_user = config.bind_dn
            secret = config.bind_password
            search_password = secret.get_secret_value
        self._search_pool: ConnectionPool | None = None
        if search_user is not None or config.anonymous_search:
            self._search_pool = ConnectionPool(
                self.servers, user=search_user, password=search_password, size=config.pool_size, name="search"
            )
        self._bind_pool = ConnectionPool(self.servers, size=config.pool_size, name="bind")
        self._writer_pool: ConnectionPool | None = None
        if config.writer_dn is not None and config.writer_password is not None:
            self._writer_pool = ConnectionPool(
                self.servers,
                user=config.writer_dn,
                password=config.writer_password.get_secret_value,
                size=2,
                name="writer",
            )
        self._login_attr = config.attribute("login")
        self._user_attrs = sorted(
            {
                self._login_attr,
                config.attribute("given_name"),
                config.attribute("family_name"),
                config.attribute("email"),
                config.attribute("display_name"),
                "cn",
                config.lock_attribute,
                *((config.attribute("member_of"),) if config.read_member_of else ()),
            }
        )
        self._flow = LoginFlow(
            name,
            config,
            search_pool=self._search_pool,
            bind_pool=self._bind_pool,
            user_attributes=self._user_attrs,
            decoy_dn=f"cn=authcore-decoy-{secrets.token_hex(8)},{config.base_dn}",
        )

    # ------------------------------------------------------------------ login

    def authenticate(self, credentials: Credentials) -> Identity:
        """Check login and password against the directory; return the identity with its groups.

        Empty passwords, NUL bytes and over-long input are refused here as well, before any
        network traffic: an empty password would be an unauthenticated bind that some
        servers accept (RFC 4513 section 5.1.2).
        """
        if not isinstance(credentials, PasswordCredentials):
            raise InvalidCredentials()
        login = credentials.login
        password = credentials.password.get_secret_value() if credentials.password is not None else ""
        if (
            not isinstance(login, str)
            or not isinstance(password, str)
            or not login
            or not password
            or len(login) > MAX_LOGIN_LENGTH
            or len(password) > MAX_PASSWORD_LENGTH
            or "\x00" in password
            or not login.isprintable()
        ):
            raise InvalidCredentials()
        if not login_is_canonical(login):  # " alice" would bind as alice: one account, one spelling
            raise InvalidCredentials()
        secret = password.encode("utf-8")  # raw bytes: no SASLprep rewriting of what the user typed
        if self.config.mode == "search":
            return self._flow.search_then_bind(login, secret)
        return self._flow.direct_bind(login, secret)

    def _find_user(self, conn: Connection, login: str) -> list[tuple[str, dict[str, Any]]]:
        query = self.config.effective_user_filter.replace("{login}", escape_filter_chars(login))
        conn.search(self.config.base_dn, query, SUBTREE, attributes=self._user_attrs, size_limit=2)
        check_result(conn)
        code = (conn.result or {}).get("result")
        if code not in (0, 4, 32):  # success, sizeLimitExceeded (2 found), noSuchObject
            raise ProviderUnavailable("the directory refused the user search")
        return _entries(conn)

    def _is_locked(self, entry: dict[str, Any]) -> bool:
        return self.config.lock_value in values(entry, self.config.lock_attribute.lower())

    # ------------------------------------------------------------------ public config, health, close

    def public_config(self) -> dict[str, Any]:
        """What a login page may know: servers, base DN, mode. Never a bind password."""
        data = super().public_config()
        data.update(
            {
                "servers": list(self.config.uri),
                "base_dn": self.config.base_dn,
                "directory": self.config.directory,
                "mode": self.config.mode,
                "user_management": self._writer_pool is not None,
            }
        )
        return data

    def health(self) -> Health:
        """Check each server without a user: the service account's bind when one is configured, else an
        anonymous read of the root DSE. Healthy when one server passes; the detail names every server
        that failed and why (``ldap://host:389: invalid credentials for the service account``)."""
        states: dict[str, str] = {}
        for index, uri in enumerate(self.servers.uris):
            states[uri] = self._server_health(index)
        failed = [f"{uri}: {state}" for uri, state in states.items() if state != "up"]
        ok = len(failed) < len(states)
        detail = "; ".join(failed) if not ok else ("" if not failed else "degraded: " + "; ".join(failed))
        return Health(ok=ok, detail=detail, extra={"servers": states})

    def _server_health(self, index: int) -> str:
        try:
            conn = self.servers.connect(index, self.config.bind_dn, self._bind_password())
        except (ServerFailure, BindFailed) as failure:
            return failure_reason(failure)
        except Exception as exc:  # health reports, it never raises
            return f"error: {type(exc).__name__}"
        try:
            if self.config.bind_dn is None:  # nobody to bind as: the server must at least answer a read
                reply = wire.exchange(conn.socket, wire.search("", wire.BASE, "(objectClass=*)", ["1.1"]))[0]
                if reply.code in (51, 52, 80):
                    return f"the server answered result {reply.code} (busy or unavailable)"
        except (ServerFailure, OSError) as failure:
            return failure_reason(failure)
        finally:
            with contextlib.suppress(Exception):
                conn.unbind()
        return "up"

    def _bind_password(self) -> str | None:
        secret = self.config.bind_password
        return secret.get_secret_value() if secret is not None else None

    def close(self) -> None:
        """Close every pooled connection."""
        for pool in (self._search_pool, self._bind_pool, self._writer_pool):
            if pool is not None:
                pool.close()

    # ------------------------------------------------------------------ user management

    def supported_user_operations(self) -> tuple[str, ...]:
        """Reads always; writes only with a writer account."""
        if self._writer_pool is None:
            return _READ_OPERATIONS
        return tuple(op for op in super().supported_user_operations() if not op.startswith("self_"))

    def _reader(self) -> ConnectionPool:
        pool = self._search_pool or self._writer_pool
        if pool is None:
            raise NotSupported(self.name, "user management without bind_dn or writer_dn")
        return pool

    def _writer(self, operation: str) -> ConnectionPool:
        if self._writer_pool is None:
            raise NotSupported(self.name, operation)
        return self._writer_pool

    def _lookup(self, login: str) -> tuple[str, dict[str, Any]]:
        found = self._reader().run(lambda conn: self._find_user(conn, login))
        if len(found) != 1:
            raise UserNotFound(f"no user {login!r} in provider {self.name!r}")
        return found[0]

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> list[Identity]:
        """Users under ``base_dn`` whose login or name contains *search* (sorted by login)."""
        config = self.config
        base = config.effective_user_filter.replace("{login}", "*")
        if search:
            term = escape_filter_chars(search)
            base = f"(&{base}(|({self._login_attr}=*{term}*)(cn=*{term}*)))"
        limit = max(0, min(limit, 10_000))

        def run(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
            conn.search(
                config.base_dn, base, SUBTREE, attributes=self._user_attrs, size_limit=0 if limit == 0 else 10_000
            )
            check_result(conn)
            return _entries(conn)

        found = self._reader().run(run)
        users = [u for dn, entry in found if (u := self._flow.identity(dn, entry, with_groups=False)) is not None]
        users.sort(key=lambda i: i.login)
        return users[offset : offset + limit]

    def get_user(self, login: str) -> Identity:
        """One user with groups; :class:`~authcore.UserNotFound` if absent."""
        dn, entry = self._lookup(login)
        identity = self._flow.identity(dn, entry, run=self._reader().run)
        if identity is None:
            raise UserNotFound(f"no user {login!r} in provider {self.name!r}")
        return identity.model_copy(
            update={"attributes": {**identity.attributes, "enabled": not self._is_locked(entry)}}
        )

    def _modify(self, operation: str, dn: str, changes: dict[str, Any]) -> None:
        def run(conn: Connection) -> None:
            conn.modify(dn, changes)
            check_result(conn)
            result = conn.result or {}
            code = result.get("result")
            if code == 32:
                raise UserNotFound(f"no entry for {operation} in provider {self.name!r}")
            if code == 20:  # attributeOrValueExists: already as wanted
                return
            if code == 16 and operation in ("enable_user", "remove_roles"):  # noSuchAttribute: already as wanted
                return
            if code != 0:
                raise UserChangeRefused(
                    f"provider {self.name!r}: {operation} refused by the directory: {result.get('description')}"
                )

        self._writer(operation).run(run)

    def create_user(self, user: NewUser) -> Identity:
        """Add an entry under ``base_dn`` (object classes ``user_object_classes``), set the password, roles, lock."""
        config = self.config
        pool = self._writer("create_user")
        rdn_attr = config.user_rdn_attribute or self._login_attr
        dn = f"{rdn_attr}={escape_rdn(user.login)},{config.base_dn}"
        cn = user.display_name or " ".join(p for p in (user.given_name, user.family_name) if p) or user.login
        attrs: dict[str, Any] = {
            "objectClass": list(config.user_object_classes),
            self._login_attr: user.login,
            "cn": cn,
            config.attribute("family_name"): user.family_name or user.login,
        }
        for field in ("given_name", "email", "display_name"):
            value = getattr(user, field)
            if value:
                attrs[config.attribute(field)] = value
        for key, value in user.attributes.items():
            if not _ATTRIBUTE_NAME.fullmatch(key) or key.lower() in _PROTECTED:
                raise UserChangeRefused(f"attribute {key!r} cannot be set through user management")
            attrs[key] = value

        def add(conn: Connection) -> None:
            conn.add(dn, attributes=attrs)
            check_result(conn)
            result = conn.result or {}
            if result.get("result") == 68:
                raise UserExists(f"user {user.login!r} exists in provider {self.name!r}")
            if result.get("result") != 0:
                raise UserChangeRefused(f"provider {self.name!r}: create_user refused: {result.get('description')}")

        if self._reader().run(lambda conn: self._find_user(conn, user.login)):
            raise UserExists(f"user {user.login!r} exists in provider {self.name!r}")
        pool.run(add)
        if user.password is not None:
            self.set_password(user.login, user.password.get_secret_value())
        if user.roles:
            self.add_roles(user.login, user.roles)
        if not user.enabled:  # after the password: ppolicy unlocks an account whose password changes
            self.disable_user(user.login)
        return self.get_user(user.login)

    def update_user(self, login: str, changes: UserUpdate) -> Identity:
        """Replace the given attributes (``None`` leaves one unchanged)."""
        self._writer("update_user")
        dn, _entry = self._lookup(login)
        mods: dict[str, Any] = {}
        for field in ("given_name", "family_name", "email", "display_name"):
            value = getattr(changes, field)
            if value is not None:
                mods[self.config.attribute(field)] = [(MODIFY_REPLACE, [value] if value else [])]
        for key, value in (changes.attributes or {}).items():
            if not _ATTRIBUTE_NAME.fullmatch(key) or key.lower() in _PROTECTED:
                raise UserChangeRefused(f"attribute {key!r} cannot be changed through user management")
            values = value if isinstance(value, list | tuple) else ([] if value is None else [value])
            mods[key] = [(MODIFY_REPLACE, list(values))]
        if mods:
            self._modify("update_user", dn, mods)
        return self.get_user(login)

    def disable_user(self, login: str) -> None:
        """Set ``lock_attribute`` to ``lock_value`` (ppolicy: slapd then refuses the user's binds)."""
        self._writer("disable_user")
        dn, _entry = self._lookup(login)
        config = self.config
        self._modify("disable_user", dn, {config.lock_attribute: [(MODIFY_REPLACE, [config.lock_value])]})

    def enable_user(self, login: str) -> None:
        """Remove ``lock_attribute``."""
        self._writer("enable_user")
        dn, _entry = self._lookup(login)
        self._modify("enable_user", dn, {self.config.lock_attribute: [(MODIFY_DELETE, [])]})

    def delete_user(self, login: str) -> None:
        """Delete the entry and its ``memberUid`` values (``member`` values go with the memberof/refint overlay)."""
        pool = self._writer("delete_user")
        dn, entry = self._lookup(login)
        name = first_value(entry, self._login_attr.lower()) or login
        for group_dn in self._group_dns_with(f"(memberUid={escape_filter_chars(name)})"):
            self._modify("delete_user", group_dn, {"memberUid": [(MODIFY_DELETE, [name])]})

        def delete(conn: Connection) -> None:
            conn.delete(dn)
            check_result(conn)
            result = conn.result or {}
            if result.get("result") == 32:
                raise UserNotFound(f"no user {login!r} in provider {self.name!r}")
            if result.get("result") != 0:
                raise UserChangeRefused(f"provider {self.name!r}: delete_user refused: {result.get('description')}")

        pool.run(delete)

    def set_password(self, login: str, password: str) -> None:
        """Replace the password with the Password Modify extended operation (RFC 3062: the server hashes it)."""
        pool = self._writer("set_password")
        if not password or "\x00" in password or len(password) > MAX_PASSWORD_LENGTH:
            raise UserChangeRefused("the password must be 1-1024 characters without NUL")
        dn, _entry = self._lookup(login)

        def change(conn: Connection) -> None:
            conn.extend.standard.modify_password(user=dn, new_password=password)
            check_result(conn)
            result = conn.result or {}
            if result.get("result") != 0:
                raise UserChangeRefused(f"provider {self.name!r}: set_password refused: {result.get('description')}")

        pool.run(change)

    def _group_dns_with(self, query: str) -> list[str]:
        base = self.config.group_base_dn
        if base is None:
            return []

        def run(conn: Connection) -> list[str]:
            conn.search(base, query, SUBTREE, attributes=["objectClass"])
            check_result(conn)
            return [dn for dn, _attrs in _entries(conn)]

        return self._reader().run(run)

    def _group(self, role: str) -> tuple[str, list[str]]:
        base = self.config.group_base_dn
        if base is None:
            raise NotSupported(self.name, "group membership without group_base_dn")
        name_attr = self.config.group_name_attribute

        def run(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
            conn.search(base, f"({name_attr}={escape_filter_chars(role)})", SUBTREE, attributes=["objectClass"])
            check_result(conn)
            return _entries(conn)

        found = self._reader().run(run)
        if len(found) != 1:
            raise UserNotFound(f"no group {role!r} in provider {self.name!r}")
        dn, attrs = found[0]
        return dn, [c.lower() for c in values(attrs, "objectclass")]

    def _membership(self, operation: str, login: str, roles: Sequence[str], action: Literal["add", "delete"]) -> None:
        self._writer(operation)
        dn, entry = self._lookup(login)
        name = first_value(entry, self._login_attr.lower()) or login
        for role in roles:
            group_dn, classes = self._group(role)
            if "posixgroup" in classes:
                attr, value = "memberUid", name
            elif "groupofuniquenames" in classes:
                attr, value = "uniqueMember", dn
            else:
                attr, value = "member", dn
            kind = MODIFY_ADD if action == "add" else MODIFY_DELETE
            self._modify(operation, group_dn, {attr: [(kind, [value])]})

    def add_roles(self, login: str, roles: Sequence[str]) -> None:
        """Add the user to the named groups (``member``, ``uniqueMember`` or ``memberUid`` by group class)."""
        self._membership("add_roles", login, roles, "add")

    def remove_roles(self, login: str, roles: Sequence[str]) -> None:
        """Remove the user from the named groups."""
        self._membership("remove_roles", login, roles, "delete")

    def __repr__(self) -> str:
        return f"<LdapProvider name={self.name!r} servers={list(self.config.uri)!r} mode={self.config.mode!r}>"
