"""Run blocking-style code on an event loop, its network waits awaited on that loop (greenlet).

An async web adapter runs a request whose only wait is on the Redis session store with
:func:`run_bridged` instead of sending it to a worker thread: the request's code (the manager,
the throttle, the store, all written as plain calls) runs in a greenlet, and when the store
needs Redis it calls :func:`wait_for` with the reply's future. That switches back to the event
loop, and the future's done callback switches in again with its result. The code reads as
before and is declared once; only the store's lowest layer knows which of the two ways it is
called (:func:`bridged`). SQLAlchemy's asyncio support works the same way.

Code that never needs a reply inside it can skip the greenlet: a coroutine runs it in-line
within ``async with collecting():``, and the store sends each of its calls at once and hands
the reply's check to the block, which awaits it when it ends (a Redis login: the new session is
sent, the throttle's settle awaited, then the session's reply checked). A call that waits for
its reply in-line there is a defect and raises :class:`RuntimeError`.

Why: a worker thread's hop, and the GIL handed between the loop and the workers, cost more
CPU than the login itself (``docs/design.md``, "A Redis login awaits on the loop").

greenlet is imported with this module, which only the async adapters and the Redis store
import, and only when the ``redis`` extra is installed.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from greenlet import GreenletExit, getcurrent, greenlet

__all__ = ["Sent", "bridged", "check_later", "collected", "collecting", "on_loop", "run_bridged", "wait_for"]

T = TypeVar("T")


#: Idle greenlets kept per thread for reuse, at most this many.
_POOL_SIZE = 64


class _Outcome:
    """What a bridged call ended with, handed by its greenlet to whoever switched in last."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error

    def take(self) -> Any:
        """The value, or raise the error; either way the outcome keeps neither (the idle greenlet
        that handed it over still refers to it, and a login's value holds its tokens)."""
        value, error = self.value, self.error
        self.value = self.error = None
        if error is not None:
            raise error
        return value


