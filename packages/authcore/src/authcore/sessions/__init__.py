"""Sessions: refresh tokens, sliding idle expiry, an absolute lifetime, revocation, and their stores.

A session starts at login and hands out an opaque refresh token (``rt_`` + 43 url-safe
characters, 256 random bits). Only its SHA-256 hash is stored: a leaked database holds
nothing that can be presented. Every refresh *rotates* the token: the old hash is
remembered as used, and presenting a used token again is treated as theft (RFC 9700
4.14.2): the whole session is revoked, so the newest token dies too.

A session ends when it has been idle for ``idle_timeout``, when it reaches
``max_lifetime`` (however active), or when it is revoked (logout, reuse).

Stores implement :class:`SessionStore`: :class:`MemorySessionStore` (one process),
:class:`SQLiteSessionStore` (a file shared by the processes of one host), and plugins'
stores through the ``authcore_session_store`` hook. :class:`~authcore.sessions.redis.RedisSessionStore`
(``redis://``, several instances) is imported only when a Redis URL is opened: redis-py stays unimported.
"""

from .base import (
    MAX_REFRESH_TOKEN_LENGTH,
    PERSONAL_TOKEN_PREFIX,
    PURGE_EVERY,
    REFRESH_TOKEN_PREFIX,
    RefreshTokenReused,
    RevocationFeed,
    SessionRecord,
    SessionStore,
    hash_refresh_token,
)
from .lifecycle import NewSession, Sessions, open_store
from .memory import MemorySessionStore
from .sqlite import SQLiteSessionStore

__all__ = [
    "MAX_REFRESH_TOKEN_LENGTH",
    "PERSONAL_TOKEN_PREFIX",
    "PURGE_EVERY",
    "REFRESH_TOKEN_PREFIX",
    "MemorySessionStore",
    "NewSession",
    "RefreshTokenReused",
    "RevocationFeed",
    "SQLiteSessionStore",
    "SessionRecord",
    "SessionStore",
    "Sessions",
    "hash_refresh_token",
    "open_store",
]
