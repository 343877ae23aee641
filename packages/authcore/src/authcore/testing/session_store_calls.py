"""How a store's calls are made, for :class:`~authcore.testing.SessionStoreConformance`: from
many threads at once, and held back within :func:`~authcore.sessions.held.held_calls`.

A store that talks to a server may hold a new session within ``held_calls()`` and send it with
its next call (the Redis store does, in a worker thread's login); one that does not makes the
call where it stands. Either way the session is there for the store's next call, and after the
block, and a refused creation raises, at the latest when the block ends.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence

import pytest

from authcore.errors import InvalidToken, TokenExpired
from authcore.sessions import SessionRecord, Sessions, SessionStore, hash_refresh_token
from authcore.sessions.held import held_calls
from authcore.testing.race import outcomes, race

__all__ = ["StoreCallsConformance", "race_refreshes"]

NOW = 1_700_000_000.0
IDENTITY = {"login": "alice", "groups": ["staff"], "session_state": {"upstream_refresh": "upstream-secret-value"}}


def start(sessions: Sessions, now: float = NOW, login: str = "alice") -> tuple[SessionRecord, str]:
    """Start a session for *login* at *now* with a fresh copy of :data:`IDENTITY`."""
    return sessions.start(login=login, provider="dummy", identity=json.loads(json.dumps(IDENTITY)), now=now)


def race_refreshes(instances: Sequence[Sessions], token: str, *, now: float | None = None) -> list[str]:
    """Eight threads, taking turns among *instances* (one :class:`Sessions` each, on one store or
    several processes' stores), refresh *token* at once; their outcomes, sorted: ``"won"``,
    ``"refused"`` or ``"expired"``. Exactly one should win."""
    return sorted(map(_refresh_outcome, race(lambda i: instances[i % len(instances)].refresh(token, now=now))))


def _refresh_outcome(result: object) -> str:
    if isinstance(result, TokenExpired):
        return "expired"
    if isinstance(result, InvalidToken):
        return "refused"
    if isinstance(result, Exception):
        raise result  # neither a refusal nor an expiry: the store failed
    return "won"


class StoreCallsConformance:
    """Part of :class:`~authcore.testing.SessionStoreConformance`: calls from threads, calls held."""

    def test_concurrent_refresh_of_one_token(self, sessions: Sessions) -> None:
        # Switch threads as often as possible so that an unguarded check-then-swap would interleave.
        previous = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            for _ in range(40):
                self._race_one_token(sessions)
        finally:
            sys.setswitchinterval(previous)

    @staticmethod
    def _race_one_token(sessions: Sessions) -> None:
        record, token = start(sessions)
        assert race_refreshes([sessions], token, now=NOW + 1) == ["refused"] * 7 + ["won"]
        fetched = sessions.get(record.session_id)
        assert fetched is not None and fetched.revoked  # the losers were reuse

    def test_many_threads_many_sessions(self, sessions: Sessions) -> None:
        def worker(index: int) -> None:
            for round_ in range(15):
                record, token = start(sessions, login=f"user{index}")
                for step in range(3):
                    record, token = sessions.refresh(token, now=NOW + step + 1)
                assert sessions.is_active(record.session_id, now=NOW + 5)
                if round_ % 2:
                    assert sessions.revoke(record.session_id)

        results = race(worker)
        assert outcomes(results) == {"ok": 8}, results
        assert sessions.store.purge(NOW + 5) == 8 * 7  # the revoked ones

    # --------------------------------------------------------------------------- held calls

    def test_a_session_created_within_held_calls_is_there_for_the_next_call(self, store: SessionStore) -> None:
        record = SessionRecord("held", "hélène", "p", {"login": "hélène"}, NOW, NOW, NOW + 10, NOW + 20)
        with held_calls():
            store.create(record, hash_refresh_token("rt_held"))
            found = store.get("held")  # the next call: the held one goes first
            assert found is not None and found.login == "hélène"
            store.create(dataclasses.replace(record, session_id="held-2"), hash_refresh_token("rt_held_2"))
        assert store.get("held-2") is not None  # sent when the block ended
        assert store.session_of(hash_refresh_token("rt_held_2")) == "held-2"

    def test_a_refused_creation_within_held_calls_raises_by_the_end_of_the_block(self, store: SessionStore) -> None:
        record = SessionRecord("dup", "alice", "p", {}, NOW, NOW, NOW + 10, NOW + 20)
        store.create(record, hash_refresh_token("rt_dup"))
        with pytest.raises(ValueError), held_calls():
            store.create(record, hash_refresh_token("rt_dup_again"))
        with pytest.raises(ValueError), held_calls():
            store.create(record, hash_refresh_token("rt_dup_third"))
            store.get("dup")  # raised here at the latest, where the held call's reply is read
        assert store.session_of(hash_refresh_token("rt_dup_again")) is None

    def test_a_block_that_raises_still_sends_what_it_held(self, store: SessionStore) -> None:
        record = SessionRecord("kept", "alice", "p", {}, NOW, NOW, NOW + 10, NOW + 20)
        with pytest.raises(RuntimeError, match="the caller's own"), held_calls():
            store.create(record, hash_refresh_token("rt_kept"))
            raise RuntimeError("the caller's own error")
        assert store.get("kept") is not None  # ended by the caller if it wants: not lost in between
