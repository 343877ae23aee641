"""The test kit's race: threads released together, every outcome kept, a hang reported."""

from __future__ import annotations

import threading

import pytest

from authcore.errors import InvalidToken
from authcore.testing.race import RaceTimeout, outcomes, race


def test_no_call_starts_before_every_thread_runs() -> None:
    counted = threading.Barrier(8, timeout=30)  # so that no thread ends before all have counted

    def attempt(_: int) -> int:
        running = sum(1 for thread in threading.enumerate() if thread.name.startswith("race-"))
        counted.wait()
        return running

    assert race(attempt, 8) == [8] * 8


def test_results_in_thread_order_and_errors_kept() -> None:
    def attempt(index: int) -> int:
        if index % 3 == 0:
            raise InvalidToken(f"refused {index}")
        assert index != 4, "four is asserted out"
        return index * 10

    results = race(attempt, 6)
    assert [r if isinstance(r, int) else type(r).__name__ for r in results] == [
        "InvalidToken",
        10,
        20,
        "InvalidToken",
        "AssertionError",
        50,
    ]
    assert outcomes(results) == {"ok": 3, "InvalidToken": 2, "AssertionError": 1}


def test_pytest_failures_inside_a_call_are_outcomes_not_passes() -> None:
    def attempt(index: int) -> None:
        if index == 0:
            pytest.fail("refused by the test")
        with pytest.raises(InvalidToken):
            pass  # nothing raised: pytest.raises fails

    results = race(attempt, 3)
    assert outcomes(results) == {"Failed": 3}, results


def test_exactly_one_winner_of_a_compare_and_swap() -> None:
    lock = threading.Lock()
    taken: list[int] = []

    def take(index: int) -> None:
        with lock:
            if taken:
                raise InvalidToken("already taken")
            taken.append(index)

    assert outcomes(race(take)) == {"ok": 1, "InvalidToken": 7}


def test_a_hung_call_fails_the_race_not_the_run() -> None:
    release = threading.Event()

    def attempt(index: int) -> None:
        if index == 1:
            release.wait(30)

    try:
        with pytest.raises(RaceTimeout, match=r"1 of 3 raced calls still running after 0.2 s: race-1"):
            race(attempt, 3, timeout=0.2)
    finally:
        release.set()


@pytest.mark.parametrize("threads", [0, -1])
def test_a_race_needs_a_thread(threads: int) -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        race(lambda _: None, threads)


def test_one_thread_is_a_plain_call() -> None:
    assert race(lambda index: ("only", index), 1) == [("only", 0)]
