"""A login through the web layer: the provider's answer, the new session and the throttle's count.

:class:`WebLogin` is the one place these three meet. It runs as plain calls (:meth:`WebLogin.__call__`:
a worker thread, a bridged greenlet, a synchronous host) or awaited by a coroutine on the event
loop when only the Redis store waits (:meth:`WebLogin.awaited`): the same steps in the same
order, the session and the throttle's step sent in one write, the token signed and the response
made while Redis works on them: one round trip, and part of it hidden. Off an event loop (a
worker thread, a WSGI host) the session is held and sent with the throttle's settle
(:func:`~authcore.sessions.held.held_calls`): one round trip, two through a provider that
waits (the throttle's reservation comes before it is asked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from ..async_api import run_as
from ..capabilities import SecondFactorRequired
from ..errors import InvalidCredentials, Throttled
from ..login_results import StartedLogin
from ..manager import AuthManager
from ..models import LoginResult
from ..sessions.held import held_calls
from .common import LoginBody
from .throttle import Throttle

__all__ = ["WebLogin"]

T = TypeVar("T")
A = TypeVar("A")


class WebLogin:
    """Log in with py-ispyb's body, with throttling when configured.

    The throttle holds for what was typed and, after a successful login, for the login the
    provider returned: if that one is locked the new session is ended and the login refused.
    """

    def __init__(self, manager: AuthManager, throttle: Throttle | None) -> None:
        self.manager = manager
        self.throttle = throttle

    def __call__(self, body: LoginBody, address: str | None, lifetime: float | None = None) -> LoginResult:
        """Log in; *address*: the client's, for the throttle; *lifetime*: a token's session."""
        throttle = self.throttle
        if throttle is None:
            return self._provider_login(body, lifetime)
        # Off an event loop (a worker thread, a WSGI host) the new session goes to the store with
        # the throttle's settle; on one (bridged) the loop's connection collects them alike.
        with held_calls():
            if self.manager.login_waits(body.plugin) != "thread":
                return self._counted_after(throttle, body, address, lifetime)
            throttle.reserve(body.login, address)  # counted as a failure until it succeeds
            try:
                result = self._provider_login(body, lifetime)
            except Exception as exc:
                # An outage is no guess; a right password awaiting its second factor is none either
                # (the second step counts its own failures: AuthManager.complete_login).
                if not isinstance(exc, InvalidCredentials) or isinstance(exc, SecondFactorRequired):
                    throttle.release(body.login, address)
                raise
            return self._settled(throttle, body, address, result, reserved=True)

    def _counted_after(
        self, throttle: Throttle, body: LoginBody, address: str | None, lifetime: float | None
    ) -> LoginResult:
        """A login whose provider answers without waiting, counted after its answer.

        Either order answers no more guesses than the limit: an attempt's answer reaches the
        client only if one atomic step of the state admitted it (a failure counted, or refused
        at the limit). Reserving first spares a provider that waits (a directory, an identity
        provider) the attempts refused anyway, their load and its own lock-out counters; a
        provider that answers without waiting costs nothing to ask. Counted after, the login
        takes one round trip on the Redis store, not two: the throttle's step goes out in the
        same write as the new session, which is ended at once if the step refuses.
        """
        try:
            result = self._provider_login(body, lifetime)
        except Exception as exc:
            self._count_failure(throttle, body, address, exc)
            raise
        return self._settled(throttle, body, address, result, reserved=False)

    async def awaited(
        self,
        body: LoginBody,
        address: str | None,
        lifetime: float | None = None,
        *,
        answer: Callable[[LoginResult], A],
    ) -> A:
        """:meth:`__call__` awaited on the event loop where only the Redis store waits
        (:meth:`AuthManager.login_waits` says ``"loop"``), without the greenlet bridge: the
        provider's login runs in-line, its new session and the throttle's step go to Redis in
        one write (:func:`~authcore.loop_bridge.collecting`), the access token is signed and
        ``answer(result)`` made of it (the adapter's response, its body encoded) while Redis
        works on them (:func:`_signed_meanwhile`), then the replies are checked and the answer
        returned. A bridged wait cost a login as much CPU as Redis's own work
        (``docs/design.md``). A refusal's or a failure's store calls (rare) run bridged.
        Should *answer* fail, the new session is ended again and its error is the login's."""
        from ..loop_bridge import collecting  # greenlet: imported only where Redis is used

        throttle = self.throttle
        async with collecting():
            try:
                started = self._provider_start(body, lifetime)
            except Exception as exc:
                if throttle is not None:
                    await run_as("loop", partial(self._count_failure, throttle, body, address, exc))
                raise
            settling = None
            if throttle is not None:
                settling = throttle.asettle_success(body.login, address, started.identity.login, reserved=False)
            (result, answered), refused = await _signed_meanwhile(partial(_answered, started, answer), settling)
        if refused is not None:
            await run_as("loop", partial(self._refuse, result, refused))
        return answered

    @staticmethod
    def _count_failure(throttle: Throttle, body: LoginBody, address: str | None, failure: Exception) -> None:
        """A failed login counted after the provider answered (see :meth:`_counted_after`)."""
        if isinstance(failure, SecondFactorRequired):
            throttle.check(body.login, address)  # a right password, not revealed at the limit
        elif isinstance(failure, InvalidCredentials):
            throttle.reserve(body.login, address)  # counted, or refused at the limit
        else:
            throttle.check(body.login, address)  # at the limit every answer is the refusal

    def _provider_login(self, body: LoginBody, lifetime: float | None) -> LoginResult:
        return self._provider_start(body, lifetime).sign()

    def _provider_start(self, body: LoginBody, lifetime: float | None) -> StartedLogin:
        credentials = self.manager.credentials(body.plugin, **body.credentials())
        return self.manager.start_login(body.plugin, credentials, lifetime=lifetime)

    def _settled(
        self, throttle: Throttle, body: LoginBody, address: str | None, result: LoginResult, *, reserved: bool
    ) -> LoginResult:
        refused = throttle.settle_success(body.login, address, result.identity.login, reserved=reserved)
        if refused is not None:
            self._refuse(result, refused)
        return result

    def _refuse(self, result: LoginResult, refused: Throttled) -> None:
        self.manager.logout(result.access_token)  # its tokens were never handed out
        raise refused


def _answered(started: StartedLogin, answer: Callable[[LoginResult], A]) -> tuple[LoginResult, A]:
    result = started.sign()
    try:
        return result, answer(result)
    except Exception:
        started.discard()  # on Redis: sent now, checked when the collecting block ends
        raise


async def _signed_meanwhile(
    sign: Callable[[], T], settling: Awaitable[Throttled | None] | None
) -> tuple[T, Throttled | None]:
    """``sign()`` run while Redis works on the calls given so far, then *settling* awaited.

    The new session's call (and the throttle's step, sent when *settling* is first awaited)
    wait for the connection's write, a callback the loop was given with the first of them;
    ``sign`` is given to the loop after it, so it runs once they are on their way, and the
    replies are awaited after that.
    """
    loop = asyncio.get_running_loop()
    signed: asyncio.Future[T] = loop.create_future()
    loop.call_soon(_run_into, signed, sign)
    try:
        refused = None if settling is None else await settling
    finally:
        result = await signed  # its error, if any, is the login's
    return result, refused


def _run_into(future: asyncio.Future[T], function: Callable[[], T]) -> None:
    try:
        future.set_result(function())
    except Exception as exc:
        future.set_exception(exc)
