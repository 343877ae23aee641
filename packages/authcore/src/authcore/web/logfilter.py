"""A logging filter that redacts tokens in query strings before any handler writes them.

Host servers log request targets with their query strings: uvicorn's ``uvicorn.access``
(``GET /api?token=... HTTP/1.1``) and ``uvicorn.error`` (``"WebSocket /ws?token=..."
[accepted]``), gunicorn's ``gunicorn.access``, werkzeug's ``werkzeug``. With
``WebSettings.query_token`` on (websockets), those lines would hold live tokens.
:class:`RedactTokens` rewrites the values of sensitive query parameters in the record's
message and arguments (strings only, so the formatters' ``%d`` and tuple shapes still work)::

    import logging
    from authcore.web.logfilter import RedactTokens, install_log_redaction

    install_log_redaction()                                   # uvicorn, gunicorn, werkzeug loggers
    logging.getLogger("my.proxy").addFilter(RedactTokens())   # any other logger

``authcore serve`` installs it. Only the standard library is imported here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["RedactTokens", "install_log_redaction", "redact_query_tokens", "SENSITIVE_QUERY_NAMES", "SERVER_LOGGERS"]

#: Query parameters whose values are redacted: our ``query_token`` default and OAuth/OpenID names
#: (an authorization ``code`` and its ``state`` are single-use, but live until redeemed).
SENSITIVE_QUERY_NAMES: tuple[str, ...] = (
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "logout_token",
    "code",
    "state",
    "session_state",
    "password",
    "client_secret",
)
#: Loggers of the servers that log request targets with query strings.
SERVER_LOGGERS: tuple[str, ...] = ("uvicorn.access", "uvicorn.error", "gunicorn.access", "gunicorn.error", "werkzeug")

REDACTED = "[redacted]"


def _pattern(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
    # A name right after "?", "&" or ";" (also percent-encoded "?"/"&", as some proxies log them),
    # then "=" (or %3D); the value runs to the next separator (or %26), blank or quote.
    return re.compile(
        rf"((?:[?&;]|%3[Ff]|%26)(?:{alternatives})(?:=|%3[Dd]))(?:(?!%26)[^&;#\s\"'<>])*",
        re.IGNORECASE,
    )


_DEFAULT = _pattern(SENSITIVE_QUERY_NAMES)


def redact_query_tokens(text: str, names: Iterable[str] | None = None) -> str:
    """*text* with the values of sensitive query parameters replaced by ``[redacted]``."""
    pattern = _DEFAULT if names is None else _pattern(names)
    return pattern.sub(rf"\g<1>{REDACTED}", text)


class RedactTokens(logging.Filter):
    """Redacts sensitive query parameters in a record's message and string arguments.

    ``extra_names`` adds parameter names (a custom ``query_token``). The record is changed in
    place and always let through: a filter on a logger runs before its handlers format.
    """

    def __init__(self, extra_names: Iterable[str] = ()) -> None:
        super().__init__()
        extra = tuple(extra_names)
        self._pattern = _pattern((*SENSITIVE_QUERY_NAMES, *extra)) if extra else _DEFAULT

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._pattern.sub(rf"\g<1>{REDACTED}", value)
        if isinstance(value, bytes):
            return self._pattern.sub(rf"\g<1>{REDACTED}", value.decode("latin-1")).encode("latin-1")
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact *record* in place; never drops it."""
        if isinstance(record.msg, str):
            record.msg = self._clean(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(self._clean(a) for a in args)
        elif isinstance(args, dict):  # gunicorn's access log passes its atoms as a mapping
            record.args = {k: self._clean(v) for k, v in args.items()}
        return True


def install_log_redaction(loggers: Iterable[str] = SERVER_LOGGERS, extra_names: Iterable[str] = ()) -> RedactTokens:
    """Add one :class:`RedactTokens` to each named logger (once); return it.

    Before or after the server configures logging: ``logging.config.dictConfig`` replaces a
    logger's handlers but keeps its filters.
    """
    redactor = RedactTokens(extra_names)
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(redactor)
    return redactor
