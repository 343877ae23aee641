"""Calls a store holds back to send with its next one: a worker thread's login in fewer round trips.

A login through a provider that waits (a directory, an identity provider) runs in a worker
thread (:meth:`authcore.web.login.WebLogin.__call__`) and ends with two store calls: the new
session, then the throttle's settle. Within ``with held_calls():`` a store that talks to a
server may hold a call whose reply only says whether it worked (a new session) and send it in
the round trip of its next call; the held call's reply is checked there, before the next
call's reply is used, and what is still held when the block ends is sent and checked then,
its error raised (as :func:`authcore.loop_bridge.collecting` does for a coroutine on an event
loop). A store that does no I/O ignores the block: its calls are made where they stand.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["HeldCalls", "HeldSender", "held_calls", "holding"]


class HeldSender(Protocol):
    """A store that holds calls (:meth:`HeldCalls.hold`): it sends and checks a list of them."""

    def send_held(self, calls: list[Any]) -> None:
        """Send *calls* (held by this store, oldest first) in one round trip and check each reply."""


class HeldCalls:
    """The calls held in one :func:`held_calls` block, by the store that holds them."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[HeldSender, list[Any]] = {}

    def hold(self, sender: HeldSender, call: Any) -> None:
        """Hold *call* for *sender*, to go with its next call (:meth:`take`) or when the block ends."""
        self._calls.setdefault(sender, []).append(call)

    def take(self, sender: HeldSender) -> list[Any]:
        """The calls held for *sender*, oldest first, no longer held (an empty list: none)."""
        return self._calls.pop(sender, [])

    def send_all(self) -> None:
        """Send what every store still holds, store by store in the order they first held a call."""
        while self._calls:
            sender = next(iter(self._calls))
            sender.send_held(self.take(sender))


_holding: contextvars.ContextVar[HeldCalls | None] = contextvars.ContextVar("authcore_held_calls", default=None)


def holding() -> HeldCalls | None:
    """The :class:`HeldCalls` of the :func:`held_calls` block the caller runs in, if any."""
    return _holding.get()


@contextmanager
def held_calls() -> Iterator[HeldCalls]:
    """``with held_calls():`` lets the block's store calls whose replies only say whether they
    worked go with the next call to the same store; whatever is still held is sent and checked
    when the block ends, also when it raised (the held call's error then chained to the block's)."""
    held = HeldCalls()
    token = _holding.set(held)
    try:
        yield held
    finally:
        _holding.reset(token)
        held.send_all()
