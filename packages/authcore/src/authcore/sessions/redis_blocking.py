"""redis-py's blocking client of :class:`~authcore.sessions.redis.RedisSessionStore`: made
from a parsed URL, its errors that mean "unavailable", and calls sent together in one round trip.

The store's calls from a worker thread (a login through a provider that waits, a host without
an event loop) use this client; those of a coroutine on an event loop use
:mod:`.redis_loop`'s connection instead. Within :func:`~authcore.sessions.held.held_calls` a new
session is held and sent with the store's next call (:func:`send_with_held`): one pipeline,
one round trip, each reply checked in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigError
from .redis_url import RedisLocation

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

__all__ = ["ScriptCall", "connect", "send_with_held", "unavailable_errors"]


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """A script call for a pipeline, and the check of its reply when it was held back
    (:meth:`~authcore.sessions.held.HeldCalls.hold`)."""

    script: Script
    keys: Sequence[str]
    args: Sequence[str | int]
    check: Callable[[Any], None]

    def command(self) -> tuple[Any, ...]:
        """The ``EVAL`` that runs it: the script's text, not its digest, so that a Redis that lost
        its scripts (restarted without its append-only file, ``SCRIPT FLUSH``) cannot answer
        ``NOSCRIPT`` in the middle of a pipeline whose later calls it has run (Redis compiles a
        text once and keeps it by digest: resending it costs bytes and a hash)."""
        return ("EVAL", self.script.script, len(self.keys), *self.keys, *self.args)


def send_with_held(client: Redis, held: Sequence[ScriptCall], last: ScriptCall | tuple[Any, ...] | None) -> Any:
    """*held* and then *last* (a script call or a plain command) in one round trip: each held
    call's reply checked in order (the first failure raised, as its check or redis-py raises
    it), then *last*'s reply returned (raised if it is an error)."""
    calls = [*held, last] if last is not None else list(held)
    pipeline = client.pipeline(transaction=False)
    for call in calls:
        pipeline.execute_command(*(call.command() if isinstance(call, ScriptCall) else call))  # type: ignore[no-untyped-call]  # redis-py's
    replies = pipeline.execute(raise_on_error=False)
    for call, reply in zip(held, replies, strict=False):
        call.check(_raised(reply))
    return _raised(replies[-1]) if last is not None else None


def _raised(reply: Any) -> Any:
    if isinstance(reply, Exception):
        raise reply
    return reply


def unavailable_errors() -> tuple[type[Exception], ...]:
    """redis-py's errors that mean "Redis cannot be reached or cannot serve now"."""
    from redis import exceptions

    # BusyLoadingError (a restarted Redis reading its AOF) and AuthenticationError are ConnectionErrors;
    # ReadOnlyError is a replica that was the master before a failover.
    return (exceptions.ConnectionError, exceptions.TimeoutError, exceptions.ReadOnlyError)


def connect(location: RedisLocation) -> tuple[Redis, list[Redis]]:
    """A redis-py client for *location*, and the Sentinels' clients to close with it (if any).

    Nothing is sent until the first command.
    """
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        from redis.sentinel import Sentinel
    except ImportError:
        raise ConfigError("sessions.store: a Redis URL needs redis-py: pip install 'authcore[redis]>=0.2'") from None
    options: dict[str, Any] = {
        "db": location.db,
        "username": location.username,
        "password": location.password,
        "socket_timeout": location.socket_timeout,
        "socket_connect_timeout": location.socket_connect_timeout,
        # RESP2 as in redis-py 5; no retries: see the module docstring.
        "protocol": 2,
        "retry": Retry(NoBackoff(), 0),
    }
    if location.service is not None:
        # The Sentinels' own clients: the same bounds, no retries either (redis-py's default,
        # three with backoff, held a call 8 s when the Sentinels could not answer).
        bounds = {key: options[key] for key in ("socket_timeout", "socket_connect_timeout", "retry")}
        # redis.sentinel is not annotated: say what its two calls return.
        make_sentinel = cast("Callable[..., Sentinel]", Sentinel)
        sentinel = make_sentinel(
            list(location.hosts),
            min_other_sentinels=location.min_other_sentinels,
            sentinel_kwargs=bounds,
            **bounds,
        )
        master_for = cast("Callable[..., Redis]", sentinel.master_for)
        return master_for(location.service, **options), list(sentinel.sentinels)
    host, port = location.hosts[0]
    if location.scheme == "rediss":
        options.update({"ssl": True, **location.tls})
    return redis.Redis(host=host, port=port, **options), []
