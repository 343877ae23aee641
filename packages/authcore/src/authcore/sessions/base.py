"""The session contract: the record, the store protocol, refresh-token hashing, and the reuse error.

Everything a store implementation needs and nothing more; the stores shipped with
authcore are in :mod:`.memory` and :mod:`.sqlite`, the lifecycle on top in :mod:`.lifecycle`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from ..errors import InvalidToken

#: Every refresh token starts with this, so it is never mistaken for an access token (and vice versa).
REFRESH_TOKEN_PREFIX: Final = "rt_"
#: Every personal access token starts with this (a script's opaque token; secret scanners can match it).
PERSONAL_TOKEN_PREFIX: Final = "pat_"
#: Longest string :meth:`Sessions.refresh` looks at.
MAX_REFRESH_TOKEN_LENGTH: Final = 256
#: Stores purge expired sessions on every this many creates, so memory and files stay bounded.
PURGE_EVERY: Final = 1000


class RefreshTokenReused(InvalidToken):
    """A refresh token was presented again after it had been rotated: its session is now revoked.

    ``session_id`` names that session, so a caller can forget what it cached for it
    (verified access tokens) at once. It is an attribute, not part of the message a client sees.
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__("refresh token already used: session revoked")

    def __reduce__(self) -> tuple[type[RefreshTokenReused], tuple[str]]:
        return (type(self), (self.session_id,))


def hash_refresh_token(token: str) -> bytes:
    """The stored form of a refresh token: its SHA-256 digest.

    A fast hash is enough: the token holds 256 random bits, nothing to brute-force.
    """
    return hashlib.sha256(token.encode("utf-8")).digest()


def _identity_json(identity: dict[str, Any]) -> str:
    if not isinstance(identity, dict):
        raise TypeError("a session identity is a dict")
    return json.dumps(identity, separators=(",", ":"), allow_nan=False)


def _check_hash(value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError("a refresh token hash is 32 bytes (SHA-256)")
    return value


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session as a store keeps it. Times are Unix seconds.

    ``identity`` is the JSON-able identity snapshot taken at login (the manager stores
    ``Identity.model_dump()`` plus provider session state there); it is left out of the
    repr, which shows the login only.
    """

    session_id: str
    login: str
    provider: str
    identity: dict[str, Any] = field(repr=False, hash=False)
    created_at: float
    last_used_at: float
    idle_expires_at: float
    absolute_expires_at: float
    revoked: bool = False

    def active(self, now: float) -> bool:
        """Whether the session is usable at *now*: not revoked, not idle too long, not too old."""
        return not self.revoked and now < self.idle_expires_at and now < self.absolute_expires_at

    def __repr__(self) -> str:
        return (
            f"SessionRecord(session_id={self.session_id!r}, login={self.login!r}, provider={self.provider!r}, "
            f"created_at={self.created_at}, idle_expires_at={self.idle_expires_at}, "
            f"absolute_expires_at={self.absolute_expires_at}, revoked={self.revoked})"
        )


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions and refresh-token hashes live: memory, SQLite, Redis, and plugins' stores.

    Implementations must be safe to call from many threads; ``rotate`` must be atomic
    (also across processes when ``shared`` is true).
    """

    #: True when calls do I/O: asynchronous hosts then run them in a worker thread.
    blocking: bool
    #: True when other processes see the same sessions (SQLite file, Redis): verified-token
    #: caches then re-check sessions every ``tokens.revocation_check_interval``.
    shared: bool

    def create(self, record: SessionRecord, refresh_hash: bytes) -> None:
        """Store a new session whose current refresh-token hash is *refresh_hash*."""
        ...

    def get(self, session_id: str) -> SessionRecord | None:
        """The session *session_id* (revoked and expired ones included until purged), or ``None``."""
        ...

    def peek(self, session_id: str) -> SessionRecord | None:
        """Like :meth:`get`, but the record's ``identity`` is left empty.

        What checking an access token needs (revoked? expired?), without the cost of
        reading and decoding the identity snapshot: it is on every uncached verification.
        """
        ...

    def rotate(self, old_hash: bytes, new_hash: bytes, *, now: float, idle_timeout: float) -> SessionRecord:
        """Atomically replace the session's current hash *old_hash* with *new_hash*.

        On success ``last_used_at = now`` and ``idle_expires_at = min(now + idle_timeout,
        absolute_expires_at)``; *old_hash* is remembered as used, and the updated record
        returned. A previously used hash means reuse: its session is revoked and
        :class:`RefreshTokenReused` (an :class:`~authcore.errors.InvalidToken` naming the
        session) raised. An unknown hash or a revoked session
        raise :class:`~authcore.errors.InvalidToken`; an idle or absolute expiry that has
        passed raises :class:`~authcore.errors.TokenExpired`.
        """
        ...

    def touch(self, session_id: str, *, now: float, idle_timeout: float) -> bool:
        """Slide a live session's idle expiry: ``last_used_at = now`` and ``idle_expires_at =
        min(now + idle_timeout, absolute_expires_at)``, as :meth:`rotate` does, without a new
        refresh hash. True if the session is live (not revoked, not expired); an ended session
        stays ended.
        """
        ...

    def revoke(self, session_id: str) -> bool:
        """Revoke a session. True if it existed and was not revoked already."""
        ...

    def session_of(self, refresh_hash: bytes) -> str | None:
        """The id of the session whose current or an earlier refresh-token hash is *refresh_hash*.

        What a logout by refresh token needs (OAuth clients revoke with the refresh token,
        RFC 7009). Earlier hashes count too: whoever holds one held the session.
        """
        ...

    def update_identity(self, session_id: str, identity: dict[str, Any]) -> None:
        """Replace a session's identity snapshot; :class:`~authcore.errors.InvalidToken` if it is gone."""
        ...

    def sessions_of(self, login: str, *, now: float) -> list[SessionRecord]:
        """The live sessions (:meth:`SessionRecord.active` at *now*) of *login*, whatever the
        provider, with their identities, oldest first (``created_at``, then ``session_id``).

        What per-user session control needs: list a user's sessions and tokens, end them all.
        """
        ...

    def purge(self, now: float) -> int:
        """Delete revoked and expired sessions with their used hashes; return how many sessions went."""
        ...

    def close(self) -> None:
        """Release resources (connections). The store is unusable afterwards."""
        ...


@runtime_checkable
class RevocationFeed(Protocol):
    """A store that tells every instance about each revoked session as it happens (Redis's pub/sub).

    Optional: the manager's verified-token cache follows it (:meth:`TokenCache.follow
    <authcore.token_cache.TokenCache.follow>`), so a logout on one instance is refused by every
    other one at once instead of after ``tokens.revocation_check_interval``.
    """

    def watch_revocations(
        self,
        *,
        on_revoked: Callable[[str], None],
        on_lost: Callable[[], None],
        on_resync: Callable[[], None],
    ) -> Callable[[], None]:
        """Start hearing revocations: ``on_revoked(session_id)`` for each; ``on_lost()`` when some
        may be missed from now on (the feed's connection failed); ``on_resync()`` when nothing is
        missed any more (subscribed, after every reconnect). Returns the call that stops it."""
        ...