class _Bridged(greenlet):
    """A greenlet that runs bridged calls one after the other, kept in a per-thread pool.

    Why a pool: on Python 3.11+ every new greenlet maps a fresh frame stack for its first call
    and unmaps it when it dies, two system calls that cost a login more than Redis's round trip
    (``docs/design.md``, "Bridged calls reuse their greenlets"). A call's end is not the
    greenlet's: it hands an :class:`_Outcome` to its parent and waits for the next call.

    Once the code waits, the future it waits on resumes it from that future's done callback,
    and :attr:`finished` carries the outcome to the awaiting task: resuming it through the task
    would resume every coroutine between the task and :func:`run_bridged` (an ASGI request's
    middleware chain) once for every wait on Redis.
    """

    finished: asyncio.Future[Any] | None = None
    #: Replies sent for with :func:`check_later` and not checked yet, oldest first.
    later: deque[tuple[asyncio.Future[Any], Callable[[asyncio.Future[Any]], None]]]

    def __init__(self) -> None:
        super().__init__(self._serve)
        self.later = deque()

    def _serve(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        while True:
            try:
                value = function(*args)
                self._drain()
                outcome = _Outcome(value, None)
                del value
            except GreenletExit:  # the idle greenlet was dropped: let it end
                raise
            except BaseException as exc:  # the code's own error: the awaiting task raises it
                _abandon(self.later)
                value = None
                outcome = _Outcome(None, exc)
            del function, args  # hold nothing of a finished call while idle
            parent = self.parent
            assert parent is not None
            function, args = parent.switch(outcome)

    def check_done(self) -> None:
        """Run the checks of the replies that have come, in the order they were sent."""
        while self.later and self.later[0][0].done():
            future, check = self.later.popleft()
            check(future)

    def _drain(self) -> None:
        # The call ends only once every reply it sent for has come and passed its check.
        while self.later:
            future = self.later[0][0]
            if not future.done():
                try:
                    _switch_out(self, future)
                except GreenletExit:
                    raise
                except BaseException:  # the future's own error: its check raises it
                    pass
            self.check_done()

    def start(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run ``function(*args)`` in this greenlet until it waits (:data:`_WAITING`) or ends (:class:`_Outcome`)."""
        self.parent = getcurrent()
        # The request's context variables, as run_in_threadpool hands them to a worker (a copy).
        self.gr_context = contextvars.copy_context()
        self.finished = None
        return self.switch(function, args)

    def resume(self, waited: asyncio.Future[Any]) -> None:
        """Done callback of the future the code waits on: run the code on to its next wait or its end."""
        try:
            value = waited.result()
        except BaseException as exc:  # the awaited call's error belongs to the code that waits for it
            step = self.throw(exc)
        else:
            step = self.switch(value)
        if isinstance(step, _Outcome):
            finished = self.finished
            _release(self)
            try:
                value = step.take()
            except BaseException as exc:
                if finished is not None and not finished.done():
                    finished.set_exception(exc)
            else:
                if finished is not None and not finished.done():
                    finished.set_result(value)


_WAITING: Any = object()
_idle = threading.local()


def _acquire() -> _Bridged:
    pool: list[_Bridged] | None = getattr(_idle, "pool", None)
    if pool:
        return pool.pop()
    return _Bridged()


def _release(child: _Bridged) -> None:
    child.finished = None
    child.gr_context = None
    pool: list[_Bridged] | None = getattr(_idle, "pool", None)
    if pool is None:
        pool = _idle.pool = []
    if len(pool) < _POOL_SIZE:
        pool.append(child)


async def run_bridged(function: Callable[..., T], /, *args: Any) -> T:
    """Call ``function(*args)`` on this event loop; every :func:`wait_for` inside it awaits here.

    Cancelling the awaiting task does not stop the code: like a worker thread's, it runs on to
    its end (each wait's reply resumes it) and its outcome is dropped.
    """
    child = _acquire()
    step = child.start(function, args)
    if isinstance(step, _Outcome):  # it never waited
        _release(child)
        return cast("T", step.take())
    finished = child.finished = asyncio.get_running_loop().create_future()
    return cast("T", await finished)


def bridged() -> bool:
    """Whether the caller runs inside :func:`run_bridged` (so it may call :func:`wait_for`)."""
    return isinstance(getcurrent(), _Bridged)


def on_loop() -> bool:
    """Whether a store's calls go to the event loop's connection: the caller runs bridged, or
    in-line in a coroutine within :func:`collecting` (where it may only send calls checked later)."""
    return isinstance(getcurrent(), _Bridged) or _collecting.get() is not None


class Sent:
    """The calls sent by code run within :func:`collecting`, each with the check of its reply.

    ``async with collecting():`` sets it up for the block's store calls and, when the block
    ends (returning or raising), awaits every check, oldest first, as :func:`run_bridged`
    drains :func:`check_later`'s checks before its call ends: nothing is answered before the
    calls it made are known to have worked. A failed check raises its error there (the checks
    after it are dropped, their replies' errors retrieved).
    """

    __slots__ = ("_due", "_token")

    def __init__(self) -> None:
        self._due: deque[tuple[asyncio.Future[Any], Callable[[asyncio.Future[Any]], Awaitable[None]]]] = deque()
        self._token: contextvars.Token[Sent | None] | None = None

    def add(self, future: asyncio.Future[Any], check: Callable[[asyncio.Future[Any]], Awaitable[None]]) -> None:
        """Check *future* with ``await check(future)`` when the block ends, after the calls sent before it."""
        self._due.append((future, check))

    async def __aenter__(self) -> Sent:
        self._token = _collecting.set(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._token is not None
        _collecting.reset(self._token)
        self._token = None
        while self._due:
            future, check = self._due.popleft()
            try:
                await check(future)
            except BaseException:
                _abandon(self._due)
                raise


_collecting: contextvars.ContextVar[Sent | None] = contextvars.ContextVar("authcore_collecting", default=None)


def collecting() -> Sent:
    """``async with collecting():`` runs the block's store calls as a coroutine's, in-line on
    the event loop: each is sent at once, and its reply checked when the block ends
    (:class:`Sent`). Only calls whose reply says whether they worked may be made there."""
    return Sent()


def collected() -> Sent | None:
    """The :class:`Sent` of the :func:`collecting` block the caller runs in, unless it runs bridged."""
    if isinstance(getcurrent(), _Bridged):
        return None
    return _collecting.get()


def wait_for(awaitable: Awaitable[T]) -> T:
    """Await *awaitable* on the event loop of the enclosing :func:`run_bridged`; its result or error.

    A future (the Redis connection's replies) is waited on as it is; anything else becomes a task.
    """
    current = getcurrent()
    if not isinstance(current, _Bridged):
        raise RuntimeError("wait_for() is only for code run by run_bridged(), not within collecting()")
    value = _switch_out(current, asyncio.ensure_future(awaitable))
    if current.later:
        current.check_done()
    return value


def check_later(awaitable: Awaitable[T], check: Callable[[asyncio.Future[T]], None]) -> None:
    """Send now, check later: ``check(future)`` runs once *awaitable* is done, when the code
    next returns from :func:`wait_for` or else before its :func:`run_bridged` call ends; in
    a coroutine's :func:`collecting` block, when the block ends (*check* must not wait there).

    For a write whose reply only says whether it worked (a new session): the next command
    goes to Redis in the same write, so a login's session and its throttle settle cost one
    round trip, not two; the call still ends only after every check passed, and a check's
    error is raised where the code waits next.
    """
    current = getcurrent()
    if isinstance(current, _Bridged):
        current.later.append((asyncio.ensure_future(awaitable), check))
        return
    sent = _collecting.get()
    if sent is None:
        raise RuntimeError("check_later() is only for code run by run_bridged() or within collecting()")

    async def checked(future: asyncio.Future[Any]) -> None:
        if not future.done():  # asyncio.wait would cost a loop iteration even when it is
            await asyncio.wait((future,))  # its error is the check's to raise; a cancelled wait leaves it be
        check(future)

    sent.add(asyncio.ensure_future(awaitable), checked)


def _switch_out(current: _Bridged, future: asyncio.Future[T]) -> T:
    """Switch back to the loop until *future* is done; its result, or its error raised here."""
    parent = current.parent
    assert parent is not None  # run_bridged set it
    future.add_done_callback(current.resume)
    return cast("T", parent.switch(_WAITING))


def _abandon(due: deque[tuple[asyncio.Future[Any], Any]]) -> None:
    """Drop the checks not made: their replies' errors are no caller's any more, so retrieve them
    (asyncio would log each as never retrieved)."""
    for future, _check in due:
        future.add_done_callback(_retrieve)
    due.clear()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
