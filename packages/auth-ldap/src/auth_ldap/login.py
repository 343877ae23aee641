"""The login path: the typed login's checks, the binds, the entry read and the group search.

A login waits for as few answers as the protocol allows. A bind must be answered before
anything else is sent on its connection (RFC 4511 section 4.2.1), so direct bind costs two
waits: the bind, then the entry read and the group search sent together. Search then bind
costs two as well: the user search, then the user's bind and the group search (on the
service account's connection) at the same time. See :mod:`auth_ldap.wire` for the requests.

The identity's login is always the directory's value of the login attribute, read from the
entry, never the text that was typed: the server matches ``ALICE`` or fullwidth ``ａｌｉｃｅ``
to ``alice`` (its matching rules fold case and compatibility forms), and the identity must
then be ``alice``, so that sessions, throttling and audit see one account under one name.
Logins with leading, trailing or doubled spaces are refused before any request: the server
ignores such spaces when it matches, so they would be endless spellings of one account.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from ldap3 import Connection  # type: ignore[import-untyped,unused-ignore]
from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped,unused-ignore]
from ldap3.utils.dn import escape_rdn  # type: ignore[import-untyped,unused-ignore]

from authcore import Identity, InvalidCredentials, ProviderUnavailable

from . import wire
from .config import LdapConfig
from .connections import ConnectionPool, ServerFailure
from .dn import dn_key, first_rdn_value

__all__ = ["LoginFlow", "login_is_canonical", "first_value", "values"]

log = logging.getLogger("auth_ldap")
T = TypeVar("T")
Runner = Callable[[Callable[[Connection], T]], T]

_PLACEHOLDER = re.compile(r"\{(dn|login)\}")
#: Characters refused in logins for non-DN bind templates (``{login}@example.org``, ``DOMAIN\\{login}``).
_BIND_NAME_SPECIALS = frozenset('\\,=+<>#;"@/\x00')
#: Result codes that mean "this server cannot serve now" (busy, unavailable, unwilling… is not one).
_SERVER_DOWN = frozenset({51, 52, 80})
#: Bind results that mean "not these credentials": invalidCredentials, insufficientAccess,
#: unwillingToPerform (a locked account), inappropriateAuthentication, noSuchObject, invalidDNSyntax,
#: constraintViolation (389-DS: a locked account, "exceed password retry limit").
_BIND_REFUSED = frozenset({49, 50, 53, 48, 32, 34, 19})
#: Search results that still carry an answer: success, sizeLimitExceeded, noSuchObject.
_SEARCH_OK = frozenset({0, 4, 32})


def login_is_canonical(login: str) -> bool:
    """False for logins the directory would read as another spelling of a shorter one.

    LDAP string matching (RFC 4518) drops leading and trailing spaces and folds runs of
    spaces into one, also after compatibility normalisation (NFKC); such logins are refused.
    Other space characters and the characters it maps to nothing are not printable and are
    refused earlier.
    """
    forms = (login, unicodedata.normalize("NFKC", login))
    return all(text == text.strip(" ") and "  " not in text for text in forms)


def first_value(entry: dict[str, Any], name: str) -> str | None:
    """The first value of attribute *name* (lower-case) in *entry*, or None."""
    found = entry.get(name)
    if isinstance(found, list):
        return str(found[0]) if found else None
    return str(found) if found not in (None, "") else None


def values(entry: dict[str, Any], name: str) -> list[str]:
    """Every value of attribute *name* (lower-case) in *entry*."""
    found = entry.get(name)
    if found is None:
        return []
    if isinstance(found, list):
        return [str(v) for v in found]
    return [str(found)]


def _search_checked(reply: wire.Reply, what: str) -> list[wire.Entry]:
    if reply.code in _SERVER_DOWN:
        raise ServerFailure(f"server answered result {reply.code}")
    if reply.code not in _SEARCH_OK:
        raise ProviderUnavailable(f"the directory refused the {what}")
    return reply.entries


def _bind_accepted(reply: wire.Reply) -> bool:
    if reply.code == 0:
        return True
    if reply.code in _BIND_REFUSED:
        return False
    if reply.code in _SERVER_DOWN:
        raise ServerFailure(f"bind answered result {reply.code}")
    # Any other answer came from a server that read the password: trying it on the next server
    # would count the attempt twice towards a lockout.
    raise ProviderUnavailable(f"the directory answered the bind with result {reply.code}")


def _after_the_bind(exc: BaseException) -> ProviderUnavailable:
    """What a failure after the user's bind becomes: no failover, which would send the password again."""
    return ProviderUnavailable(f"the directory failed after the bind ({type(exc).__name__})")


def _sock(conn: Connection) -> Any:
    return conn.socket


def _one(request: wire.Request, conn: Connection) -> wire.Reply:
    return wire.exchange(_sock(conn), request)[0]


