"""Parsing a ``sessions.store`` Redis URL into what redis-py needs, without importing redis-py.

Three shapes::

    redis://[[user]:password@]host[:port][/db][?options]
    rediss://[[user]:password@]host[:port][/db][?options]        (TLS)
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service_name[/db][?options]

Options: ``prefix`` (key prefix, default ``authcore:``), ``socket_timeout`` and
``socket_connect_timeout`` (seconds, default 2 each), for ``rediss://`` the TLS
settings redis-py takes (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
``ssl_cert_reqs``, ``ssl_check_hostname``), and for ``redis+sentinel://``
``min_other_sentinels`` (default 0: a master is taken from a Sentinel that sees at least
that many other Sentinels, so that one cut off from the rest cannot name a stale master).
A password holding ``/``, ``?``, ``#`` or ``@`` is written percent-encoded. Errors never repeat
the URL or any part of it: it may hold a password.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, unquote

from ..errors import ConfigError

__all__ = ["DEFAULT_PREFIX", "REDIS_SCHEMES", "RedisLocation", "parse_redis_url"]

#: The URL schemes this store serves.
REDIS_SCHEMES: Final = ("redis", "rediss", "redis+sentinel")
#: Every key the store writes starts with this unless ``?prefix=`` says otherwise.
DEFAULT_PREFIX: Final = "authcore:"
#: Longer URLs are refused before any parsing: a configuration value, not a document.
MAX_URL_LENGTH: Final = 4096
_DEFAULT_PORT: Final = {"redis": 6379, "rediss": 6379, "redis+sentinel": 26379}
_DEFAULT_TIMEOUT: Final = 2.0
#: A bound on the timeouts an operator can ask for: a longer one would let a dead Redis hang requests.
_MAX_TIMEOUT: Final = 300.0
_MAX_DB: Final = 1_000_000
_HOST: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?")
_PORT: Final = re.compile(r"[0-9]{1,5}")
_DB: Final = re.compile(r"[0-9]{1,7}")
_SERVICE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PREFIX: Final = re.compile(r"[A-Za-z0-9_.:{}-]{1,100}")
_COMMON_OPTIONS: Final = ("prefix", "socket_timeout", "socket_connect_timeout")
_TLS_OPTIONS: Final = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")
_SENTINEL_OPTIONS: Final = ("min_other_sentinels",)
#: More Sentinels than any deployment runs; a larger number is a typo that would refuse every master.
_MAX_OTHER_SENTINELS: Final = 100
_COUNT: Final = re.compile(r"[0-9]{1,3}")
_CERT_REQS: Final = ("none", "optional", "required")
_BOOLEANS: Final = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _fail(problem: str) -> ConfigError:
    return ConfigError(f"sessions.store: {problem}")


@dataclass(frozen=True, slots=True)
class RedisLocation:
    """Where the Redis store lives and how to talk to it: a parsed ``sessions.store`` URL.

    The credentials are left out of the repr; :meth:`where` names the servers for messages.
    """

    scheme: str
    #: ``(host, port)`` of the server, or of every Sentinel for ``redis+sentinel``.
    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    #: The Sentinel service (master group) name; ``None`` unless ``redis+sentinel``.
    service: str | None = None
    prefix: str = DEFAULT_PREFIX
    socket_timeout: float = _DEFAULT_TIMEOUT
    socket_connect_timeout: float = _DEFAULT_TIMEOUT
    #: redis-py's ``ssl_*`` keyword arguments (``rediss`` only).
    tls: dict[str, str | bool] = field(default_factory=dict)
    #: How many other Sentinels the one asked must see for its master to be taken (``redis+sentinel``).
    min_other_sentinels: int = 0

    def where(self) -> str:
        """``host:port`` (or the Sentinels and service): safe to show, holds no credential."""
        servers = ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in self.hosts)
        if self.service is not None:
            return f"sentinel {servers}/{self.service}"
        return servers


def parse_redis_url(url: str) -> RedisLocation:
    """Parse a Redis ``sessions.store`` URL; :class:`~authcore.errors.ConfigError` for anything malformed."""
    if not isinstance(url, str):
        raise _fail("the store must be a URL string")
    if len(url) > MAX_URL_LENGTH:
        raise _fail(f"the Redis URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise _fail("the Redis URL holds a space or a control character")
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in REDIS_SCHEMES:
        raise _fail("a Redis URL starts with redis://, rediss:// or redis+sentinel://")
    if "#" in rest:
        raise _fail("a Redis URL takes no fragment ('#'); percent-encode a '#' in the password as %23")
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, hostpart = authority.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    hosts = _hosts(hostpart, scheme)
    service, db = _path(path, scheme)
    options = _options(query, scheme)
    tls = {key: value for key, value in options.items() if key.startswith("ssl_") and isinstance(value, str | bool)}
    return RedisLocation(
        scheme=scheme,
        hosts=hosts,
        db=db,
        username=username,
        password=password,
        service=service,
        prefix=str(options.get("prefix", DEFAULT_PREFIX)),
        socket_timeout=float(options.get("socket_timeout", _DEFAULT_TIMEOUT)),
        socket_connect_timeout=float(options.get("socket_connect_timeout", _DEFAULT_TIMEOUT)),
        tls=tls,
        min_other_sentinels=int(options.get("min_other_sentinels", 0)),
    )


def _decode(text: str, what: str) -> str:
    try:
        value = unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise _fail(f"the Redis URL's {what} is not percent-encoded UTF-8") from None
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise _fail(f"the Redis URL's {what} holds a control character")
    return value


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, secret = userinfo.partition(":")
    if not colon:
        # redis://word@host would send the word as an ACL user name without a password.
        raise _fail("write the Redis password as redis://:password@host (or user:password@host)")
    if not secret:
        raise _fail("the Redis URL's password is empty")
    return (_decode(user, "user name") or None), _decode(secret, "password")


def _hosts(hostpart: str, scheme: str) -> tuple[tuple[str, int], ...]:
    entries = hostpart.split(",")
    if len(entries) > 1 and scheme != "redis+sentinel":
        raise _fail("only redis+sentinel:// URLs list several hosts")
    if len(entries) > 16:
        raise _fail("a redis+sentinel:// URL lists at most 16 Sentinels")
    return tuple(_host_port(entry, _DEFAULT_PORT[scheme]) for entry in entries)


def _host_port(entry: str, default_port: int) -> tuple[str, int]:
    if entry.startswith("["):
        literal, bracket, port_text = entry[1:].partition("]")
        try:
            host = str(ipaddress.IPv6Address(literal)) if bracket else ""
        except ValueError:
            host = ""
        if not host:
            raise _fail("the Redis URL has a malformed IPv6 address")
        if port_text and not port_text.startswith(":"):
            raise _fail("the Redis URL has a malformed host")
        port_text = port_text[1:] if port_text else ""
        has_port = bool(port_text) or entry.endswith(":")
    else:
        host, colon, port_text = entry.partition(":")
        has_port = bool(colon)
        if not host:
            raise _fail("the Redis URL names no host")
        if len(host) > 253 or not _HOST.fullmatch(host):
            raise _fail("the Redis URL's host is not a host name or IP address (ASCII letters, digits, '-' and '.')")
    if not has_port:
        return host, default_port
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise _fail("the Redis URL's port must be a number from 1 to 65535")
    return host, int(port_text)


def _path(path: str, scheme: str) -> tuple[str | None, int]:
    parts = path.split("/") if path else []
    service = None
    if scheme == "redis+sentinel":
        if not parts or not parts[0]:
            raise _fail("a redis+sentinel:// URL names the service: redis+sentinel://host:port/service_name[/db]")
        service = parts.pop(0)
        if not _SERVICE.fullmatch(service):
            raise _fail("the Sentinel service name may hold ASCII letters, digits, '.', '_' and '-' only")
    if len(parts) > 1:
        raise _fail("the Redis URL's path is /db (a number) and nothing more")
    db_text = parts[0] if parts else ""
    if not db_text:
        return service, 0
    if not _DB.fullmatch(db_text) or int(db_text) > _MAX_DB:
        raise _fail("the Redis database must be a number (0, 1, ...)")
    return service, int(db_text)


def _options(query: str, scheme: str) -> dict[str, str | float | bool]:
    allowed = _COMMON_OPTIONS + {"rediss": _TLS_OPTIONS, "redis+sentinel": _SENTINEL_OPTIONS}.get(scheme, ())
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True, max_num_fields=16) if query else []
    except ValueError:
        raise _fail("the Redis URL's query string is malformed") from None
    options: dict[str, str | float | bool] = {}
    for key, raw in pairs:
        if key not in allowed:
            # The key is not named: a mistyped URL may have put a password there.
            raise _fail(f"unknown option in the Redis URL's query string; allowed: {', '.join(allowed)}")
        if key in options:
            raise _fail(f"the Redis URL gives {key} twice")
        options[key] = _option(key, raw)
    return options


def _option(key: str, raw: str) -> str | float | bool:
    if key == "prefix":
        if not _PREFIX.fullmatch(raw):
            raise _fail("prefix may hold 1 to 100 ASCII letters, digits and '_.:{}-'")
        return raw
    if key in ("socket_timeout", "socket_connect_timeout"):
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and 0 < seconds <= _MAX_TIMEOUT):
            raise _fail(f"{key} must be a number of seconds above 0 and at most {_MAX_TIMEOUT:g}")
        return seconds
    if key == "min_other_sentinels":
        if not _COUNT.fullmatch(raw) or int(raw) > _MAX_OTHER_SENTINELS:
            raise _fail(f"min_other_sentinels must be a whole number from 0 to {_MAX_OTHER_SENTINELS}")
        return int(raw)
    if key == "ssl_cert_reqs":
        if raw not in _CERT_REQS:
            raise _fail(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
        return raw
    if key == "ssl_check_hostname":
        if raw.lower() not in _BOOLEANS:
            raise _fail("ssl_check_hostname must be true or false")
        return _BOOLEANS[raw.lower()]
    if not raw or "\x00" in raw:
        raise _fail(f"{key} must name a file")
    return raw
