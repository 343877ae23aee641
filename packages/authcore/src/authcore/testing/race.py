"""Calls raced from several threads at once, for tests of what must happen exactly once.

A single-use token redeemed twice, a refresh token rotated by two instances, a throttle's
last admission: each is a compare-and-swap somewhere, and only threads released together
find out whether it is one. :func:`race` starts the threads, holds them at a barrier until
every one is running, lets them go, and hands back what each call returned or raised;
:func:`outcomes` counts those by kind, which is what such a test asserts::

    from authcore.testing.race import outcomes, race

    def test_one_redemption(provider, token):
        results = race(lambda _: provider.redeem(token))
        assert outcomes(results) == {"ok": 1, "InvalidToken": 7}

A call that hangs fails the race (:class:`RaceTimeout`) instead of the test run.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

__all__ = ["RaceTimeout", "outcomes", "race"]


class RaceTimeout(AssertionError):
    """A raced call did not return within the race's time limit."""


def race(attempt: Callable[[int], object], threads: int = 8, *, timeout: float = 60.0) -> list[object]:
    """Call ``attempt(0)`` ... ``attempt(threads - 1)``, each in a thread of its own, all at once.

    No call starts before every thread is running (a barrier releases them together). Returns,
    in the threads' order, what each call returned, or the exception it raised: any, pytest's
    own included (an ``assert`` or a failed ``pytest.raises`` inside *attempt* comes back as
    :class:`AssertionError` or ``Failed``, where a thread left to itself would only print it).
    Raises :class:`RaceTimeout` when the threads are not all done *timeout* seconds after the
    start; those still running are left to finish (threads cannot be stopped).
    """
    if threads < 1:
        raise ValueError("a race needs at least one thread")
    barrier = threading.Barrier(threads, timeout=timeout)
    results: list[object] = [None] * threads

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = attempt(index)
        except BaseException as exc:  # pytest.fail() and pytest.raises raise BaseExceptions
            results[index] = exc

    started = [threading.Thread(target=run, args=(i,), name=f"race-{i}", daemon=True) for i in range(threads)]
    for thread in started:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = [thread.name for thread in started if thread.is_alive()]
    if hung:
        raise RaceTimeout(f"{len(hung)} of {threads} raced calls still running after {timeout:g} s: {', '.join(hung)}")
    return results


def outcomes(results: Iterable[object]) -> Counter[str]:
    """How many of *results* (from :func:`race`) were each kind: ``"ok"`` for a call that
    returned, the exception's class name for one that raised."""
    return Counter(type(result).__name__ if isinstance(result, BaseException) else "ok" for result in results)