class LoginFlow:
    """Checks logins for one provider instance on its connection pools."""

    def __init__(
        self,
        name: str,
        config: LdapConfig,
        *,
        search_pool: ConnectionPool | None,
        bind_pool: ConnectionPool,
        user_attributes: list[str],
        decoy_dn: str,
    ) -> None:
        self.name = name
        self.config = config
        self.search_pool = search_pool
        self.bind_pool = bind_pool
        self.user_attributes = user_attributes
        self.decoy_dn = decoy_dn
        self.login_attribute = config.attribute("login").lower()
        self.group_base_key = dn_key(config.group_base_dn) if config.group_base_dn is not None else None

    # ------------------------------------------------------------------ binds

    def bind(self, name: str, secret: bytes) -> bool:
        """Simple bind as *name* on a pooled bind connection; True when the directory accepts it."""
        if not name or not secret:  # never an anonymous or unauthenticated bind
            raise InvalidCredentials()
        request = wire.bind(name, secret)
        return self.bind_pool.run(lambda conn: _bind_accepted(wire.exchange(_sock(conn), request)[0]))

    def _group_request(self, dn: str, login: str) -> wire.Request | None:
        config = self.config
        if config.group_base_dn is None or config.member_of_only:
            return None
        # One pass over the template: a DN that itself contains "{login}" must not be rewritten
        # by a second replace() (that would match another entry's membership).
        filled = {"dn": escape_filter_chars(dn), "login": escape_filter_chars(login)}
        query = _PLACEHOLDER.sub(lambda m: filled[m.group(1)], config.effective_group_filter)
        return wire.search(config.group_base_dn, wire.SUBTREE, query, [config.group_name_attribute])

    def _user_request(self, login: str) -> wire.Request:
        query = self.config.effective_user_filter.replace("{login}", escape_filter_chars(login))
        return wire.search(self.config.base_dn, wire.SUBTREE, query, self.user_attributes, size_limit=2)

    def _is_locked(self, entry: dict[str, Any]) -> bool:
        return self.config.lock_value in values(entry, self.config.lock_attribute.lower())

    # ------------------------------------------------------------------ search then bind

    def search_then_bind(self, login: str, secret: bytes) -> Identity:
        """Find the entry as the service account, then bind as it while its groups are searched."""
        assert self.search_pool is not None
        search_pool = self.search_pool
        matches = [0]

        def find_and_bind(conn: Connection) -> tuple[bool, wire.Entry, wire.Reply | None] | None:
            found = _search_checked(wire.exchange(_sock(conn), self._user_request(login))[0], "user search")
            matches[0] = len(found)
            if len(found) != 1:
                return None
            dn, entry = found[0]
            directory_login = first_value(entry, self.login_attribute)
            group = self._group_request(dn, directory_login) if directory_login is not None else None
            if group is not None:
                wire.send(_sock(conn), group)  # answered while the user's bind is on its way
            accepted = self.bind(dn, secret)
            try:
                first = wire.receive(_sock(conn), group)[0] if group is not None else None
            except (ServerFailure, OSError) as exc:
                raise _after_the_bind(exc) from None
            return accepted, found[0], first

        outcome = search_pool.run(find_and_bind)
        if outcome is None:
            if matches[0] > 1:
                log.warning("provider %r: the user filter matches several entries; login refused", self.name)
            self.bind(self.decoy_dn, secret)  # same work as a real attempt: timing tells nothing
            raise InvalidCredentials()
        accepted, (dn, entry), first = outcome
        if not accepted or self._is_locked(entry):
            raise InvalidCredentials()
        identity = self.identity(dn, entry, first=first, run=search_pool.run)
        if identity is None:
            raise InvalidCredentials()
        return identity

    # ------------------------------------------------------------------ direct bind

    def direct_bind(self, login: str, secret: bytes) -> Identity:
        """Bind as the templated DN (or bind name), then read the entry and search groups together."""
        template = self.config.dn_template
        is_dn = "=" in template.replace("{login}", "")
        if is_dn:
            name = template.replace("{login}", escape_rdn(login))
        else:
            if any(c in _BIND_NAME_SPECIALS for c in login):
                self.bind(self.decoy_dn, secret)
                raise InvalidCredentials()
            name = template.replace("{login}", login)
        on_bind_conn = self.search_pool is None  # groups are then read as the user, on the same connection

        def bind_and_read(conn: Connection) -> Identity | None:
            sock = _sock(conn)
            if not secret:
                raise InvalidCredentials()
            if not _bind_accepted(wire.exchange(sock, wire.bind(name, secret))[0]):
                return None
            try:
                return self._read_bound(conn, login, name, is_dn=is_dn, on_bind_conn=on_bind_conn)
            except (ServerFailure, OSError) as exc:
                raise _after_the_bind(exc) from None

        identity = self.bind_pool.run(bind_and_read)
        if identity is None:
            raise InvalidCredentials()
        return identity

    def _read_bound(
        self, conn: Connection, login: str, name: str, *, is_dn: bool, on_bind_conn: bool
    ) -> Identity | None:
        """After the user's bind on *conn*: read the entry and its groups (the read and search sent together)."""
        sock = _sock(conn)
        if is_dn:  # read the bound entry: its DN as the server writes it
            read = wire.search(name, wire.BASE, "(objectClass=*)", self.user_attributes)
        else:
            read = self._user_request(login)
        group = self._group_request(name, login) if is_dn else None
        first: wire.Reply | None = None
        if group is not None and on_bind_conn:
            entry_reply, first = wire.exchange(sock, read, group)
        elif group is not None:
            assert self.search_pool is not None
            wire.send(sock, read)
            first = self.search_pool.run(lambda other: wire.exchange(_sock(other), group)[0])
            entry_reply = wire.receive(sock, read)[0]
        else:
            entry_reply = wire.exchange(sock, read)[0]
        found = _search_checked(entry_reply, "entry read")
        if len(found) != 1 or self._is_locked(found[0][1]):
            return None
        dn, entry = found[0]
        if first is not None and self._typed_differs(login, name, dn, entry):
            first = None  # searched with what was typed: search again with the directory's values
        run: Runner[Any] = (lambda op: op(conn)) if on_bind_conn else self.search_pool.run  # type: ignore[union-attr]
        return self.identity(dn, entry, first=first, run=run)

    def _typed_differs(self, login: str, name: str, dn: str, entry: dict[str, Any]) -> bool:
        """Whether a group search filled with the typed login and DN may answer differently.

        Typed and stored can differ (case, compatibility forms) while naming one entry. DN
        attributes (``member``) match DNs the way the server does, but ``memberUid`` is
        case-exact: a group search with the typed text is only kept when the texts agree.
        """
        template = self.config.effective_group_filter
        if "{login}" in template and first_value(entry, self.login_attribute) != login:
            return True
        return "{dn}" in template and dn_key(dn) != dn_key(name)

    # ------------------------------------------------------------------ identity and groups

    def identity(
        self,
        dn: str,
        entry: dict[str, Any],
        *,
        first: wire.Reply | None = None,
        run: Runner[Any] | None = None,
        with_groups: bool = True,
    ) -> Identity | None:
        """The identity of *entry*; None when the entry has no value for the login attribute.

        *first* is the answer to the group search when it was already sent; *run* runs a
        function on a connection allowed to search groups.
        """
        config = self.config
        login = first_value(entry, self.login_attribute)
        if login is None:
            return None
        display = first_value(entry, config.attribute("display_name").lower()) or first_value(entry, "cn")
        groups = self.groups(dn, login, entry, first, run) if with_groups and run is not None else ()
        return Identity(
            login=login,
            given_name=first_value(entry, config.attribute("given_name").lower()),
            family_name=first_value(entry, config.attribute("family_name").lower()),
            email=first_value(entry, config.attribute("email").lower()),
            display_name=display,
            groups=groups,
            attributes={"dn": dn},
        )

    def _under_group_base(self, key: str) -> bool:
        base = self.group_base_key
        return base is None or key == base or key.endswith("\x00" + base)

    def groups(
        self, dn: str, login: str, entry: dict[str, Any], first: wire.Reply | None, run: Runner[Any]
    ) -> tuple[str, ...]:
        """Group names from ``memberOf`` and the group search (and nested groups when asked)."""
        config = self.config
        names: dict[str, str] = {}  # dn key → group name
        dns: dict[str, str] = {}  # dn key → DN as returned
        if config.read_member_of:
            for group_dn in values(entry, config.attribute("member_of").lower()):
                key = dn_key(group_dn)
                if config.member_of_only and not self._under_group_base(key):
                    continue
                dns[key] = group_dn
                names[key] = first_rdn_value(group_dn)
        group_base = config.group_base_dn
        if group_base is None:
            return tuple(sorted(set(names.values())))
        name_attribute = config.group_name_attribute

        def collect(found: list[wire.Entry]) -> list[str]:
            new = []
            for group_dn, attrs in found:
                key = dn_key(group_dn)
                if key in names and key in dns:
                    continue
                names[key] = first_value(attrs, name_attribute.lower()) or first_rdn_value(group_dn)
                dns[key] = group_dn
                new.append(key)
            return new

        request = self._group_request(dn, login) if first is None else None
        if request is not None:
            first = run(lambda conn: wire.exchange(_sock(conn), request)[0])
        if first is not None:
            collect(_search_checked(first, "group search"))
        if config.nested_groups:
            self._nested(dns, collect, run)
        return tuple(sorted(set(names.values())))

    def _nested(self, dns: dict[str, str], collect: Callable[[list[wire.Entry]], list[str]], run: Runner[Any]) -> None:
        config = self.config
        assert config.group_base_dn is not None
        seen: set[str] = set()
        frontier = list(dns)
        for _depth in range(config.nested_groups_max_depth):
            frontier = [k for k in frontier if k not in seen]
            if not frontier:
                break
            seen.update(frontier)
            clauses = "".join(
                f"(member={escape_filter_chars(dns[k])})(uniqueMember={escape_filter_chars(dns[k])})" for k in frontier
            )
            request = wire.search(config.group_base_dn, wire.SUBTREE, f"(|{clauses})", [config.group_name_attribute])
            reply: wire.Reply = run(partial(_one, request))
            frontier = collect(_search_checked(reply, "group search"))
