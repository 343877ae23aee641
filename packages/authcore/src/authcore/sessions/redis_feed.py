"""The revocation feed of the Redis store: every instance hears of every revoked session at once.

The store's scripts ``PUBLISH`` a session's id on ``<prefix>revoked`` in the same atomic step
that revokes it (a logout, a detected refresh-token reuse, a user disabled), so an instance's
verified-token cache drops it within milliseconds. Pub/sub delivers at most once: a message
sent while a subscriber's connection is down is lost for it. So the watcher also tells its
owner when it cannot vouch for having heard everything (``on_lost``: the connection failed,
or Redis stopped answering the pings sent every :data:`PING_EVERY` seconds for
:data:`SILENCE_LIMIT`), and when it can again (``on_resync``: subscribed, anew after each
reconnect). The verified-token cache distrusts its entries in between
(:meth:`~authcore.token_cache.TokenCache.follow`), so a lost message costs a store lookup,
never a revoked token accepted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["PING_EVERY", "SILENCE_LIMIT", "RevocationWatcher"]

log = logging.getLogger("authcore.sessions")

#: How often the subscriber pings Redis: a stalled Redis or a dead link shows as missing pongs.
PING_EVERY: Final = 0.2
#: Silence (no message, no pong) after which the feed counts as lost: within the 1 s bound.
SILENCE_LIMIT: Final = 0.6
#: Pause between attempts to subscribe again.
_RETRY_PAUSE: Final = 0.2


class _Silent(Exception):
    """Redis answered neither a message nor a ping for :data:`SILENCE_LIMIT` seconds."""


class RevocationWatcher:
    """A daemon thread subscribed to one revocation channel; :meth:`stop` ends it."""

    def __init__(
        self,
        client: Redis,
        channel: str,
        *,
        on_revoked: Callable[[str], None],
        on_lost: Callable[[], None],
        on_resync: Callable[[], None],
        unavailable: tuple[type[Exception], ...],
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_revoked = on_revoked
        self._on_lost = on_lost
        self._on_resync = on_resync
        # Everything that means "the feed is gone", for one except clause.
        self._lost: tuple[type[Exception], ...] = (*unavailable, _Silent)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authcore-revocations", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<RevocationWatcher channel={self._channel!r} running={self._thread.is_alive()}>"

    def stop(self) -> None:
        """End the subscription and the thread (waits for it at most a second)."""
        self._stopped.set()
        self._thread.join(1.0)

    def _run(self) -> None:
        while not self._stopped.is_set():
            pubsub: Any = self._client.pubsub()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            try:
                pubsub.subscribe(self._channel)
                self._listen(pubsub)
            except self._lost as exc:
                log.warning("revocation feed lost (%s); cached verifications are distrusted", type(exc).__name__)
            except Exception:  # the feed must outlive anything one message can throw at it
                log.exception("revocation feed failed; cached verifications are distrusted")
            finally:
                with contextlib.suppress(Exception):  # closing a broken connection may fail again
                    pubsub.close()
            if not self._stopped.is_set():
                self._on_lost()
                self._stopped.wait(_RETRY_PAUSE)

    def _listen(self, pubsub: Any) -> None:
        last_heard = time.monotonic()
        last_ping = 0.0
        while not self._stopped.is_set():
            message = pubsub.get_message(timeout=PING_EVERY / 2)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                kind = message.get("type")
                if kind == "subscribe":
                    self._on_resync()  # from here on nothing is missed: what came before is forgotten
                elif kind == "message":
                    data = message.get("data")
                    self._on_revoked(data.decode("utf-8", "surrogatepass") if isinstance(data, bytes) else str(data))
            if now - last_ping >= PING_EVERY:
                pubsub.ping()
                last_ping = now
            if now - last_heard > SILENCE_LIMIT:
                raise _Silent("no answer from Redis")
