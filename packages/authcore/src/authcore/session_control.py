"""Per-user session control: list a user's sessions, end one or all, issue tokens for scripts.

A mixin of :class:`~authcore.AuthManager`. Every session store answers
:meth:`~authcore.sessions.SessionStore.sessions_of`, so this works on memory, SQLite and Redis
alike: a user disabled through user management loses every session at once, and lowball's
self-service token routes list and revoke a user's tokens.

A *token's session* is what a script holds instead of a login: it lives a fixed time with no
idle expiry and has no refresh token. It is still a session: logout, :meth:`end_session` and the
verified-token cache treat it like any other. Two kinds of secret open one:

* :meth:`issue_token`: one signed access token (JWT) for its whole life (lowball's tokens);
* :meth:`issue_personal_token`: a *personal access token*, ``pat_`` + 256 random bits (GitHub's):
  opaque, only its hash stored (where a session keeps its refresh token's), checked by one store
  lookup and then cached like any verification; it outlives a change of the signing key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .errors import BadRequest, InvalidToken
from .logins import PENDING_SECOND_FACTOR, snapshot
from .models import VerifiedToken

if TYPE_CHECKING:
    from .models import Identity, LoginResult
    from .providers import Provider
    from .sessions import SessionRecord, Sessions

__all__ = ["SessionControl"]


class SessionControl:
    """Mixin of :class:`~authcore.AuthManager`: sessions per user, and tokens for scripts."""

    if TYPE_CHECKING:  # provided by AuthManager
        _sessions: Sessions
        _end_session: Callable[[SessionRecord], bool]
        _recheck: float | None
        providers: Mapping[str, Provider]
        provider: Callable[[str], Provider]

        def _result(
            self, identity: Identity, record: SessionRecord, refresh_token: str, *, whole_session: bool = False
        ) -> LoginResult: ...

    def sessions_of(
        self, login: str, *, provider: str | None = None, now: float | None = None, pending: bool = False
    ) -> list[SessionRecord]:
        """The live sessions of *login* (of provider instance *provider* only, if given), oldest first;
        with *pending*, logins waiting for their second factor too (:mod:`authcore.second_factor`).

        The records' identities hold provider state (an upstream refresh token): show a user
        their sessions through chosen fields, never the records themselves.
        """
        records = self._sessions.store.sessions_of(login, now=time.time() if now is None else now)
        return [
            r
            for r in records
            if (provider is None or r.provider == provider) and (pending or PENDING_SECOND_FACTOR not in r.identity)
        ]

    def session_record(self, session_id: str) -> SessionRecord | None:
        """The session *session_id* as the store has it (ended ones too, until purged), or ``None``."""
        return self._sessions.get(session_id)

    def purge_sessions(self) -> int:
        """Delete ended and expired sessions from the store now (stores also do it by themselves)."""
        return self._sessions.store.purge(time.time())

    def end_session(self, session_id: str) -> bool:
        """End one session as a logout does (upstream logout, the logout hook, cached tokens dropped).

        True if this call ended it; False if it was unknown or had ended already.
        """
        record = self._sessions.get(session_id)
        if record is None:
            return False
        return self._end_session(record)

    def end_sessions_of(self, login: str, *, provider: str | None = None) -> int:
        """End every live session of *login* (of *provider* only, if given); return how many ended.

        What disabling or deleting a user does: every token of theirs is refused from now on.
        """
        return sum(self._end_session(record) for record in self.sessions_of(login, provider=provider, pending=True))

    def issue_personal_token(self, identity: Identity, *, lifetime: float) -> tuple[str, SessionRecord]:
        """A personal access token for *identity* (its permissions as given: the caller decides
        them) that lives *lifetime* seconds; returns ``(token, session record)``. The token is shown
        once: only its hash is kept. Name it through ``identity.attributes["name"]``."""
        self.provider(identity.provider)
        _check_lifetime(lifetime)
        record, token = self._sessions.start_personal(
            login=identity.login, provider=identity.provider, identity=snapshot(identity), lifetime=lifetime
        )
        return token, record

    def _verify_personal(self, token: str, now: float) -> tuple[VerifiedToken, float]:
        """Check a personal access token: its session is live and its provider instance enabled;
        return the verified token and how long it may be cached (see :meth:`AuthManager.verify`)."""
        session_id = self._sessions.session_of_personal_token(token)
        record = self._sessions.get(session_id) if session_id is not None else None
        if record is None or not record.active(now) or record.provider not in self.providers:
            raise InvalidToken("unknown or ended personal access token")
        identity = record.identity
        attributes = identity.get("attributes") or {}
        verified = VerifiedToken(
            record.login,
            record.provider,
            frozenset(identity.get("permissions") or ()),
            tuple(identity.get("groups") or ()),
            record.session_id,
            record.session_id,
            record.created_at,
            record.absolute_expires_at,
            {
                "sub": record.login,
                "sid": record.session_id,
                "token_type": "personal",
                "name": attributes.get("name"),
            },
        )
        deadline = record.absolute_expires_at
        if self._recheck is not None:
            deadline = min(deadline, now + self._recheck)
        return verified, deadline

    def issue_token(self, identity: Identity, *, lifetime: float) -> LoginResult:
        """A token's session for *identity* that lives *lifetime* seconds (see the module's docstring).

        *identity*'s permissions are what the token grants, as given: the caller decides them (a
        subset of the user's, say). Its provider instance must be enabled. The result's
        ``refresh_token`` is empty: nobody can renew it.
        """
        self.provider(identity.provider)  # UnknownProvider when it is not enabled
        _check_lifetime(lifetime)
        record, _unheld = self._sessions.start(
            login=identity.login, provider=identity.provider, identity=snapshot(identity), lifetime=lifetime
        )
        return self._result(identity, record, "", whole_session=True)


def _check_lifetime(lifetime: float) -> None:
    if not isinstance(lifetime, int | float) or not math.isfinite(lifetime) or lifetime <= 0:
        raise BadRequest("a token's lifetime is a positive number of seconds")
