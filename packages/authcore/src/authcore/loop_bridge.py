"""Run blocking-style code on an event loop, its network waits awaited on that loop (greenlet).

An async web adapter runs a request whose only wait is on the Redis session store with
:func:`run_bridged` instead of sending it to a worker thread: the request's code (the manager,
the throttle, the store, all written as plain calls) runs in a greenlet, and when the store
needs Redis it calls :func:`wait_for` with a coroutine. That switches back to the event loop's
task, which awaits the coroutine and switches in again with its result. The code reads as
before and is declared once; only the store's lowest layer knows which of the two ways it is
called (:func:`bridged`). SQLAlchemy's asyncio support works the same way.

Why: a worker thread's hop, and the GIL handed between the loop and the workers, cost more
CPU than the login itself (``docs/design.md``, "A Redis login awaits on the loop").

greenlet is imported with this module, which only the async adapters and the Redis store
import, and only when the ``redis`` extra is installed.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from greenlet import getcurrent, greenlet

__all__ = ["bridged", "run_bridged", "wait_for"]

T = TypeVar("T")


class _Bridged(greenlet):
    """A greenlet running code for :func:`run_bridged`; its parent is the loop's task."""


async def run_bridged(function: Callable[..., T], /, *args: Any) -> T:
    """Call ``function(*args)`` on this event loop; every :func:`wait_for` inside it awaits here."""
    child = _Bridged(function, getcurrent())
    # The request's context variables, as run_in_threadpool hands them to a worker (a copy).
    child.gr_context = contextvars.copy_context()
    step = child.switch(*args)
    while not child.dead:
        try:
            value = await step
        except BaseException as exc:  # the awaited call's error belongs to the code that waits for it
            step = child.throw(exc)
        else:
            step = child.switch(value)
    return cast("T", step)


def bridged() -> bool:
    """Whether the caller runs inside :func:`run_bridged` (so it may call :func:`wait_for`)."""
    return isinstance(getcurrent(), _Bridged)


def wait_for(awaitable: Awaitable[T]) -> T:
    """Await *awaitable* on the event loop of the enclosing :func:`run_bridged`; its result or error."""
    current = getcurrent()
    if not isinstance(current, _Bridged):
        raise RuntimeError("wait_for() is only for code run by run_bridged()")
    parent = current.parent
    assert parent is not None  # run_bridged's task made it
    return cast("T", parent.switch(awaitable))
