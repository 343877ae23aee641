"""The session-store conformance suite: base test classes a store's tests subclass.

Every store, ours and a plugin's (a Redis store, say), keeps one contract: rotation is a
compare-and-swap, a reused refresh token revokes its session, expiry is by idle and
absolute deadlines, revocation and purging behave the same. Subclass
:class:`SessionStoreConformance` and give it a fresh store::

    from authcore.testing import SessionStoreConformance

    class TestMyStore(SessionStoreConformance):
        @pytest.fixture
        def session_store(self):
            store = MyStore(...)
            yield store
            store.close()

Times are passed in explicitly (``now=``), so nothing here sleeps; the concurrency tests
use real threads against the real store.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

from authcore.config import SessionConfig, TokenConfig
from authcore.errors import InvalidToken, TokenExpired
from authcore.sessions import (
    RefreshTokenReused,
    SessionRecord,
    Sessions,
    SessionStore,
    hash_refresh_token,
)
from authcore.tokens import TokenService

from .session_store_calls import IDENTITY, NOW, StoreCallsConformance, start

__all__ = ["SessionStoreConformance"]

IDLE = 100.0
LIFETIME = 250.0
URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class SessionStoreConformance(StoreCallsConformance):
    """Tests of the :class:`~authcore.sessions.SessionStore` contract; override :meth:`session_store`."""

    @pytest.fixture
    def session_store(self) -> Iterator[SessionStore]:
        """A new, empty store for one test (closed afterwards). Subclasses must override it."""
        raise NotImplementedError("override the session_store fixture with a fresh store of yours")
        yield  # pragma: no cover

    @pytest.fixture
    def store(self, session_store: SessionStore) -> SessionStore:
        """The store under test."""
        return session_store

    @pytest.fixture
    def sessions(self, session_store: SessionStore) -> Sessions:
        """The session lifecycle on top of the store (idle 100 s, lifetime 250 s)."""
        return Sessions(session_store, SessionConfig(idle_timeout=IDLE, max_lifetime=LIFETIME))

    def test_is_a_session_store(self, store: SessionStore) -> None:
        assert isinstance(store, SessionStore)
        assert type(store.blocking) is bool and type(store.shared) is bool

    def test_session_of_finds_current_and_earlier_refresh_tokens(self, sessions: Sessions) -> None:
        record, first = start(sessions)
        other, _ = start(sessions, login="bob")
        _, second = sessions.refresh(first, now=NOW + 1)
        assert sessions.store.session_of(hash_refresh_token(first)) == record.session_id
        assert sessions.store.session_of(hash_refresh_token(second)) == record.session_id
        assert sessions.store.session_of(hash_refresh_token("rt_" + "A" * 43)) is None
        assert sessions.session_of_refresh_token(second) == record.session_id
        assert other.session_id != record.session_id

    # --------------------------------------------------------------------------- basics

    def test_start(self, sessions: Sessions) -> None:
        record, token = start(sessions)
        assert token.startswith("rt_") and len(token) == 46 and set(token[3:]) <= URLSAFE
        assert len(record.session_id) == 22 and set(record.session_id) <= URLSAFE
        assert record.login == "alice" and record.provider == "dummy" and record.identity == IDENTITY
        assert record.created_at == record.last_used_at == NOW
        assert record.idle_expires_at == NOW + IDLE and record.absolute_expires_at == NOW + LIFETIME
        assert not record.revoked and record.active(NOW)
        assert sessions.get(record.session_id) == record
        assert sessions.is_active(record.session_id, now=NOW)
        other_record, other_token = start(sessions)
        assert other_record.session_id != record.session_id and other_token != token

    def test_identity_is_a_copy(self, sessions: Sessions) -> None:
        record, _ = start(sessions)
        record.identity["groups"].append("admin")
        fetched = sessions.get(record.session_id)
        assert fetched is not None and fetched.identity["groups"] == ["staff"]

    def test_update_identity(self, sessions: Sessions) -> None:
        record, token = start(sessions)
        sessions.store.update_identity(record.session_id, {"login": "alice", "groups": ["admin"]})
        fetched = sessions.get(record.session_id)
        assert fetched is not None and fetched.identity == {"login": "alice", "groups": ["admin"]}
        refreshed, _ = sessions.refresh(token, now=NOW + 1)
        assert refreshed.identity == {"login": "alice", "groups": ["admin"]}
        with pytest.raises(InvalidToken):
            sessions.store.update_identity("no-such-session", {})
        with pytest.raises((TypeError, ValueError)):
            sessions.store.update_identity(record.session_id, {"not json": object()})

    def test_duplicate_session_or_hash_is_refused(self, store: SessionStore) -> None:
        record = SessionRecord("sid", "alice", "p", {}, NOW, NOW, NOW + 10, NOW + 20)
        store.create(record, hash_refresh_token("rt_a"))
        with pytest.raises(ValueError):
            store.create(record, hash_refresh_token("rt_b"))
        with pytest.raises(ValueError):
            store.create(
                SessionRecord("other", "bob", "p", {}, NOW, NOW, NOW + 10, NOW + 20), hash_refresh_token("rt_a")
            )
        with pytest.raises(ValueError):
            store.create(SessionRecord("third", "bob", "p", {}, NOW, NOW, NOW + 10, NOW + 20), b"short")
        assert store.get("other") is None and store.get("third") is None

    def test_record_repr_hides_identity(self, sessions: Sessions) -> None:
        record, token = start(sessions)
        text = repr(record) + str(record)
        assert "alice" in text and record.session_id in text
        assert "upstream-secret-value" not in text and "staff" not in text and token not in text
        assert token not in repr(sessions) + repr(sessions.store)

    def test_unknown_session(self, sessions: Sessions) -> None:
        assert sessions.get("nope") is None
        assert not sessions.is_active("nope", now=NOW)
        assert sessions.revoke("nope") is False

    # --------------------------------------------------------------------------- rotation and reuse

    def test_refresh_rotates(self, sessions: Sessions) -> None:
        record, first = start(sessions)
        refreshed, second = sessions.refresh(first, now=NOW + 10)
        assert second != first and second.startswith("rt_")
        assert refreshed.session_id == record.session_id
        assert refreshed.last_used_at == NOW + 10 and refreshed.idle_expires_at == NOW + 10 + IDLE
        _, third = sessions.refresh(second, now=NOW + 20)
        _, fourth = sessions.refresh(third, now=NOW + 30)
        assert len({first, second, third, fourth}) == 4
        assert sessions.is_active(record.session_id, now=NOW + 30)

    def test_reuse_revokes_the_session(self, sessions: Sessions, caplog: pytest.LogCaptureFixture) -> None:
        record, first = start(sessions)
        _, second = sessions.refresh(first, now=NOW + 1)
        with caplog.at_level(logging.WARNING, logger="authcore.sessions"), pytest.raises(InvalidToken) as caught:
            sessions.refresh(first, now=NOW + 2)  # the old token again: theft assumed
        # An InvalidToken that names the session, so the manager can drop its cached access tokens.
        assert type(caught.value) is RefreshTokenReused and caught.value.session_id == record.session_id
        assert record.session_id not in str(caught.value)
        assert pickle.loads(pickle.dumps(caught.value)).session_id == record.session_id
        assert first not in str(caught.value) and second not in str(caught.value)
        assert any("reuse" in message and first not in message for message in caplog.messages)
        fetched = sessions.get(record.session_id)
        assert fetched is not None and fetched.revoked
        assert not sessions.is_active(record.session_id, now=NOW + 2)
        # The newest token stops working too.
        with pytest.raises(InvalidToken) as newest:
            sessions.refresh(second, now=NOW + 3)
        assert type(newest.value) is InvalidToken

    def test_reuse_of_an_older_token_in_a_chain(self, sessions: Sessions) -> None:
        record, first = start(sessions)
        _, second = sessions.refresh(first, now=NOW + 1)
        _, third = sessions.refresh(second, now=NOW + 2)
        with pytest.raises(InvalidToken):
            sessions.refresh(first, now=NOW + 3)
        with pytest.raises(InvalidToken):
            sessions.refresh(third, now=NOW + 4)
        assert not sessions.is_active(record.session_id, now=NOW + 4)

    def test_reuse_after_expiry_still_revokes(self, sessions: Sessions) -> None:
        record, first = start(sessions)
        sessions.refresh(first, now=NOW + 1)
        with pytest.raises(InvalidToken):
            sessions.refresh(first, now=NOW + LIFETIME + 5)
        fetched = sessions.get(record.session_id)
        assert fetched is not None and fetched.revoked

    def test_reuse_does_not_touch_other_sessions(self, sessions: Sessions) -> None:
        _, first = start(sessions)
        other, other_token = start(sessions, login="bob")
        sessions.refresh(first, now=NOW + 1)
        with pytest.raises(InvalidToken):
            sessions.refresh(first, now=NOW + 2)
        assert sessions.is_active(other.session_id, now=NOW + 2)
        assert sessions.refresh(other_token, now=NOW + 3)[0].login == "bob"

    # --------------------------------------------------------------------------- expiry

    def test_idle_expiry_slides(self, sessions: Sessions) -> None:
        record, token = start(sessions)
        assert sessions.is_active(record.session_id, now=NOW + IDLE - 1)
        assert not sessions.is_active(record.session_id, now=NOW + IDLE)
        record, token = sessions.refresh(token, now=NOW + 90)
        assert record.idle_expires_at == NOW + 90 + IDLE
        assert sessions.is_active(record.session_id, now=NOW + 180)  # beyond the first idle deadline
        record, token = sessions.refresh(token, now=NOW + 180)
        assert record.idle_expires_at == NOW + LIFETIME  # capped: 280 > 250
        # Idle too long: the next refresh is too late.
        record2, token2 = start(sessions, now=NOW)
        with pytest.raises(TokenExpired):
            sessions.refresh(token2, now=NOW + IDLE)
        assert not sessions.is_active(record2.session_id, now=NOW + IDLE)

    def test_touch_slides_the_idle_expiry_without_new_tokens(self, sessions: Sessions) -> None:
        """An authenticated request slides the session (Flask's SESSION_REFRESH_EACH_REQUEST), capped
        by the absolute lifetime; an ended or expired session stays ended."""
        record, token = start(sessions)
        assert sessions.touch(record.session_id, now=NOW + IDLE - 1)
        touched = sessions.peek(record.session_id)
        assert touched is not None and touched.idle_expires_at == NOW + IDLE - 1 + IDLE
        assert touched.last_used_at == NOW + IDLE - 1
        assert sessions.is_active(record.session_id, now=NOW + IDLE + 10)  # past the first idle deadline
        assert sessions.touch(record.session_id, now=NOW + 180)
        capped = sessions.peek(record.session_id)
        assert capped is not None and capped.idle_expires_at == NOW + LIFETIME  # 280, capped at 250
        refreshed, _ = sessions.refresh(token, now=NOW + 241)  # the refresh token is unchanged by touch
        assert refreshed.session_id == record.session_id
        idle, _ = start(sessions)
        assert not sessions.touch(idle.session_id, now=NOW + IDLE)  # too late: it idled out
        assert not sessions.is_active(idle.session_id, now=NOW + IDLE)
        sessions.revoke(record.session_id)
        assert not sessions.touch(record.session_id, now=NOW + 242)
        assert not sessions.touch("no-such-session", now=NOW)

    def test_absolute_lifetime_caps(self, sessions: Sessions) -> None:
        record, token = start(sessions)
        for moment in (90, 180, 240, 249):
            record, token = sessions.refresh(token, now=NOW + moment)
            assert record.idle_expires_at == min(NOW + moment + IDLE, NOW + LIFETIME)
        assert sessions.is_active(record.session_id, now=NOW + LIFETIME - 0.001)
        assert not sessions.is_active(record.session_id, now=NOW + LIFETIME)
        with pytest.raises(TokenExpired) as caught:
            sessions.refresh(token, now=NOW + LIFETIME)
        assert token not in str(caught.value)

    def test_idle_longer_than_lifetime_is_capped(self, store: SessionStore) -> None:
        sessions = Sessions(store, SessionConfig(idle_timeout=1000, max_lifetime=50))
        record, _ = sessions.start(login="a", provider="p", identity={}, now=NOW)
        assert record.idle_expires_at == record.absolute_expires_at == NOW + 50

    # --------------------------------------------------------------------------- revoke and purge

    def test_revoke(self, sessions: Sessions) -> None:
        record, token = start(sessions)
        assert sessions.revoke(record.session_id) is True
        assert sessions.revoke(record.session_id) is False
        assert not sessions.is_active(record.session_id, now=NOW)
        with pytest.raises(InvalidToken) as caught:
            sessions.refresh(token, now=NOW + 1)
        assert type(caught.value) is InvalidToken  # ended, not expired
        fetched = sessions.get(record.session_id)
        assert fetched is not None and fetched.revoked

    def test_peek_is_get_without_the_identity(self, sessions: Sessions) -> None:
        record, token = start(sessions)
        assert sessions.peek("no-such-session") is None
        peeked = sessions.peek(record.session_id)
        assert peeked is not None and peeked.identity == {}
        assert dataclasses.replace(peeked, identity=IDENTITY) == sessions.get(record.session_id)
        rotated, _ = sessions.refresh(token, now=NOW + 10)  # times change: peek follows them
        peeked = sessions.peek(record.session_id)
        assert peeked is not None and peeked.idle_expires_at == rotated.idle_expires_at
        sessions.revoke(record.session_id)
        peeked = sessions.peek(record.session_id)
        assert peeked is not None and peeked.revoked

    def test_purge(self, sessions: Sessions) -> None:
        revoked, _ = start(sessions)
        expired, expired_token = start(sessions, now=NOW - 500)
        alive, alive_token = start(sessions)
        rotated, first = start(sessions)
        _, second = sessions.refresh(first, now=NOW + 1)
        sessions.revoke(revoked.session_id)
        assert sessions.store.purge(NOW + 2) == 2
        assert sessions.get(revoked.session_id) is None and sessions.get(expired.session_id) is None
        assert sessions.get(alive.session_id) is not None and sessions.get(rotated.session_id) is not None
        with pytest.raises(InvalidToken):
            sessions.refresh(expired_token, now=NOW + 3)  # gone: now simply unknown
        assert sessions.refresh(alive_token, now=NOW + 3)[0].session_id == alive.session_id
        assert sessions.refresh(second, now=NOW + 3)[0].session_id == rotated.session_id
        assert sessions.store.purge(NOW + 3) == 0
        assert sessions.store.purge(NOW + 10_000) == 2

    def test_sessions_of_lists_the_live_sessions_of_one_login(self, sessions: Sessions) -> None:
        first, _ = start(sessions, now=NOW - 2)
        second, second_token = start(sessions, now=NOW - 1)
        revoked, _ = start(sessions)
        start(sessions, now=NOW - 500)  # expired at NOW
        start(sessions, login="bob")
        start(sessions, login="Alice")  # logins are compared exactly: the provider decides case
        sessions.revoke(revoked.session_id)
        listed = sessions.store.sessions_of("alice", now=NOW)
        assert [r.session_id for r in listed] == [first.session_id, second.session_id]
        assert listed[0].identity == IDENTITY and listed[0].login == "alice"
        rotated, _ = sessions.refresh(second_token, now=NOW + 1)  # a rotation keeps it listed, times moved
        assert sessions.store.sessions_of("alice", now=NOW + 1)[1].last_used_at == rotated.last_used_at
        assert sessions.store.sessions_of("nobody", now=NOW) == []
        assert sessions.store.sessions_of("", now=NOW) == []
        assert sessions.store.sessions_of("alice\x00", now=NOW) == []
        assert sessions.store.sessions_of("alice", now=NOW + 10_000) == []  # all expired by then
        sessions.store.purge(NOW + 2)
        assert [r.session_id for r in sessions.store.sessions_of("alice", now=NOW + 2)] == [
            first.session_id,
            second.session_id,
        ]

    # --------------------------------------------------------------------------- malformed refresh tokens

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "rt_",
            "rt_" + "A" * 10_000,
            "x" * 1_000_000,
            "rt_é" + "A" * 42,
            "rt_\x00" + "A" * 42,
            "rt_" + "A" * 42 + "\x00",
            "RT_" + "A" * 43,
            "xx_" + "A" * 43,
            "A" * 46,
            " rt_" + "A" * 43,
            "rt_" + "A" * 43,  # the right shape, but nobody's token
            "\udcff",
            None,
            b"rt_AAAA",
            46,
            ["rt_AAAA"],
        ],
    )
    def test_malformed_refresh_tokens(self, sessions: Sessions, token: Any) -> None:
        start(sessions)
        with pytest.raises(InvalidToken) as caught:
            sessions.refresh(token, now=NOW + 1)
        assert type(caught.value) is InvalidToken
        well_formed = isinstance(token, str) and token.startswith("rt_") and len(token) < 100 and token.isascii()
        # Refused by shape before any hashing or store lookup, except the one well-formed stranger.
        assert ("malformed" in str(caught.value)) is not well_formed
        if isinstance(token, str) and len(token) > 4:
            assert token not in str(caught.value)

    def test_access_token_is_not_a_refresh_token(self, sessions: Sessions) -> None:
        record, refresh_token = start(sessions)
        tokens = TokenService(TokenConfig(secret="x" * 40))
        access = tokens.issue({"sub": "alice", "sid": record.session_id, "exp": NOW + 60}, now=NOW)
        with pytest.raises(InvalidToken):
            sessions.refresh(access, now=NOW + 1)
        with pytest.raises(InvalidToken):
            sessions.refresh("rt_" + access, now=NOW + 1)
        assert sessions.refresh(refresh_token, now=NOW + 1)  # untouched by the attempts

    def test_refresh_token_with_the_prefix_but_wrong_content_does_not_revoke(self, sessions: Sessions) -> None:
        record, token = start(sessions)
        with pytest.raises(InvalidToken):
            sessions.refresh(token[:-1] + ("A" if token[-1] != "A" else "B"), now=NOW + 1)
        assert sessions.is_active(record.session_id, now=NOW + 1)

    # --------------------------------------------------------------------------- SQLite
